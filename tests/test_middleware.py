"""The entry service's ASGI middleware, on a bare Starlette app (no server needed)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from service.gateway import middleware_stack
from service.middleware import BodyLimitMiddleware
from service.sagemaker import InvocationRoute
from service.settings import Settings

ROUTES = [InvocationRoute("classify", "/echo", "images", ("image/",))]


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def bentoml_style_error(request: Request) -> JSONResponse:
    return JSONResponse([{"error": "wrapped the BentoML way"}], status_code=400)


async def server_error(request: Request) -> JSONResponse:
    return JSONResponse({"error": "boom"}, status_code=500)


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({})


def make_app(
    keys: str = "", max_bytes: int = 100, max_concurrency: int = 256, routes: list | None = None
) -> TestClient:
    """A bare app behind the entry service's real middleware stack, in production order."""
    app = Starlette(
        routes=routes
        or [
            Route("/echo", echo_size, methods=["POST"]),
            Route("/wrapped", bentoml_style_error, methods=["POST"]),
            Route("/fail", server_error, methods=["POST"]),
            Route("/livez", lambda request: JSONResponse({"ok": True})),
            Route("/readyz", ready),
        ]
    )
    settings = Settings(api_keys=keys, max_request_bytes=max_bytes, max_concurrency=max_concurrency)
    for middleware, options in reversed(middleware_stack(settings, ROUTES)):
        app.add_middleware(middleware, **options)  # Starlette's last added is outermost
    return TestClient(app)


def test_api_keys():
    client = make_app(keys="secret-1,secret-2")
    refused = client.post("/echo", content=b"x")
    assert refused.status_code == 401 and "API key" in refused.json()["error"]
    assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer secret-2"}).status_code == 200
    assert client.post("/echo", content=b"x", headers={"X-API-Key": "secret-1"}).status_code == 200
    assert client.get("/livez").status_code == 200  # health checks need no key
    assert client.get("/ping").status_code == 200
    assert client.post("/invocations", content=b"x").status_code == 401  # SageMaker's route is no way around
    assert client.get("/metrics").status_code == 401


def test_websockets_need_a_key_too():
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    async def hello(websocket):
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
    import asyncio
    import threading

    entered = threading.Event()
    release = threading.Event()

    async def slow(request: Request) -> JSONResponse:
        entered.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        return JSONResponse({"done": True})

    client = make_app(
        max_concurrency=1, routes=[Route("/slow", slow, methods=["POST"]), Route("/readyz", ready)]
    )
    worker = threading.Thread(target=lambda: client.post("/slow"))
    worker.start()
    try:
        assert entered.wait(10)
        busy = client.post("/slow")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert "PAIS_MAX_CONCURRENCY" in busy.json()["error"]
        assert client.get("/ping").status_code == 200  # saturated is not dead
    finally:
        release.set()
        worker.join()


def test_no_keys_means_open():
    assert make_app().post("/echo", content=b"x").json() == {"size": 1}


def test_body_limit_by_header_and_by_stream():
    client = make_app(max_bytes=100)
    assert client.post("/echo", content=b"x" * 100).json() == {"size": 100}
    by_header = client.post("/echo", content=b"x" * 101)
    assert by_header.status_code == 413 and "101 bytes" in by_header.json()["error"]
    streamed = client.post("/echo", content=iter([b"x" * 60, b"x" * 60]))  # chunked, no length
    assert streamed.status_code == 413 and "PAIS_MAX_REQUEST_BYTES" in streamed.json()["error"]


def test_error_shapes():
    client = make_app()
    assert client.post("/wrapped").json() == {"error": "wrapped the BentoML way"}
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "GET /nowhere" in missing.json()["error"]
    assert client.post("/fail").json() == {"error": "boom"}  # 5xx pass through untouched


def test_body_limit_per_path():
    """A path with its own limit (videos) gets it and its setting's name; others keep theirs."""
    app = Starlette(
        routes=[Route("/echo", echo_size, methods=["POST"]), Route("/big", echo_size, methods=["POST"])]
    )
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=100, path_limits={"/big": (300, "PAIS_MAX_VIDEO_BYTES")}
    )
    client = TestClient(app)
    assert client.post("/big", content=b"x" * 300).json() == {"size": 300}
    refused = client.post("/big", content=b"x" * 301)
    assert (
        refused.status_code == 413 and "limit is 300 bytes (PAIS_MAX_VIDEO_BYTES)" in refused.json()["error"]
    )
    streamed = client.post("/big", content=iter([b"x" * 200, b"x" * 200]))
    assert streamed.status_code == 413 and "PAIS_MAX_VIDEO_BYTES" in streamed.json()["error"]
    other = client.post("/echo", content=b"x" * 101)
    assert other.status_code == 413 and "(PAIS_MAX_REQUEST_BYTES)" in other.json()["error"]


def _sagemaker_client(readyz) -> TestClient:
    return make_app(routes=[Route("/readyz", readyz)])


def test_ping_is_503_while_models_load():
    async def loading(request: Request) -> JSONResponse:
        return JSONResponse({"error": "Runners are not ready."}, status_code=503)

    response = _sagemaker_client(loading).get("/ping")
    assert response.status_code == 503 and "loading" in response.json()["error"]


def test_ping_gives_up_before_sagemakers_deadline_when_readiness_hangs():
    import asyncio

    async def stuck(request: Request) -> JSONResponse:
        await asyncio.sleep(30)
        return JSONResponse({})  # would make /ping 200, had /ping waited for it

    assert _sagemaker_client(stuck).get("/ping").status_code == 503


def test_ping_is_200_when_ready():
    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({})

    assert _sagemaker_client(ready).get("/ping").status_code == 200


def test_custom_attributes_parsing():
    from service.sagemaker import parse_custom_attributes

    assert parse_custom_attributes("task=detect;top_k=3") == {"task": "detect", "top_k": "3"}
    assert parse_custom_attributes(" task = translate , target=es ") == {"task": "translate", "target": "es"}
    assert parse_custom_attributes("") == {} and parse_custom_attributes("junk") == {}
    assert parse_custom_attributes("task=detect;classes=cat,cup,dog") == {
        "task": "detect",
        "classes": "cat,cup,dog",
    }


def test_strict_multipart_is_what_bentoml_uses():
    """The strict form parser replaces a private BentoML table: fail here, loudly, if an
    upgrade moves it."""
    from _bentoml_impl import serde

    import service.gateway  # noqa: F401  (installs it)

    for media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        assert serde.ALL_SERDE[media_type].__name__ == "StrictMultipartSerde"
