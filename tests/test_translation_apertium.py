"""The apertium engine with the installed Debian pairs: real translations, text that
apertium's stream format treats specially, and pipelines that die or hang."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from models.translation.apertium import ApertiumEngine, discover_modes

WEATHER = "The weather is nice and I would like to buy a new car."

# Spanish sentences and the English nouns their translation must contain.
ES_EN = {
    "El perro duerme en la casa.": ["dog", "house"],
    "Mi hermana compró un libro nuevo.": ["sister", "book"],
    "La ciudad tiene un puerto muy grande.": ["city", "port"],
    "Los niños juegan en el parque.": ["park"],
    "El médico trabaja en el hospital.": ["doctor", "hospital"],
    "Necesito agua y pan para la cena.": ["water", "bread"],
    "El tren llega a la estación a las ocho.": ["train"],
    "Mi padre lee el periódico cada mañana.": ["father", "newspaper", "morning"],
    "La escuela está cerca del río.": ["school", "river"],
    "Hay tres manzanas en la mesa.": ["apples", "table"],
    "El gobierno aprobó una nueva ley.": ["government", "law"],
    "Las montañas están cubiertas de nieve.": ["mountains", "snow"],
}
# English sentences and the Catalan nouns their translation must contain.
EN_CA = {
    "The dog sleeps in the house.": ["gos", "casa"],
    "My sister bought a new book.": ["germana", "llibre"],
    "The city has a very big port.": ["ciutat", "port"],
    "The children play in the park.": ["nens", "parc"],
    "The doctor works in the hospital.": ["hospital"],
    "I need water and bread for dinner.": ["aigua", "pa"],
    "The train arrives at the station at eight.": ["tren", "estació"],
    "My father reads the newspaper every morning.": ["diari", "matí"],
    "The school is near the river.": ["escola", "riu"],
    "There are three apples on the table.": ["pomes", "taula"],
    "The government approved a new law.": ["llei"],
    "The mountains are covered with snow.": ["neu"],
}

# Text with every character apertium's stream format uses as syntax, and more.
SPECIAL = [
    "The price is $5 and ^3 is nine.",
    "Send it to bob@example.com or #general now.",
    "a*b = c / d \\ e",
    "Use <b>bold</b> and [brackets] and {braces}.",
    "The ~home folder and the | pipe.",
    "He said 'hello' to me.",
    "Tabs\tand  double  spaces stay.",
    "A NUL\0byte and a bell\x07here.",
]


@pytest.fixture(scope="module")
def engine():
    engine = ApertiumEngine.load("*", "apertium:*", pipelines_per_pair=2)
    yield engine
    engine.close()


def test_installed_pairs_are_discovered():
    pairs = {(m.source, m.target): m.name for m in discover_modes()}
    assert pairs[("en", "es")] == "eng-spa" and pairs[("es", "en")] == "spa-eng"
    assert pairs[("en", "ca")] == "eng-cat" and pairs[("ca", "en")] == "cat-eng"
    assert not any("_" in name for name in pairs.values())  # variants are left out


def test_english_to_spanish(engine):
    (spanish,) = engine.translate([WEATHER], "en", "es")
    assert "coche nuevo" in spanish


@pytest.mark.parametrize(
    ("pair", "cases"), [(("es", "en"), ES_EN), (("en", "ca"), EN_CA)], ids=["es-en", "en-ca"]
)
def test_key_nouns_survive(engine, pair, cases):
    translations = engine.translate(list(cases), *pair)
    for (sentence, nouns), translation in zip(cases.items(), translations, strict=True):
        words = translation.lower().replace(".", " ").replace("'", " ").split()
        missing = [noun for noun in nouns if noun not in words]
        assert not missing, f"{sentence!r} -> {translation!r} lacks {missing}"


def test_stream_syntax_never_leaks_and_is_never_lost(engine):
    translations = engine.translate(SPECIAL, "en", "es")
    for source, translation in zip(SPECIAL, translations, strict=True):
        for char in "\\^$/<>@*#[]{}~|'\t":
            assert translation.count(char) == source.count(char), (char, source, translation)
        assert "\0" not in translation
    assert "  " in translations[6] and "\t" in translations[6]
    # the engine is still in step: a plain sentence after them is answered as itself
    assert "coche nuevo" in engine.translate([WEATHER], "en", "es")[0]


def test_unknown_word_marks_are_dropped_unless_asked_for(engine):
    (plain,) = engine.translate(["The zorblax is green."], "en", "es")
    assert "zorblax" in plain and "*" not in plain
    marked_engine = ApertiumEngine.load("en-es", "apertium:en-es", pipelines_per_pair=1, show_unknown=True)
    try:
        (marked,) = marked_engine.translate(["The zorblax is green."], "en", "es")
    finally:
        marked_engine.close()
    assert "*zorblax" in marked


def test_answers_do_not_depend_on_what_came_before(engine):
    sentences = list(ES_EN)
    together = engine.translate(sentences, "es", "en")
    reversed_order = engine.translate(sentences[::-1], "es", "en")[::-1]
    alone = [engine.translate([s], "es", "en")[0] for s in sentences[:4]]
    assert together == reversed_order
    assert together[:4] == alone


def test_concurrent_callers_get_their_own_answers():
    engine = ApertiumEngine.load("es-en", "apertium:es-en", pipelines_per_pair=1)
    results: dict[int, list[str]] = {}
    sentences = list(ES_EN)

    def caller(index: int) -> None:
        mine = [sentences[index]] * 5 + [sentences[(index + 1) % len(sentences)]]
        results[index] = engine.translate(mine, "es", "en")

    try:
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.close()
    for index, translations in results.items():
        first_noun = ES_EN[sentences[index]][0]
        next_noun = ES_EN[sentences[(index + 1) % len(sentences)]][0]
        assert all(first_noun in t.lower() for t in translations[:5]), translations
        assert next_noun in translations[5].lower()


def test_a_pipeline_that_dies_is_replaced(engine):
    pool = engine.pool("en", "es")
    victim = pool.pipelines[0]
    os.killpg(victim.pid, signal.SIGKILL)
    assert "coche nuevo" in engine.translate([WEATHER], "en", "es")[0]
    assert pool.restarts >= 1 and victim not in pool.pipelines


def test_a_pipeline_that_hangs_is_killed_and_the_batch_retried():
    engine = ApertiumEngine.load("en-es", "apertium:en-es", pipelines_per_pair=1, timeout_s=2)
    try:
        pool = engine.pool("en", "es")
        stuck = pool.pipelines[0]
        os.killpg(stuck.pid, signal.SIGSTOP)  # every stage frozen: no answer ever comes
        (spanish,) = engine.translate([WEATHER], "en", "es")
        assert "coche nuevo" in spanish
        assert not stuck.alive and "no answer for 2 s" in (stuck.dead_reason or "")
        assert pool.restarts == 1
    finally:
        engine.close()
