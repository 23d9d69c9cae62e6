"""POST /translate and GET /translate/languages through the in-process app
(tests/inprocess.py) on the real apertium engines: answers, how a long request is cut
into pieces and put back together, and the error answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .bad_requests import assert_error
from .conftest import TEST_MAX_TEXT_CHARS, TEST_MAX_TEXTS, TEST_MAX_TRANSLATE_CHARS
from .inprocess import InProcessPais

WEATHER = "The weather is nice and I would like to buy a new car."


@pytest.fixture(scope="module")
def client(pais_app: InProcessPais) -> httpx.Client:
    pais_app.require("translation")
    return pais_app.client


def translate(client: httpx.Client, texts: list[str], target: str = "es", **options: str) -> httpx.Response:
    return client.post("/translate", json={"texts": texts, "target": target, **options})


def test_english_to_spanish_keeps_empty_texts_and_paragraphs(client):
    response = translate(client, [WEATHER, "", "The dog eats.\n\n  The house is big.\n"], source="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["source"], body["target"]) == ("apertium:eng-spa", "en", "es")
    assert body["route"] == [{"source": "en", "target": "es", "model": "apertium:eng-spa"}]
    assert body["detection"] is None
    weather, empty, paragraphs = body["translations"]
    assert "coche nuevo" in weather and empty == ""
    first, second = paragraphs.split("\n\n")
    assert "perro" in first and second.startswith("  ") and "casa" in second and second.endswith("\n")


def test_the_source_language_is_detected_and_reported(client):
    response = translate(client, ["El gato duerme en la casa."], target="en")
    body = response.json()
    assert body["source"] == "es" and body["detection"]["language"] == "es"
    assert 0 < body["detection"]["confidence"] <= 1
    assert "cat" in body["translations"][0]
    # codes are read in any case and spacing
    assert (
        "hola" in translate(client, ["hello"], target=" ES", source="EN ").json()["translations"][0].lower()
    )


def test_a_long_request_is_cut_into_pieces_and_put_back_in_place(client):
    """Over 1,000 characters a request is cut into pieces of whole sentences that are
    batched like separate items; the answer must read as if translated whole."""
    story = " ".join(["The dog eats."] * 80)  # ~1,100 characters: two pieces
    response = translate(client, [story, "", "The house is big.\n\nIt is red."], target="es")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "en" and body["detection"]["language"] == "en"  # identified before cutting
    long, empty, short = body["translations"]
    assert long.count("perro") == 80 and long.count(". ") == 79 and not long.endswith(" ")
    assert empty == "" and short.count("\n\n") == 1 and "casa" in short


def test_control_characters_are_dropped(client):
    response = translate(client, ["The\x00 dog\x07 eats.\tThe cat\x1b sleeps."], source="en")
    assert response.status_code == 200, response.text
    translated = response.json()["translations"][0]
    assert "perro" in translated and "\t" in translated
    assert not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in translated)


def test_languages_lists_pairs_engines_and_licences(client):
    response = client.get("/translate/languages")
    assert response.status_code == 200
    body = response.json()
    pairs = {(p["source"], p["target"]): p for p in body["pairs"]}
    assert set(pairs) == {("en", "es"), ("es", "en"), ("en", "ca"), ("ca", "en")}
    assert pairs[("en", "ca")]["model"] == "apertium:eng-cat" and pairs[("en", "ca")]["route"] == ["en", "ca"]
    assert all(p["engine"] == "apertium" and "GPL" in p["licence"] for p in pairs.values())
    assert body["languages"] == {"ca": "Catalan", "en": "English", "es": "Spanish"}
    assert body["pivot"] is False and body["auto_detection"] == "lingua"


# name -> (request body, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[Any, int, str]] = {
    "unknown source code": (
        {"texts": ["hola"], "source": "xx", "target": "en"},
        400,
        "unknown source language code 'xx'; use ISO 639-1 codes (served: ca, en, es)",
    ),
    "unknown target code": ({"texts": ["hello"], "source": "en", "target": "klingon"}, 400, "unknown target"),
    "unsupported pair": (
        {"texts": ["hola"], "source": "es", "target": "ca"},
        422,
        "no translation from es (Spanish) to ca (Catalan); supported pairs: ca->en",
    ),
    "nothing to detect": (
        {"texts": ["12345"], "target": "en"},
        422,
        "cannot identify the source language of texts without letters; give `source` explicitly",
    ),
    "nothing to detect in a long text": (  # identified by the service before cutting it
        {"texts": ["12345 " * 200], "target": "en"},
        422,
        "cannot identify the source language of texts without letters; give `source` explicitly",
    ),
    "text over its limit": (
        {"texts": ["ok", "a" * (TEST_MAX_TEXT_CHARS + 1)], "source": "en", "target": "es"},
        413,
        f"texts[1] has {TEST_MAX_TEXT_CHARS + 1} characters; at most {TEST_MAX_TEXT_CHARS} each "
        "(PAIS_TRANSLATION_MAX_TEXT_CHARS)",
    ),
    "too many characters in all": (
        {"texts": ["a" * TEST_MAX_TEXT_CHARS] * 3, "source": "en", "target": "es"},
        413,
        f"{3 * TEST_MAX_TEXT_CHARS} characters in one request; at most {TEST_MAX_TRANSLATE_CHARS} in all "
        "(PAIS_TRANSLATION_MAX_REQUEST_CHARS)",
    ),
    "too many texts": (
        {"texts": ["hi"] * (TEST_MAX_TEXTS + 1), "source": "en", "target": "es"},
        413,
        f"texts: {TEST_MAX_TEXTS + 1} texts; at most {TEST_MAX_TEXTS} (PAIS_TRANSLATION_MAX_TEXTS)",
    ),
    "texts is a string": ({"texts": "hello", "target": "es"}, 400, "texts: Input should be a valid list"),
    "a text is a number": (
        {"texts": ["hi", 5], "target": "es"},
        400,
        "texts.1: Input should be a valid string",
    ),
    "missing target": ({"texts": ["hi"], "source": "en"}, 400, "target: Field required"),
    "misspelt field": ({"texts": ["hi"], "target": "es", "sorce": "en"}, 400, "unexpected field(s): sorce"),
    "body is a list": (["hello"], 400, "body must be a JSON object with the fields texts, target, source"),
}


@pytest.mark.parametrize(("body", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx(client, body, status, text):
    assert_error(client.post("/translate", json=body), status, text)


def test_per_item_errors_say_which_and_why(client):
    over = assert_error(
        translate(
            client, ["a" * (TEST_MAX_TEXT_CHARS + 1), "ok", "b" * (TEST_MAX_TEXT_CHARS + 2)], source="en"
        ),
        413,
        "texts[0]",
    )
    assert [(d["index"], d["kind"]) for d in over["detail"]] == [(0, "too_large"), (2, "too_large")]
    pair = assert_error(translate(client, ["hola"], target="ca", source="es"), 422, "supported pairs")
    assert pair["detail"][0]["kind"] == "unsupported_pair"
    assert set(pair["detail"][0]["supported_pairs"]) == {"ca->en", "en->ca", "en->es", "es->en"}


@pytest.mark.parametrize(
    ("content", "media", "status", "text"),
    [
        (
            b"texts=hi&target=es",
            "application/x-www-form-urlencoded",
            415,
            "/translate takes application/json",
        ),
        (b'{"texts": [', "application/json", 400, "body is not valid JSON"),
        (b'{"texts": ["\xff"], "target": "es"}', "application/json", 400, "body is not UTF-8 text"),
        (
            b'{"texts": [' + b"[" * 40 + b"]" * 40 + b'], "target": "es"}',
            "application/json",
            400,
            "nests JSON",
        ),
    ],
    ids=["form", "broken-json", "not-utf8", "too-deep"],
)
def test_bodies_that_are_not_the_json_asked_for(client, content, media, status, text):
    assert_error(client.post("/translate", content=content, headers={"content-type": media}), status, text)


def test_json_without_a_content_type_is_read_as_json(client):
    response = client.post(
        "/translate", content=b'{"texts": ["The dog eats."], "source": "en", "target": "es"}'
    )
    assert response.status_code == 200 and "perro" in response.json()["translations"][0]


def test_language_identification_is_loaded_before_the_service_is_ready():
    """lingua builds its language models on first use: 1.5 s on a quiet machine, ~20 s on
    this busy 2-core one. LanguageDetector.warm_up exists for this; unless the runtime's
    load calls it, the first source=auto request pays it instead of start-up (and /ping
    says ready before the model is). The deterministic signal: the detector's models are
    built when the runtime the service loads is returned (a fresh one, so that no earlier
    test's request has built them)."""
    from service.model_store import load_task_runtime
    from service.tasks import TASKS

    from .inprocess import settings_for

    translator = load_task_runtime(TASKS.get("translation"), settings_for("translation"))
    try:
        assert translator.detector._detector is not None, "Translator.load leaves language detection cold"
    finally:
        translator.close()
