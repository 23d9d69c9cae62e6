"""The task registry (service/tasks/__init__.py) and PAIS_TASKS: which tasks exist, which
a server serves, a task added by its declaration alone (PAIS_TASK_MODULES), and a
`bentoml serve` of one task that starts only that task's model."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from models.errors import ItemError
from models.info import ModelInfo
from service.config import ModelSettings, setting
from service.context import Context
from service.errors import item_errors
from service.runners import InlineRunner
from service.settings import Settings, markdown_table
from service.task import Limit, Operation, Task
from service.tasks import BUILTIN, TASKS, TaskRegistry, registry_from_env

from .inprocess import serving, settings_for
from .servers import bentoml_serve, free_port, running_server, service_env

BUILTIN_TASKS = ["classification", "detection", "video", "translation", "speech", "recommendation"]


def test_the_registry_lists_the_builtin_tasks_and_their_routes():
    assert TASKS.names() == BUILTIN_TASKS
    assert [task.name for task in TASKS.all()] == BUILTIN_TASKS
    routes = {op.path: task.name for task, op in TASKS.operations()}
    assert routes == {
        "/classify": "classification",
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
    with pytest.raises(KeyError, match="unknown task 'paint'; tasks: classification, detection, video"):
        TASKS.get("paint")


def test_tasks_served_are_a_subset_in_registry_order():
    assert TASKS.served("all") == tuple(BUILTIN_TASKS)
    assert TASKS.served("speech,translation") == ("translation", "speech")
    assert TASKS.served(" video ") == ("classification", "detection", "video")
    assert Settings.from_env({"PAIS_TASKS": "recommendation"}).served_tasks() == ("recommendation",)


@pytest.mark.parametrize("setting", ["classification,paint", "paint", " , ", ""])
def test_unknown_task_names_are_refused_with_the_accepted_list(setting):
    with pytest.raises(ValueError) as refused:
        TASKS.served(setting)
    message = str(refused.value)
    assert f"PAIS_TASKS={setting!r}" in message
    assert "accepted: classification, detection, video, translation, speech, recommendation or all" in message


# -- a task added by its declaration alone ------------------------------------------------
# This module is itself a task module (it defines TASK), loaded with PAIS_TASK_MODULES.


@dataclass(frozen=True)
class ShoutSettings(ModelSettings):
    model: str = setting("builtin:shout", "Where the shouting comes from.")
    max_texts: int = setting(3, "Most texts in one /shout request.", 1)


class ShoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: Annotated[list[str], Limit("max_texts", what="texts")]


class ShoutRuntime:
    """A runtime in the models/ sense, pure Python: upper-cases texts; empty ones fail."""

    cards = (ModelInfo("shout", "shouter", "builtin:shout", "1", "MIT", "this test"),)

    def predict_batch(self, items: list[str]) -> list[str | ItemError]:
        return [item.upper() if item else ItemError("empty", "nothing to shout") for item in items]


async def shout(ctx: Context, request: ShoutRequest) -> list[str]:
    """Shout the texts."""
    return item_errors(await ctx.predict(request.texts), "texts")


TASK = Task(
    name="shout",
    summary="upper-cases texts",
    runtime=f"{__name__}:ShoutRuntime",
    settings=ShoutSettings,
    operations=(Operation("/shout", shout),),
)


def plugin_registry() -> TaskRegistry:
    return registry_from_env({"PAIS_TASK_MODULES": f" {__name__} ,"})


def test_a_declared_task_is_served_settings_routes_and_docs_included():
    registry = plugin_registry()
    assert registry.names() == [*BUILTIN_TASKS, "shout"]
    settings = settings_for("shout", registry, PAIS_SHOUT_MAX_TEXTS="2")
    assert settings.section("shout").max_texts == 2
    with pytest.raises(ValueError, match="PAIS_SHOUT_MAX_TEXT is not a setting of task shout"):
        settings_for("shout", registry, PAIS_SHOUT_MAX_TEXT="2")
    runner = InlineRunner("shout", ShoutRuntime, settings.section("shout").max_batch_size)
    runner._load_now()  # what start()'s thread runs
    with serving(settings, {"shout": runner}, registry) as app:
        assert app.tasks == ("shout",)
        answer = app.client.post("/shout", json={"texts": ["hello", "world"]})
        assert answer.status_code == 200 and answer.json() == ["HELLO", "WORLD"]
        over = app.client.post("/shout", json={"texts": ["a", "b", "c"]})
        assert over.status_code == 413 and "at most 2 (PAIS_SHOUT_MAX_TEXTS)" in over.json()["error"]
        empty = app.client.post("/shout", json={"texts": ["a", ""]})
        assert empty.status_code == 400 and empty.json()["detail"][0]["index"] == 1
        assert "/shout" in app.client.get("/docs.json").json()["paths"]
        # SageMaker's default operation is the first served when classify is not
        invoked = app.client.post("/invocations", json={"texts": ["sage"]})
        assert invoked.status_code == 200 and invoked.json() == ["SAGE"]
        assert app.client.get("/models").json()["models"][0]["name"] == "shouter"
    assert "| `PAIS_SHOUT_MAX_TEXTS` | `3` | Most texts in one /shout request. |" in markdown_table(registry)


def test_declarations_are_checked_when_the_registry_loads(monkeypatch):
    twin = types.ModuleType("shout_twin")
    twin.TASK = TASK  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shout_twin", twin)
    with pytest.raises(ValueError, match="task 'shout' is declared twice \\(shout_twin\\)"):
        TaskRegistry([*BUILTIN, __name__, "shout_twin"]).names()
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
