"""A task added in one file (tests/tiny_task.py) is served, listed in /models, described
in the OpenAPI document and reachable from the SDK, typed methods or not, and from batch
jobs: nothing else in PAIS had to change. Its runtime runs in the generic model service,
as any heavy task's does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import pais
from pais.batch import run_batch

from .servers import bentoml_serve, free_port, running_server, service_env

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    env = service_env(
        PAIS_TASK_MODULES="tests.tiny_task",
        PAIS_TASKS="reverse",
        PAIS_REVERSE_SERVE_IN="model-service",
        PAIS_REVERSE_MAX_CHARS="20",
    )
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, env) as url:
        yield url


def test_it_is_served_with_its_limits_and_errors(server):
    answer = httpx.post(f"{server}/reverse", json={"text": "stressed"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": "reverser", "text": "desserts"}
    too_long = httpx.post(f"{server}/reverse", json={"text": "x" * 21})
    assert too_long.status_code == 413 and "PAIS_REVERSE_MAX_CHARS" in too_long.json()["error"]
    empty = httpx.post(f"{server}/reverse", json={"text": " "})
    assert empty.status_code == 400 and empty.json()["detail"][0]["kind"] == "empty"
    stats = httpx.get(f"{server}/stats").json()
    assert stats["reverse"]["served_in"] == "model-service" and stats["reverse"]["predict_batch"]


def test_it_is_in_models_and_the_openapi_document(server):
    cards = httpx.get(f"{server}/models").json()["models"]
    assert [(card["task"], card["name"], card["licence"]) for card in cards] == [
        ("reverse", "reverser", "MIT")
    ]
    document = httpx.get(f"{server}/docs.json").json()
    operation = document["paths"]["/reverse"]["post"]
    assert operation["operationId"] == "reverse" and operation["x-pais-task"] == "reverse"
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["properties"]["text"]["maxLength"] == 20  # the served limit, not a default
    assert {"200", "400", "413"} <= set(operation["responses"])
    assert "/classify" not in document["paths"]  # only what is served


def test_the_sdk_reaches_it_by_name(server):
    with pais.Client(server) as client:
        assert "reverse" in client.operations()
        assert client.call("reverse", text="drawer") == {"model": "reverser", "text": "reward"}
        with pytest.raises(pais.BadRequestError, match="text is empty"):
            client.call("reverse", text="")
        with pytest.raises(ValueError, match="has no field"):
            client.call("reverse", txt="drawer")


def test_batch_jobs_reach_it_by_name(server, tmp_path):
    records = tmp_path / "texts.jsonl"
    records.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": word}) + "\n" for i, word in enumerate(["live", "stop", ""])
        )
    )
    out = tmp_path / "out.jsonl"
    summary = run_batch("reverse", str(records), str(out), url=server, progress=False)
    assert (summary.done, summary.failed) == (2, 1), summary
    lines = {line["id"]: line for line in map(json.loads, out.read_text().splitlines())}
    assert lines["r0"]["result"]["text"] == "evil" and lines["r1"]["result"]["text"] == "pots"
    assert lines["r2"]["error"]["status"] == 400
