"""POST /translate and GET /translate/languages against a real `bentoml serve` on 127.0.0.1."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import TEST_MAX_TEXT_CHARS, TEST_MAX_TEXTS, TEST_MAX_TRANSLATE_CHARS
from .translation_texts import SENTENCES

pytestmark = pytest.mark.server

WEATHER = "The weather is nice and I would like to buy a new car."


def translate(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/translate", json=body, timeout=120)


def test_english_to_spanish_over_http(pais_server):
    response = translate(pais_server, texts=[WEATHER], source="en", target="es")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "coche nuevo" in body["translations"][0]
    assert body["model"] == "apertium:eng-spa" and (body["source"], body["target"]) == ("en", "es")
    assert body["route"] == [{"source": "en", "target": "es", "model": "apertium:eng-spa"}]
    assert body["detection"] is None


def test_paragraphs_and_empty_strings_keep_their_place(pais_server):
    letter = "Dear friend.\n\nThe house is big. The garden is green.\n\nThe cat sleeps.\n"
    response = translate(pais_server, texts=["", letter, "  ", "The dog eats."], source="en", target="ca")
    assert response.status_code == 200, response.text
    empty, translated, blank, dog = response.json()["translations"]
    assert (empty, blank) == ("", "  ")
    assert translated.count("\n\n") == letter.count("\n\n") == 2 and translated.endswith("\n")
    paragraphs = translated.split("\n\n")
    assert "casa" in paragraphs[1] and "gat" in paragraphs[2]
    assert "gos" in dog


def test_source_is_detected_and_reported(pais_server):
    for language, target, noun in (("es", "en", "car"), ("ca", "en", "car"), ("en", "es", "coche")):
        sentence = SENTENCES[language][1]  # "I would like to buy a new car" in each language
        response = translate(pais_server, texts=[sentence], target=target)  # source defaults to auto
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["source"] == language and body["detection"]["language"] == language
        assert noun in body["translations"][0].lower()


@pytest.mark.parametrize("language", ["fr", "de", "it", "pt", "nl"])
def test_detected_but_unserved_languages_are_named(pais_server, language):
    response = translate(pais_server, texts=SENTENCES[language][:2], source="auto", target="en")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"][0]["source"] == language
    assert f"no translation from {language}" in body["error"] and "es->en" in body["error"]


def test_languages_lists_pairs_with_engine_and_licence(pais_server):
    response = httpx.get(f"{pais_server}/translate/languages")
    assert response.status_code == 200
    body = response.json()
    pairs = {(p["source"], p["target"]): p for p in body["pairs"]}
    assert set(pairs) == {("en", "es"), ("es", "en"), ("en", "ca"), ("ca", "en")}
    assert pairs[("en", "ca")]["engine"] == "apertium" and pairs[("en", "ca")]["model"] == "apertium:eng-cat"
    assert all("GPL" in p["licence"] for p in pairs.values())
    assert body["pivot"] is False and body["auto_detection"] == "lingua"


def test_models_show_the_language_data_and_detector(pais_server):
    cards = {
        c["name"]: c
        for c in httpx.get(f"{pais_server}/models").json()["models"]
        if c["task"] == "translation"
    }
    assert {"apertium-eng-spa", "apertium-eng-cat", "lingua"} <= set(cards)
    assert cards["apertium-eng-spa"]["licence"].startswith("GPL-2 (language data)")
    assert cards["apertium-eng-spa"]["version"].startswith("apertium-eng-spa=0.8.1")
    assert cards["lingua"]["licence"] == "Apache-2.0"


# name -> (request body, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[object, int, str]] = {
    "unknown source code": (
        {"texts": ["hola"], "source": "xx", "target": "en"},
        400,
        "unknown source language code 'xx'",
    ),
    "unknown target code": ({"texts": ["hello"], "source": "en", "target": "klingon"}, 400, "unknown target"),
    "auto as target": ({"texts": ["hello"], "source": "en", "target": "auto"}, 400, "unknown target"),
    "unsupported pair": ({"texts": ["hola"], "source": "es", "target": "ca"}, 422, "supported pairs: ca->en"),
    "no letters to detect": ({"texts": ["12345"], "target": "en"}, 422, "give `source` explicitly"),
    "text over the limit": (
        {"texts": ["ok", "a" * (TEST_MAX_TEXT_CHARS + 1)], "source": "en", "target": "es"},
        413,
        f"texts[1] has {TEST_MAX_TEXT_CHARS + 1} characters; at most {TEST_MAX_TEXT_CHARS}",
    ),
    "too many characters in all": (
        {"texts": ["a" * TEST_MAX_TEXT_CHARS] * 3, "source": "en", "target": "es"},
        413,
        f"{3 * TEST_MAX_TEXT_CHARS} characters in one request; at most {TEST_MAX_TRANSLATE_CHARS} in all",
    ),
    "too many texts": (
        {"texts": ["hi"] * (TEST_MAX_TEXTS + 1), "source": "en", "target": "es"},
        413,
        f"at most {TEST_MAX_TEXTS}",
    ),
    "texts is a string": (
        {"texts": "hello", "source": "en", "target": "es"},
        400,
        "texts: Input should be a valid",
    ),
    "a text is a number": ({"texts": ["hi", 5], "source": "en", "target": "es"}, 400, "texts.1"),
    "target is a list": ({"texts": ["hi"], "source": "en", "target": ["es"]}, 400, "target"),
    "missing target": ({"texts": ["hi"], "source": "en"}, 400, "target: Field required"),
    "missing texts": ({"source": "en", "target": "es"}, 400, "texts: Field required"),
    "body is a list": (["hello"], 400, "must be a JSON object"),
}


@pytest.mark.parametrize(("body", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_carries_on(pais_server, body, status, text):
    response = httpx.post(f"{pais_server}/translate", json=body, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()
    assert isinstance(error["error"], str) and text in error["error"], error
    follow_up = translate(pais_server, texts=[WEATHER], source="en", target="es")
    assert follow_up.status_code == 200 and "coche nuevo" in follow_up.json()["translations"][0]


def test_malformed_json_is_a_4xx(pais_server):
    response = httpx.post(
        f"{pais_server}/translate", content=b'{"texts": [', headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500 and "error" in response.json()


def test_concurrent_requests_for_different_pairs_are_batched(pais_server):
    before = httpx.get(f"{pais_server}/stats").json()["translation"].get("predict_batch", {})
    jobs = [
        ("en", "es", WEATHER, "coche"),
        ("es", "en", "El perro duerme.", "dog"),
        ("en", "ca", "The dog sleeps.", "gos"),
    ]

    def one(i: int) -> tuple[str, httpx.Response]:
        # A dozen sentences each (one piece of under 1,000 characters): long enough that a
        # batch is still running when the next requests arrive, so they queue and share one.
        source, target, text, expected = jobs[i % len(jobs)]
        return expected, translate(pais_server, texts=[" ".join([text] * 12)], source=source, target=target)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(48)))
    for expected, response in results:
        assert response.status_code == 200, response.text
        assert all(expected in text.lower() for text in response.json()["translations"])
    after = httpx.get(f"{pais_server}/stats").json()["translation"]["predict_batch"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items()}
    assert sum(size * count for size, count in formed.items()) >= 48
    assert max(size for size, count in formed.items() if count > 0) > 1, formed
