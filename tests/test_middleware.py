"""What stands in front of the operations: the entry service's middleware (API keys,
load shedding), the routes' own limits and error answers (unknown route, wrong method,
body over its limit), SageMaker's /ping and its custom attributes.

Unit tests, no model loaded: the middleware wraps a bare Starlette app; the route tests
run PAIS's real app (service.gateway.build_app) on `FakeRunner`s, which stand for a
task's runner (service.context.Runner) where a test needs one that is loading, hung or
ready at will. A body refused for its size never reaches a runner.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.middleware import ApiKeyMiddleware, ConcurrencyLimitMiddleware
from service.sagemaker import PING_TIMEOUT_S, parse_custom_attributes

from .conftest import TEST_MAX_REQUEST_BYTES, TEST_MAX_VIDEO_BYTES
from .inprocess import InProcessPais, serving, settings_for


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def make_app(keys: str = "", max_concurrency: int = 256, routes: list | None = None) -> TestClient:
    """A bare app behind the entry service's middleware, in production order (load
    shedding outermost, then API keys: test_production_middleware_order)."""
    app = Starlette(
        routes=routes
        or [
            Route("/echo", echo_size, methods=["POST"]),
            Route("/invocations", echo_size, methods=["POST"]),
            *(Route(path, ok) for path in ("/livez", "/readyz", "/ping", "/metrics")),
        ]
    )
    keyed = frozenset(k.strip() for k in keys.split(",") if k.strip())
    return TestClient(ConcurrencyLimitMiddleware(ApiKeyMiddleware(app, keys=keyed), limit=max_concurrency))


def test_production_middleware_order():
    """BentoML builds its Starlette app with the service's middleware list, first entry
    outermost: load shedding sees every request, then API keys, then PAIS's routes."""
    from service.gateway import PAIS, Front

    assert [cls for cls, _ in PAIS.middlewares] == [ConcurrencyLimitMiddleware, ApiKeyMiddleware, Front]


def test_api_keys():
    client = make_app(keys="secret-1,secret-2")
    refused = client.post("/echo", content=b"x")
    assert refused.status_code == 401 and "API key" in refused.json()["error"]
    assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/echo", content=b"x", headers={"Authorization": "secret-1"}).status_code == 401
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer secret-2"}).json() == {
        "size": 1
    }
    assert client.post("/echo", content=b"x", headers={"Authorization": "bearer secret-2"}).status_code == 200
    assert client.post("/echo", content=b"x", headers={"X-API-Key": "secret-1"}).status_code == 200
    for health in ("/livez", "/readyz", "/ping"):  # orchestrators call them without credentials
        assert client.get(health).status_code == 200, health
    assert client.post("/invocations", content=b"x").status_code == 401  # SageMaker's route is no way around
    assert client.get("/metrics").status_code == 401


def test_websockets_need_a_key_too():
    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    client = make_app(keys="secret", routes=[WebSocketRoute("/ws", hello)])
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws") as socket:
        socket.receive_text()
    assert closed.value.code == 1008
    with client.websocket_connect("/ws", headers={"X-API-Key": "secret"}) as socket:
        assert socket.receive_text() == "hi"


def test_concurrency_limit_sheds_load_but_never_health_checks():
    entered = threading.Event()
    release = threading.Event()

    async def slow(request: Request) -> JSONResponse:
        entered.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        return JSONResponse({"done": True})

    client = make_app(
        max_concurrency=1,
        routes=[Route("/slow", slow, methods=["POST"]), Route("/ping", ok), Route("/readyz", ok)],
    )
    answers: list[int] = []
    worker = threading.Thread(target=lambda: answers.append(client.post("/slow").status_code))
    worker.start()
    try:
        assert entered.wait(10)
        busy = client.post("/slow")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert "PAIS_MAX_CONCURRENCY" in busy.json()["error"]
        assert client.get("/ping").status_code == 200  # saturated is not dead
        assert client.get("/readyz").status_code == 200
    finally:
        release.set()
        worker.join()
    assert answers == [200]
    assert client.post("/slow").status_code == 200  # the slot is free again


def test_no_keys_means_open():
    client = make_app()
    assert client.post("/echo", content=b"x").json() == {"size": 1}
    assert client.get("/metrics").status_code == 200


class FakeRunner:
    """Stands for a task's runner (service.context.Runner) in route unit tests: `ready`
    answers `readiness` ("hang": never, recording that it was given up on)."""

    where = "entry"

    def __init__(self, task: str, readiness: bool | str = True):
        self.task = task
        self.readiness = readiness
        self.abandoned = threading.Event()
        self.predicted: list[Any] = []

    async def ready(self) -> bool:
        if self.readiness == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.abandoned.set()
                raise
        return bool(self.readiness)

    async def predict(self, items: list[Any]) -> list[Any]:
        self.predicted.extend(items)
        raise AssertionError("a refused request must not reach the runner")

    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]:
        return []

    async def batch_stats(self) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def routes() -> Iterator[InProcessPais]:
    """PAIS's app for every task, on fake runners that are ready."""
    settings = settings_for("all")
    runners = {task: FakeRunner(task) for task in settings.served_tasks() if task != "video"}
    with serving(settings, runners) as running:
        yield running


def test_body_over_the_limit_by_content_length(routes):
    body = b'{"texts": ["' + b"a" * TEST_MAX_REQUEST_BYTES + b'"], "target": "es"}'
    refused = routes.client.post("/translate", content=body, headers={"content-type": "application/json"})
    assert refused.status_code == 413, refused.text
    assert refused.json() == {
        "error": f"request body too large ({len(body)} bytes); the limit is {TEST_MAX_REQUEST_BYTES} bytes "
        "(PAIS_MAX_REQUEST_BYTES)"
    }
    assert not routes.served.runners["translation"].predicted


def test_body_over_the_limit_while_it_streams(routes):
    """A chunked upload declares no length: it is cut off once it crosses the limit."""
    half = TEST_MAX_REQUEST_BYTES // 2 + 1
    chunks = iter([b'{"texts": ["', b"a" * half, b"a" * half, b'"]}'])
    refused = routes.client.post("/translate", content=chunks, headers={"content-type": "application/json"})
    assert refused.status_code == 413, refused.text
    assert "content-length" not in refused.request.headers
    assert refused.json()["error"] == (
        f"request body too large; the limit is {TEST_MAX_REQUEST_BYTES} bytes (PAIS_MAX_REQUEST_BYTES)"
    )
    # the same in small chunks that fit: read whole, and refused for its content instead
    fits = routes.client.post(
        "/translate", content=iter([b'{"texts": ', b"[]}"]), headers={"content-type": "application/json"}
    )
    assert fits.status_code == 400 and "target" in fits.json()["error"]


def test_a_route_with_its_own_body_limit(routes):
    """/analyze_video takes up to PAIS_VIDEO_MAX_BYTES (plus multipart framing), whatever
    the general limit; the other routes keep PAIS_MAX_REQUEST_BYTES."""
    video_limit = TEST_MAX_VIDEO_BYTES + 64 * 1024
    over = b"\0" * (video_limit + 1)
    files = {"video": ("clip.mp4", over, "video/mp4")}
    refused = routes.client.post("/analyze_video", files=files)
    assert refused.status_code == 413
    assert f"the limit is {video_limit} bytes (PAIS_VIDEO_MAX_BYTES)" in refused.json()["error"]
    part = b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="c.mp4"\r\n\r\n'
    streamed = routes.client.post(
        "/analyze_video",
        content=iter([part, over[: video_limit // 2], over[video_limit // 2 :]]),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert streamed.status_code == 413 and "PAIS_VIDEO_MAX_BYTES" in streamed.json()["error"]
    # a body of that size is within the general limit on another route: refused for its content
    other = routes.client.post("/classify", files={"images": ("a.jpg", over, "image/jpeg")})
    assert other.status_code == 415 and "not a recognised image" in other.json()["error"]


def test_unknown_route_and_wrong_method_answer_json(routes):
    missing = routes.client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": "GET /nowhere is not an endpoint of this service; see GET /docs.json"}
    assert routes.client.post("/classify/extra").status_code == 404
    wrong = routes.client.get("/classify")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "GET /classify is not accepted; use POST"}
    posted = routes.client.post("/models", json={})
    assert posted.status_code == 405 and posted.headers["allow"] == "GET"
    assert routes.client.request("HEAD", "/stats").status_code == 200  # HEAD answers as GET


def test_bentoml_routes_pass_through(routes):
    """PaisApp hands /livez and /readyz to BentoML's app (here tests/inprocess.py's stand-in)."""
    assert routes.client.get("/livez").json() == {"status": 200}
    assert routes.client.get("/readyz").json() == {"status": 200}


def ping(readiness: dict[str, bool | str]) -> tuple[int, dict[str, Any], dict[str, FakeRunner]]:
    runners = {task: FakeRunner(task, ready) for task, ready in readiness.items()}
    with serving(settings_for(",".join(readiness)), runners) as running:
        # 20 s: far past SageMaker's 2 s, only there so that a /ping that waited for
        # readiness fails this test instead of hanging it
        running.client.timeout = 20
        answer = running.client.get("/ping")
        return answer.status_code, answer.json(), runners


def test_ping_is_503_while_a_model_loads():
    status, body, _ = ping({"translation": True, "speech": False})
    assert status == 503 and body == {"error": "models are still loading"}


def test_ping_gives_up_before_sagemakers_deadline_when_readiness_hangs():
    assert PING_TIMEOUT_S < 2  # SageMaker's deadline for /ping
    status, body, runners = ping({"translation": "hang"})
    assert status == 503 and "loading" in body["error"]
    assert runners["translation"].abandoned.is_set()  # given up on, not answered


def test_ping_is_200_when_every_model_is_ready():
    status, body, _ = ping({"translation": True, "speech": True})
    assert status == 200 and body == {}


def test_custom_attributes_parsing():
    assert parse_custom_attributes("task=detect;top_k=3") == {"task": "detect", "top_k": "3"}
    assert parse_custom_attributes(" task = translate , target=es ") == {"task": "translate", "target": "es"}
    assert parse_custom_attributes("") == {} and parse_custom_attributes("junk") == {}
    assert parse_custom_attributes("task=detect;classes=cat,cup,dog") == {
        "task": "detect",
        "classes": "cat,cup,dog",
    }
    assert parse_custom_attributes("task=detect;classes=cat, cup;top_k=2") == {
        "task": "detect",
        "classes": "cat, cup",
        "top_k": "2",
    }
    assert parse_custom_attributes("=x;task=classify;empty=") == {"task": "classify", "empty": ""}
