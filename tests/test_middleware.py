"""The entry service's ASGI middleware, on a bare Starlette app (no server needed)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from service.middleware import ApiKeyMiddleware, BodyLimitMiddleware, ErrorShapeMiddleware


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def bentoml_style_error(request: Request) -> JSONResponse:
    return JSONResponse([{"error": "wrapped the BentoML way"}], status_code=400)


async def server_error(request: Request) -> JSONResponse:
    return JSONResponse({"error": "boom"}, status_code=500)


def make_app(keys: frozenset[str] = frozenset(), max_bytes: int = 100) -> TestClient:
    app = Starlette(
        routes=[
            Route("/echo", echo_size, methods=["POST"]),
            Route("/wrapped", bentoml_style_error, methods=["POST"]),
            Route("/fail", server_error, methods=["POST"]),
            Route("/livez", lambda request: JSONResponse({"ok": True})),
        ]
    )
    app.add_middleware(ApiKeyMiddleware, keys=keys)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
    app.add_middleware(ErrorShapeMiddleware)
    return TestClient(app)


def test_api_keys():
    client = make_app(keys=frozenset({"secret-1", "secret-2"}))
    refused = client.post("/echo", content=b"x")
    assert refused.status_code == 401 and "API key" in refused.json()["error"]
    assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/echo", content=b"x", headers={"Authorization": "Bearer secret-2"}).status_code == 200
    assert client.post("/echo", content=b"x", headers={"X-API-Key": "secret-1"}).status_code == 200
    assert client.get("/livez").status_code == 200  # health checks need no key


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
