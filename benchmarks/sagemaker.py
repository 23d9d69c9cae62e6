"""The SageMaker path against REST and the raw runtime, and /ping while large bodies arrive.

    .venv/bin/python -m benchmarks.sagemaker [--seconds 8] [--images 8]

Starts the container's entrypoint in SageMaker mode (`serve`, classification only) and
prints, in one run: raw runtime images/s at batch 1, then 4 clients each sending one
640x480 JPEG per request to REST /classify (multipart), to /invocations as a raw
image/jpeg body and to /invocations as base64 JSON, as ratios to the raw runtime. Then
/ping's latency alone and while 2 clients keep sending large base64 JSON invocations
(`--images` 12-megapixel JPEGs each): SageMaker wants /ping answered within 2 s, and the
entry process's event loop is shared by every request.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import time

import httpx

from benchmarks.classification import raw_runtime, test_image
from benchmarks.common import Measurement, http_load, parser, report, timed
from tests.images import photo
from tests.servers import free_port, running_server, service_env

RAW = {"content-type": "image/jpeg", "x-amzn-sagemaker-custom-attributes": "task=classify"}
JSON_BODY = {"content-type": "application/json", "x-amzn-sagemaker-custom-attributes": "task=classify"}


def large_jpeg() -> bytes:
    """A 4000x3000 photo, ~12 megapixels, as a phone would send it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(photo("chelsea")).resize((4000, 3000)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def ping_latencies(url: str, seconds: float) -> list[float]:
    latencies = []
    deadline = time.perf_counter() + seconds
    with httpx.Client(timeout=30) as client:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            assert client.get(url + "/ping").status_code == 200
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.05)
    return latencies


def describe(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return (
        f"{name:44} pings {len(ordered):4}  p50 {1000 * ordered[len(ordered) // 2]:7.1f} ms"
        f"  max {1000 * ordered[-1]:7.1f} ms  over 2 s: {sum(1 for t in ordered if t > 2)}"
    )


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=8, help="12-megapixel JPEGs per large invocation")
    args = p.parse_args()
    jpeg = test_image()
    runtime = raw_runtime()
    raw1 = timed("raw runtime, batch 1", 1, lambda: runtime.classify_many([jpeg], 5), args.seconds)

    encoded = json.dumps({"images": [base64.b64encode(jpeg).decode()]})
    big = large_jpeg()
    big_body = json.dumps({"images": [base64.b64encode(big).decode()] * args.images}).encode()

    async def rest(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/classify", files=[("images", ("x.jpg", jpeg, "image/jpeg"))])

    async def raw_body(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/invocations", content=jpeg, headers=RAW)

    async def json_body(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/invocations", content=encoded, headers=JSON_BODY)

    port = free_port()
    env = service_env(SAGEMAKER_BIND_TO_PORT=str(port), PAIS_TASKS="classification")
    command = [sys.executable, "-m", "deploy.entrypoint", "serve", "--host", "127.0.0.1"]
    rows: list[Measurement] = [raw1]
    with running_server(command, port, env, ready_path="/ping") as url:
        rows.append(http_load("REST /classify, 4 clients", 4, args.seconds, 1, rest))
        rows.append(http_load("/invocations image/jpeg, 4 clients", 4, args.seconds, 1, raw_body))
        rows.append(http_load("/invocations base64 JSON, 4 clients", 4, args.seconds, 1, json_body))
        report("SageMaker path", "img", raw1, rows)

        print(f"\n/ping latency; large invocations: {args.images} x {len(big) / 1e6:.1f} MB JPEG, "
              f"{len(big_body) / 1e6:.1f} MB of base64 JSON each")  # fmt: skip
        print(describe("alone", ping_latencies(url, args.seconds)))
        stop = threading.Event()
        sent = []

        def send_large() -> None:
            with httpx.Client(timeout=600) as client:
                while not stop.is_set():
                    response = client.post(url + "/invocations", content=big_body, headers=JSON_BODY)
                    sent.append(response.status_code)

        senders = [threading.Thread(target=send_large) for _ in range(2)]
        for sender in senders:
            sender.start()
        time.sleep(1)
        loaded = ping_latencies(url, 2 * args.seconds)
        stop.set()
        for sender in senders:
            sender.join()
        print(describe("while 2 clients send large invocations", loaded))
        print(f"large invocations answered: {len(sent)}, statuses {sorted(set(sent))}")


if __name__ == "__main__":
    main()
