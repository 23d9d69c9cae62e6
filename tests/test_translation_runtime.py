"""Translator: the pair catalog, pivots, batching across requests, paragraphs, snapshots,
and the transformers engine on a tiny Marian model trained here."""

from __future__ import annotations

import pytest

from models.sources import SourceError
from models.translation import TranslationError, TranslationRequest, Translator

from .tiny_seq2seq import EN_ES, EN_TO, EN_TO_FLORES, make_tiny_m2m100, make_tiny_marian, make_tiny_nllb

WEATHER = "The weather is nice and I would like to buy a new car."


@pytest.fixture(scope="module")
def translator():
    translator = Translator.load("default", pipelines_per_pair=1)
    yield translator
    translator.close()


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    # named like an OPUS-MT model, so its pair is read from the name
    return make_tiny_marian(tmp_path_factory.mktemp("models") / "opus-mt-en-es-tiny")


def test_default_catalog_is_every_installed_apertium_pair(translator):
    assert translator.supported_pairs() == ["ca->en", "en->ca", "en->es", "es->en"]
    listing = translator.languages()
    assert listing.languages == {"ca": "Catalan", "en": "English", "es": "Spanish"}
    assert listing.pivot is False
    en_es = next(p for p in listing.pairs if (p.source, p.target) == ("en", "es"))
    assert en_es.model == "apertium:eng-spa" and en_es.engine == "apertium"
    assert en_es.route == ["en", "es"]
    assert "GPL" in en_es.licence


def test_paragraphs_spacing_and_empty_texts_stay_in_place(translator):
    texts = ["", "The cat sleeps. The dog eats.\n\n  The house is big.\nIt is red.\n", "   ", WEATHER]
    result = translator.translate(texts, source="en", target="es")
    assert result.translations[0] == "" and result.translations[2] == "   "
    body = result.translations[1]
    assert body.count("\n\n") == 1 and body.endswith("\n") and "\n  " in body
    first, second = body.split("\n\n")
    assert "gato" in first and "perro" in first and "casa" in second
    assert "coche nuevo" in result.translations[3]


def test_requests_for_different_pairs_share_a_batch(translator):
    results = translator.translate_many(
        [
            TranslationRequest([WEATHER], "en", "es"),
            TranslationRequest(["El perro duerme."], "es", "en"),
            TranslationRequest(["hola"], "es", "ca"),
            TranslationRequest(["The dog sleeps."], "en", "ca"),
            TranslationRequest(["hello"], "en", "xx"),
            TranslationRequest(["El gato duerme en la casa."], "auto", "en"),
        ]
    )
    assert "coche nuevo" in results[0].translations[0]
    assert "dog" in results[1].translations[0]
    assert isinstance(results[2], TranslationError) and results[2].kind == "unsupported_pair"
    assert "en->es" in results[2].message and results[2].detail["supported_pairs"]
    assert "gos" in results[3].translations[0]
    assert isinstance(results[4], TranslationError) and results[4].kind == "unknown_language"
    assert results[5].source == "es" and results[5].detection.language == "es"
    assert "cat" in results[5].translations[0]


def test_pivot_through_english_only_when_allowed(translator):
    with pytest.raises(TranslationError, match="no translation from es"):
        translator.translate(["El perro come carne."], "es", "ca")
    pivoting = Translator.load("default", allow_pivot=True, pipelines_per_pair=1)
    try:
        result = pivoting.translate(["El perro come carne."], "es", "ca")
        assert [hop.model for hop in result.route] == ["apertium:spa-eng", "apertium:eng-cat"]
        assert result.model == "apertium:spa-eng > apertium:eng-cat"
        assert "gos" in result.translations[0]
        listed = {(p.source, p.target): p for p in pivoting.languages().pairs}
        assert listed[("es", "ca")].route == ["es", "en", "ca"]
        assert ("ca", "es") in listed and ("es", "es") not in listed
    finally:
        pivoting.close()


def test_same_source_and_target_come_back_unchanged(translator):
    result = translator.translate(["Hola, ¿qué tal?"], "es", "es")
    assert result.translations == ["Hola, ¿qué tal?"] and result.route == []


def test_text_without_letters_cannot_be_auto_detected(translator):
    with pytest.raises(TranslationError) as caught:
        translator.translate(["12345"], "auto", "en")
    assert caught.value.kind == "undetectable"


def test_snapshot_names_the_modes_and_reloads(translator, tmp_path):
    translator.save(tmp_path / "snapshot")
    reloaded = Translator.load(str(tmp_path / "snapshot"), pipelines_per_pair=1)
    try:
        assert reloaded.supported_pairs() == translator.supported_pairs()
        assert reloaded.info.source == "apertium:*"
        assert (
            reloaded.translate([WEATHER], "en", "es").translations
            == translator.translate([WEATHER], "en", "es").translations
        )
    finally:
        reloaded.close()


def test_unknown_apertium_pair_is_refused_with_the_installed_ones():
    with pytest.raises(SourceError, match=r"apertium:fr-es: no such installed pair; installed: .*eng-spa"):
        Translator.load("apertium:fr-es")


# -- the transformers engine ------------------------------------------------------------


def test_tiny_marian_translates_through_from_pretrained(tiny_marian):
    translator = Translator.load(str(tiny_marian), device="cpu")
    assert translator.supported_pairs() == ["en->es"]
    sources = list(EN_ES)
    # different lengths in one call: sorted, padded, generated in batches of 2, put back in order
    translator.engines[0].max_batch_size = 2
    result = translator.translate(sources, "en", "es")
    assert result.translations == list(EN_ES.values())
    assert result.model == "opus-mt-en-es-tiny"
    (card,) = translator.engines[0].cards()
    assert card.licence == "apache-2.0" and card.details["architecture"] == "MarianMTModel"


def test_neural_engine_listed_first_is_served_first(tiny_marian):
    translator = Translator.load(f"{tiny_marian},apertium:*", device="cpu", pipelines_per_pair=1)
    try:
        result = translator.translate(["a new car\n\nthe black cat", "", "hello world"], "en", "es")
        assert result.translations == ["un coche nuevo\n\nel gato negro", "", "hola mundo"]
        assert result.model == "opus-mt-en-es-tiny"
        assert "gos" in translator.translate(["The dog sleeps."], "en", "ca").translations[0]
        assert translator.supported_pairs() == ["ca->en", "en->ca", "en->es", "es->en"]
    finally:
        translator.close()


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_reduced_precision_runs_on_cpu(tiny_marian, dtype):
    translator = Translator.load(str(tiny_marian), device="cpu", dtype=dtype)
    assert (
        translator.engines[0].info.details["placement"]
        == f"cpu {'float16' if dtype == 'fp16' else 'bfloat16'}"
    )
    assert translator.translate(["a new car", "hello world"], "en", "es").translations == [
        "un coche nuevo",
        "hola mundo",
    ]


def test_pair_comes_from_the_source_when_the_name_does_not_say(tiny_marian, tmp_path):
    renamed = tmp_path / "my-model"
    renamed.symlink_to(tiny_marian, target_is_directory=True)
    with pytest.raises(SourceError, match="en-de="):
        Translator.load(str(renamed), device="cpu")
    translator = Translator.load(f"en-es={renamed}", device="cpu")
    assert translator.translate(["good morning"], "en", "es").translations == ["buenos días"]


def test_neural_snapshot_carries_the_weights(tiny_marian, tmp_path):
    translator = Translator.load(str(tiny_marian), device="cpu")
    translator.save(tmp_path / "snapshot")
    assert (tmp_path / "snapshot" / "seq2seq-opus-mt-en-es-tiny" / "model.safetensors").is_file()
    reloaded = Translator.load(str(tmp_path / "snapshot"), device="cpu")
    assert reloaded.translate(["the red house"], "en", "es").translations == ["la casa roja"]
    assert reloaded.engines[0].cards()[0].licence == "apache-2.0"


def test_m2m100_language_tokens_choose_the_target(tmp_path):
    model_dir = make_tiny_m2m100(tmp_path / "tiny-m2m100")
    translator = Translator.load(str(model_dir), device="cpu")
    # the 8 language tokens of the tokenizer's code list, every ordered pair of them
    assert {"en->de", "en->cs", "de->en", "ja->ru"} <= set(translator.supported_pairs())
    assert len(translator.supported_pairs()) == 8 * 7
    for target, table in EN_TO.items():
        result = translator.translate(list(table), "en", target)
        assert result.translations == list(table.values()), target


def test_nllb_flores_tokens_choose_the_target(tmp_path):
    """NLLB's FLORES-200 codes (eng_Latn, spa_Latn) map to ISO 639-1 pairs, the source code
    is set on the tokenizer and the target forced as the first generated token."""
    model_dir = make_tiny_nllb(tmp_path / "tiny-nllb")
    translator = Translator.load(str(model_dir), device="cpu")
    languages = ("en", "es", "de")
    assert set(translator.supported_pairs()) == {f"{s}->{t}" for s in languages for t in languages if s != t}
    for target, table in EN_TO_FLORES.items():
        iso1 = {"spa_Latn": "es", "deu_Latn": "de"}[target]
        assert translator.translate(list(table), "en", iso1).translations == list(table.values()), target
