"""PAIS_TASKS: a server that serves a subset of the tasks starts only their model services."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from models.catalog import CATALOG
from service.settings import SERVABLE_TASKS, Settings

from .servers import bentoml_serve, free_port, running_server, service_env

pytestmark = pytest.mark.server


def test_servable_tasks_are_the_catalog_plus_video():
    assert set(SERVABLE_TASKS) == set(CATALOG) | {"video"}


def test_tasks_setting():
    assert Settings.from_env({}).served_tasks == SERVABLE_TASKS
    assert Settings.from_env({"PAIS_TASKS": "speech, translation"}).served_tasks == ("translation", "speech")
    with pytest.raises(ValueError, match=r"unknown task.*paint.*accepted: classification"):
        Settings.from_env({"PAIS_TASKS": "classification,paint"})
    with pytest.raises(ValueError, match="accepted"):
        Settings.from_env({"PAIS_TASKS": " , "})


@pytest.fixture(scope="module")
def translation_only() -> Iterator[str]:
    port = free_port()
    with running_server(
        bentoml_serve("service.gateway:PAIS", port), port, service_env(PAIS_TASKS="translation")
    ) as url:
        yield url


def test_only_the_named_tasks_are_served(translation_only):
    assert {card["task"] for card in httpx.get(f"{translation_only}/models").json()["models"]} == {
        "translation"
    }
    assert set(httpx.get(f"{translation_only}/stats").json()) == {"translation"}
    refused = httpx.post(f"{translation_only}/classify", files=[("images", ("a.jpg", b"x", "image/jpeg"))])
    assert refused.status_code == 404 and "POST /classify is not an endpoint" in refused.json()["error"]
    assert httpx.get(f"{translation_only}/voices").status_code == 404
    assert httpx.get(f"{translation_only}/translate/languages").status_code == 200
    # SageMaker's default task is the first one served when classification is not
    text = "The weather is nice and I would like to buy a new car."
    body = json.dumps({"texts": [text], "source": "en", "target": "es"}).encode()
    invoked = httpx.post(
        f"{translation_only}/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert invoked.status_code == 200 and "coche nuevo" in invoked.json()["translations"][0]
