"""What every route shares, in-process: /models, /stats, /docs.json and /schema.json on the
real models; and, on fake runners, the request lifecycle (a bug is a JSON 500, a loading
model a 503 with Retry-After, the deadline a 504 that stops the work, a client that goes
away stops it too)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import TEST_MAX_IMAGES, TEST_MAX_TEXT_CHARS, TEST_MAX_TEXTS
from .inprocess import InProcessPais, serving, settings_for


@pytest.fixture(scope="module")
def app(pais_app: InProcessPais) -> InProcessPais:
    return pais_app


def test_models_lists_every_served_model_with_licence_and_origin(app):
    response = app.client.get("/models")
    assert response.status_code == 200, response.text
    cards = response.json()["models"]
    assert {card["task"] for card in cards} == set(app.served.runners)
    for card in cards:
        assert set(card) >= {"task", "name", "source", "version", "licence", "origin", "details"}
        assert card["licence"] and card["origin"] and card["version"], card
    names = {card["name"] for card in cards}
    if app.serves("classification", "detection"):
        assert {"efficientnet-lite0", "yolov3-tiny"} <= names
    if app.serves("translation"):
        assert {"apertium-eng-spa", "lingua"} <= names
    if app.serves("recommendation"):
        assert {"ials-movielens-100k", "all-MiniLM-L6-v2"} <= names
    if app.serves("speech"):
        assert "en_US-joe-medium" in names
    assert app.client.request("HEAD", "/models").status_code == 200


def test_stats_has_an_entry_per_runner(app):
    stats = app.client.get("/stats").json()
    assert set(stats) == set(app.served.runners)
    assert all(
        entry["served_in"] == "entry" and isinstance(entry["predict_batch"], dict) for entry in stats.values()
    )


def test_the_openapi_document_and_the_routes_agree(app):
    document = app.client.get("/docs.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    # BentoML's clients' document is not OpenAPI's; the page's own assets are not API routes
    from service.playground import PATHS

    assets = {("GET", path) for path in PATHS if path != "/ui"}
    served = set(app.pais.routes) - {("GET", "/schema.json")} - assets
    assert served <= documented, served - documented
    for method, path in sorted(documented):
        # every documented route exists: refused for its (empty) body, never unknown
        answer = app.client.request(method, path, content=b"" if method == "POST" else None)
        assert answer.status_code not in (404, 405), (method, path, answer.text)
    for task in app.served.tasks:
        for op in task.operations:
            assert document["paths"][op.path]["post"]["operationId"] == op.name


def test_the_openapi_document_states_the_configured_limits(app):
    paths = app.client.get("/docs.json").json()["paths"]
    if app.serves("classification"):
        form = paths["/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["properties"]["images"]["maxItems"] == TEST_MAX_IMAGES
        assert form["required"] == ["images"] and form["additionalProperties"] is False
    if app.serves("translation"):
        body = paths["/translate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["texts"]["maxItems"] == TEST_MAX_TEXTS
        assert body["properties"]["texts"]["items"]["maxLength"] == TEST_MAX_TEXT_CHARS


def test_bentoml_clients_document_lists_each_operation(app):
    routes = {route["name"]: route for route in app.client.get("/schema.json").json()["routes"]}
    assert set(routes) == {op.name for task in app.served.tasks for op in task.operations}
    if app.serves("classification"):
        assert routes["classify"]["input"]["properties"]["images"] == {
            "type": "array",
            "items": {"type": "file"},
        }


def test_health_routes(app):
    assert app.client.get("/readyz").status_code == 200
    assert app.client.get("/livez").status_code == 200
    assert app.client.get("/ping").status_code == 200


class FakeRunner:
    """Stands for a translation runner (service.context.Runner), to drive a request into
    states no real model can be put in on demand: `behaviour` is "bug" (raises a plain
    exception), "loading" (raises Unavailable, as an InlineRunner does before its load
    ends) or "hang" (never answers; records that its work was cancelled)."""

    task = "translation"
    where = "entry"

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def ready(self) -> bool:
        return self.behaviour != "loading"

    async def predict(self, items: list[Any]) -> list[Any]:
        from service.runners import Unavailable

        self.started.set()
        if self.behaviour == "bug":
            raise ZeroDivisionError("a bug in a handler or runner")
        if self.behaviour == "loading":
            raise Unavailable("the translation model is still loading; retry shortly")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]:
        from service.runners import Unavailable

        if self.behaviour == "loading":
            raise Unavailable("the translation model is still loading; retry shortly")
        return []

    async def batch_stats(self) -> dict[str, Any]:
        return {}


@pytest.fixture
def faked(request: pytest.FixtureRequest) -> Iterator[tuple[InProcessPais, FakeRunner]]:
    runner = FakeRunner(request.param)
    # a one-second deadline, for the "hang" case
    with serving(settings_for("translation", PAIS_REQUEST_TIMEOUT_S="1"), {"translation": runner}) as app:
        yield app, runner


BODY = {"texts": ["hello"], "source": "en", "target": "es"}


@pytest.mark.parametrize("faked", ["bug"], indirect=True)
def test_a_bug_is_a_json_500_and_the_app_carries_on(faked):
    app, _ = faked
    response = app.client.post("/translate", json=BODY)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the failure is logged"}
    assert app.client.get("/stats").status_code == 200


@pytest.mark.parametrize("faked", ["loading"], indirect=True)
def test_a_loading_model_is_a_503_with_retry_after(faked):
    app, _ = faked
    for response in (app.client.post("/translate", json=BODY), app.client.get("/models")):
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json() == {"error": "the translation model is still loading; retry shortly"}
    assert app.client.get("/readyz").status_code == 503
    assert app.client.get("/stats").json() == {"translation": {}}  # stats answer while loading


@pytest.mark.parametrize("faked", ["hang"], indirect=True)
def test_the_deadline_is_a_504_and_stops_the_work(faked):
    app, runner = faked
    response = app.client.post("/translate", json=BODY)
    assert response.status_code == 504
    assert response.json()["error"] == (
        "the request did not finish within 1 s (PAIS_REQUEST_TIMEOUT_S); send less per request"
    )
    assert runner.cancelled.wait(5)


@pytest.mark.parametrize("faked", ["hang"], indirect=True)
def test_a_client_that_goes_away_stops_the_work(faked):
    """The request's body, then the client disconnects: the handler is cancelled and
    nothing is sent (there is no one to send it to)."""
    app, runner = faked
    sent: list[dict[str, Any]] = []
    body = httpx.Request("POST", "http://pais.test/translate", json=BODY).content

    async def call() -> None:
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is not None:
                return message
            await asyncio.to_thread(runner.started.wait, 5)  # gone once the work has started
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/translate",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await app.app(scope, receive, send)

    app.run(call())
    assert runner.started.is_set() and runner.cancelled.is_set()
    assert sent == []
