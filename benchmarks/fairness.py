"""Fairness: how long a small request waits while a maximal request of the same task runs.

    .venv/bin/python -m benchmarks.fairness [--url http://host:3000] [--requests 30]

For /translate (one sentence) and /classify (one image): the small request's p50 latency
on an idle server, then while another client sends maximal requests back to back (all
the characters PAIS_TRANSLATION_MAX_REQUEST_CHARS allows; PAIS_CLASSIFICATION_MAX_IMAGES
images), printed as a ratio to the idle p50. A server that serves requests in arrival
order would make the small request wait for the whole large one (tens of seconds for the
translation); PAIS cuts large requests into pieces that take turns with other requests.
Client and server share this machine's cores: the large request's work competes for the
CPU whatever the scheduling, so the ratio cannot be 1 on two cores.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

import httpx

from benchmarks.common import parser, served
from tests.images import encode, photo

SENTENCE = {
    "texts": ["The weather is nice and I would like to buy a new car."],
    "source": "en",
    "target": "es",
}


def large_translation(characters: int, texts: int) -> dict:
    """`texts` texts of everyday sentences, `characters` in all."""
    sentence = "The weather is nice and I would like to buy a new car. "
    per_text = characters // texts
    text = (sentence * (per_text // len(sentence) + 1))[:per_text]
    return {"texts": [text] * texts, "source": "en", "target": "es"}


def p50_ms(send: Callable[[], None], count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        send()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def under_load(small: Callable[[], None], large: Callable[[], None], count: int) -> tuple[float, list[float]]:
    """p50 of `small` while another thread sends `large` back to back, and how long each
    large request took (the last one finishes after the measurement: it ran throughout)."""
    stop = threading.Event()
    durations: list[float] = []
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                large()
            except BaseException as error:  # reported below: a failed large request measures nothing
                errors.append(error)
                return
            durations.append(time.perf_counter() - started)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(1.0)  # the large request is under way
    try:
        loaded = p50_ms(small, count)
    finally:
        stop.set()
        worker.join()
    if errors:
        raise RuntimeError(f"the large request failed: {errors[0]!r}")
    return loaded, durations


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--requests", type=int, default=30, help="small requests per measurement")
    args = p.parse_args()
    with served(args.url) as url, httpx.Client(base_url=url, timeout=300) as small_client:
        large_client = httpx.Client(base_url=url, timeout=300)
        settings = small_client.get("/docs.json").json()["paths"]
        translate_schema = settings["/translate"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        max_texts = translate_schema["properties"]["texts"]["maxItems"]
        max_text_chars = translate_schema["properties"]["texts"]["items"]["maxLength"]
        classify_schema = settings["/classify"]["post"]["requestBody"]["content"]["multipart/form-data"][
            "schema"
        ]
        max_images = classify_schema["properties"]["images"]["maxItems"]
        big_text = large_translation(min(200_000, max_texts * max_text_chars), max_texts)
        cat = encode(photo("chelsea"), "JPEG", quality=90)
        rows = []

        def translate_small() -> None:
            small_client.post("/translate", json=SENTENCE).raise_for_status()

        def translate_large() -> None:
            large_client.post("/translate", json=big_text).raise_for_status()

        def classify_small() -> None:
            small_client.post("/classify", files=[("images", ("cat.jpg", cat))]).raise_for_status()

        def classify_large() -> None:
            files = [("images", (f"cat{i}.jpg", cat)) for i in range(max_images)]
            large_client.post("/classify", files=files).raise_for_status()

        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        for name, small, large, count, what in (
            ("/translate, one sentence", translate_small, translate_large, args.requests,
             f"{sum(map(len, big_text['texts']))} characters"),
            ("/classify, one image", classify_small, classify_large, max(5, args.requests // 2),
             f"{max_images} images"),
        ):  # fmt: skip
            small()  # warm
            idle = p50_ms(small, count)
            loaded, durations = under_load(small, large, count)
            rows.append((name, idle, loaded, what, durations))
        large_client.close()
    print(f"\n{'small request':28} {'idle p50 ms':>12} {'loaded p50 ms':>14} {'ratio':>7}  large request")
    for name, idle, loaded, what, durations in rows:
        took = f"{statistics.mean(durations):.1f} s each" if durations else "still running"
        ratio = loaded / idle
        print(f"{name:28} {idle:12.1f} {loaded:14.1f} {ratio:7.1f}  {what}, {len(durations)} done, {took}")


if __name__ == "__main__":
    main()
