"""Hostile input over HTTP, task by task: every entry of tests/hostile.py's corpus (texts
that aborted eSpeak NG or cost the square of their length, giant numbers, control
characters, decompression bombs, truncated and multi-picture images, videos whose headers
lie), plus what only HTTP carries (deeply nested JSON, numbers too large for any field),
each gets its status (200, or the 4xx its error kind maps to, in the one JSON error shape:
never a 5xx) and is followed by a normal request of the same task, which must be answered
as fast as before: no worker restarting, no state left behind.

"As fast as before" compares with the same request's own median on this server, with a
wide margin (3x + 2 s): a worker restart costs ~10-20 s here, far outside it.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from service.errors import STATUS

from .hostile import IMAGES, SPEECH, TRANSLATION, VIDEOS, Hostile
from .images import encode, photo
from .servers import bentoml_serve, free_port, running_server, service_env
from .videos import plain_video

pytestmark = pytest.mark.server
# the server's own limits: the defaults, as a user's server has them
SPEECH_MAX_CHARS = 5000
TEXT_MAX_CHARS = 10_000


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, service_env()) as url:
        yield url


@pytest.fixture(scope="module")
def normal(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Callable[[], httpx.Response]]:
    """One ordinary request per task, as a client would send it."""
    cat = encode(photo("chelsea"), "JPEG", quality=90)
    clip = plain_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=20, fps=10, size=(160, 120))
    client = httpx.Client(base_url=server, timeout=300)
    return {
        "speech": lambda: client.post("/synthesize", json={"text": "Good morning, how are you?"}),
        "translation": lambda: client.post(
            "/translate", json={"texts": ["The weather is nice today."], "source": "en", "target": "es"}
        ),
        "image": lambda: client.post("/classify", files=[("images", ("cat.jpg", cat))]),
        "video": lambda: client.post(
            "/analyze_video", files=[("video", ("clip.mp4", clip))], data={"tasks": "classify"}
        ),
        "json": lambda: client.post("/recommend", json={"user_id": "196", "k": 5}),
    }


@pytest.fixture(scope="module")
def usual_s(normal: dict[str, Callable[[], httpx.Response]]) -> dict[str, float]:
    """Each normal request's median time on this server, after a warm-up."""
    times = {}
    for task, send in normal.items():
        send()
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            assert send().status_code == 200
            samples.append(time.perf_counter() - started)
        times[task] = statistics.median(samples)
    return times


def still_fast(task: str, normal: dict, usual_s: dict[str, float]) -> None:
    started = time.perf_counter()
    answer = normal[task]()
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    assert took < 3 * usual_s[task] + 2.0, f"{task}: {took:.2f} s, usually {usual_s[task]:.2f} s"


def assert_answer(answer: httpx.Response, expected: int, name: str) -> None:
    assert answer.status_code == expected, (name, answer.status_code, answer.text[:300])
    if expected != 200:
        body = answer.json()
        assert isinstance(body["error"], str) and body["error"], body
        if answer.status_code in (429, 503):
            assert answer.headers.get("retry-after"), name


def post_json(url: str, body: dict) -> httpx.Response:
    """JSON as Python writes it: a lone surrogate goes as its \\u escape (httpx's own
    encoder refuses to write one)."""
    return httpx.post(
        url, content=json.dumps(body), headers={"content-type": "application/json"}, timeout=300
    )


def expected_status(entry: Hostile, payload: str | bytes, limit: int | None) -> int:
    """What the service answers: a service limit refuses the request before any library
    reads it (413); else the runtime's outcome through the one status table."""
    if limit is not None and len(payload) > limit:
        return 413
    return 200 if entry.expect == "ok" else int(STATUS[entry.expect])  # type: ignore[index]


@pytest.mark.parametrize("entry", SPEECH, ids=lambda e: e.name)
def test_speech(server, normal, usual_s, entry):
    text = entry.make()
    answer = post_json(f"{server}/synthesize", {"text": text})
    assert_answer(answer, expected_status(entry, text, SPEECH_MAX_CHARS), entry.name)
    if answer.status_code == 200:
        assert answer.content[:4] == b"RIFF" and float(answer.headers["x-audio-duration"]) > 0
    still_fast("speech", normal, usual_s)


@pytest.mark.parametrize("entry", TRANSLATION, ids=lambda e: e.name)
def test_translation(server, normal, usual_s, entry):
    text = entry.make()
    answer = post_json(f"{server}/translate", {"texts": [text], "source": "en", "target": "es"})
    assert_answer(answer, expected_status(entry, text, TEXT_MAX_CHARS), entry.name)
    if answer.status_code == 200:
        assert len(answer.json()["translations"]) == 1
    still_fast("translation", normal, usual_s)


@pytest.mark.parametrize("entry", IMAGES, ids=lambda e: e.name)
def test_images(server, normal, usual_s, entry):
    data = entry.make()
    for route in ("/classify", "/detect"):
        answer = httpx.post(f"{server}{route}", files=[("images", ("upload", data))], timeout=300)
        assert_answer(answer, expected_status(entry, data, None), f"{route} {entry.name}")
    still_fast("image", normal, usual_s)


@pytest.mark.parametrize("entry", VIDEOS, ids=lambda e: e.name)
def test_videos(server, normal, usual_s, entry):
    data = entry.make()
    answer = httpx.post(f"{server}/analyze_video", files=[("video", ("upload", data))], timeout=300)
    assert_answer(answer, expected_status(entry, data, None), entry.name)
    still_fast("video", normal, usual_s)


NESTED = "[" * 100_000 + "]" * 100_000
JSON_BODIES = {
    "nested arrays": NESTED,
    "nested objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "nested inside a field": '{"user_id": "1", "k": ' + NESTED + "}",
    "a 5,000-digit integer": '{"user_id": "1", "k": ' + "9" * 5000 + "}",
    "a float too large": '{"user_id": "1", "k": 1e400}',
    "not UTF-8": b'{"user_id": "\xff\xfe"}',
    "truncated": '{"user_id": "1", "k": ',
    "an empty body": "",
}


@pytest.mark.parametrize("body", JSON_BODIES.values(), ids=JSON_BODIES.keys())
def test_json_bodies_on_every_json_route_and_invocations(server, normal, usual_s, body):
    payload = body.encode() if isinstance(body, str) else body
    for route in ("/recommend", "/translate", "/synthesize", "/invocations"):
        headers = {"content-type": "application/json"}
        if route == "/invocations":
            headers["x-amzn-sagemaker-custom-attributes"] = "task=recommend"
        answer = httpx.post(f"{server}{route}", content=payload, headers=headers, timeout=120)
        assert_answer(answer, 400, f"{route}: {body[:40]!r}")
    still_fast("json", normal, usual_s)


def test_a_batch_transform_style_body_of_hostile_records_answers_every_line(server):
    """The same JSON through /invocations as base64 images and nested records, one line
    each, in a SAGEMAKER_BATCH-like body: every line gets its own error or result."""
    cat = base64.b64encode(encode(photo("chelsea"), "JPEG", quality=90)).decode()
    body = {"images": [cat, base64.b64encode(b"\x89PNG\r\n" + b"\0" * 64).decode()], "task": "classify"}
    answer = httpx.post(
        f"{server}/invocations",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert_answer(answer, 415, "one non-image among good ones")
    assert answer.json()["detail"][0]["index"] == 1
