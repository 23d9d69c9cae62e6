"""The task registry (service/tasks/__init__.py) and PAIS_TASKS: which tasks exist, which
a server serves, a task added by its declaration alone (PAIS_TASK_MODULES), and a
`bentoml serve` of one task that starts only that task's model."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator

import httpx
import pytest

from service.runners import InlineRunner
from service.settings import Settings, markdown_table
from service.tasks import BUILTIN, TASKS, TaskRegistry, registry_from_env

from .inprocess import serving, settings_for
from .servers import bentoml_serve, free_port, running_server, service_env

BUILTIN_TASKS = ["classification", "detection", "recommendation", "speech", "translation", "video"]


def test_the_registry_lists_the_builtin_tasks_and_their_routes():
    assert TASKS.names() == BUILTIN_TASKS
    assert [task.name for task in TASKS.all()] == BUILTIN_TASKS
    routes = {op.path: task.name for task, op in TASKS.operations()}
    assert routes == {
        "/classify": "classification",
        "/embed": "classification",
        "/detect": "detection",
        "/detect/annotated": "detection",
        "/analyze_video": "video",
        "/translate": "translation",
        "/synthesize": "speech",
        "/synthesize/stream": "speech",
        "/recommend": "recommendation",
        "/similar_items": "recommendation",
    }
    assert [op.name for _, op in TASKS.operations(["detection"])] == ["detect", "detect_annotated"]
    # video has no model of its own: it uses the image tasks' runners
    assert TASKS.get("video").runtime is None and set(TASKS.get("video").requires) == {
        "detection",
        "classification",
    }
    with pytest.raises(
        KeyError, match="unknown task 'paint'; tasks: classification, detection, recommendation"
    ):
        TASKS.get("paint")


def test_tasks_served_are_a_subset_in_registry_order():
    assert TASKS.served("all") == tuple(BUILTIN_TASKS)
    assert TASKS.served("translation,speech") == ("speech", "translation")
    assert TASKS.served(" video ") == ("classification", "detection", "video")
    assert Settings.from_env({"PAIS_TASKS": "recommendation"}).served_tasks() == ("recommendation",)


@pytest.mark.parametrize("setting", ["classification,paint", "paint", " , ", ""])
def test_unknown_task_names_are_refused_with_the_accepted_list(setting):
    with pytest.raises(ValueError) as refused:
        TASKS.served(setting)
    message = str(refused.value)
    assert f"PAIS_TASKS={setting!r}" in message
    assert "accepted: classification, detection, recommendation, speech, translation, video or all" in message


# -- a task added by its declaration alone ------------------------------------------------
# tests/tiny_task.py declares "reverse"; tests/test_new_task.py serves it with `bentoml
# serve` and the SDK. Here: the registry, its settings section and the in-process app.

TINY_TASK = "tests.tiny_task"


def plugin_registry() -> TaskRegistry:
    return registry_from_env({"PAIS_TASK_MODULES": f" {TINY_TASK} ,"})


def test_a_declared_task_is_served_with_its_section_routes_and_docs():
    from .tiny_task import Reverser

    registry = plugin_registry()
    assert registry.names() == [*BUILTIN_TASKS, "reverse"]
    assert TASKS.names() == BUILTIN_TASKS  # the default registry is untouched
    settings = settings_for("reverse", registry, PAIS_REVERSE_MAX_CHARS="6")
    assert settings.section("reverse").max_chars == 6
    with pytest.raises(ValueError, match="PAIS_REVERSE_MAX_CHAR is not a setting of task reverse"):
        settings_for("reverse", registry, PAIS_REVERSE_MAX_CHAR="6")
    assert "| `PAIS_REVERSE_MAX_CHARS` | `100` | Longest text /reverse takes. |" in markdown_table(registry)
    runner = InlineRunner("reverse", Reverser.load, settings.section("reverse").max_batch_size)
    runner._load_now()  # what start()'s thread runs
    with serving(settings, {"reverse": runner}, registry) as app:
        assert app.tasks == ("reverse",)
        answer = app.client.post("/reverse", json={"text": "drawer"})
        assert answer.status_code == 200 and answer.json() == {"model": "reverser", "text": "reward"}
        over = app.client.post("/reverse", json={"text": "x" * 7})
        assert over.status_code == 413 and "at most 6 (PAIS_REVERSE_MAX_CHARS)" in over.json()["error"]
        empty = app.client.post("/reverse", json={"text": " "})
        assert empty.status_code == 400 and empty.json()["detail"][0]["kind"] == "empty"
        assert "/reverse" in app.client.get("/docs.json").json()["paths"]
        # SageMaker's default operation is the first served when classify is not
        invoked = app.client.post("/invocations", json={"text": "sage"})
        assert invoked.status_code == 200 and invoked.json()["text"] == "egas"
        assert app.client.get("/models").json()["models"][0]["name"] == "reverser"


def test_declarations_are_checked_when_the_registry_loads(monkeypatch):
    from .tiny_task import TASK

    twin = types.ModuleType("reverse_twin")
    twin.TASK = TASK  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reverse_twin", twin)
    with pytest.raises(ValueError, match="task 'reverse' is declared twice \\(reverse_twin\\)"):
        TaskRegistry([*BUILTIN, TINY_TASK, "reverse_twin"]).names()
    with pytest.raises(ValueError, match="task module json defines no TASK"):
        TaskRegistry([*BUILTIN, "json"]).names()


# -- one task under `bentoml serve` ------------------------------------------------------


@pytest.fixture(scope="module")
def translation_only() -> Iterator[str]:
    port = free_port()
    with running_server(
        bentoml_serve("service.gateway:PAIS", port), port, service_env(PAIS_TASKS="translation")
    ) as url:
        yield url


@pytest.mark.server
def test_only_the_named_tasks_are_served(translation_only):
    assert {card["task"] for card in httpx.get(f"{translation_only}/models").json()["models"]} == {
        "translation"
    }
    assert set(httpx.get(f"{translation_only}/stats").json()) == {"translation"}
    refused = httpx.post(f"{translation_only}/classify", files=[("images", ("a.jpg", b"x", "image/jpeg"))])
    assert refused.status_code == 404 and "POST /classify is not an endpoint" in refused.json()["error"]
    assert httpx.get(f"{translation_only}/voices").status_code == 404
    assert httpx.get(f"{translation_only}/translate/languages").status_code == 200
    assert set(httpx.get(f"{translation_only}/docs.json").json()["paths"]) >= {"/translate", "/models"}
    assert "/classify" not in httpx.get(f"{translation_only}/docs.json").json()["paths"]
    # SageMaker's default task is the first one served when classification is not
    text = "The weather is nice and I would like to buy a new car."
    body = json.dumps({"texts": [text], "source": "en", "target": "es"}).encode()
    invoked = httpx.post(
        f"{translation_only}/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert invoked.status_code == 200 and "coche nuevo" in invoked.json()["translations"][0]
