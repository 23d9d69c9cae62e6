"""eSpeak NG in a sandbox child, with the real library: the inputs it aborts on cost one
sentence (and are rewritten so that it does not abort), the sentence after a crash finds a
warm child, and no state left by one text shows up in the next."""

from __future__ import annotations

import numpy as np
import pytest

from models.speech import SpeechError, SpeechSynthesizer
from models.speech.espeak import Espeak
from models.speech.espeak_input import MAX_WORD_CHARS, sanitize
from models.speech.loaders import LoadedVoice
from models.speech.phonemizer import Phonemizer
from models.speech.piper import PiperVoice

from . import hostile
from .linear import assert_linear

VOICE = "en-us"
CRASH = hostile.ESPEAK_ABORTS["dotted letters, 169 characters"]
GOOD = ["Hello there.", "Goodbye, see you soon.", "It costs five dollars."]


@pytest.fixture(scope="module")
def raw():
    """eSpeak without the input rules: its own crashes happen, in the child."""
    with Phonemizer(VOICE, guard=False) as phonemizer:
        yield phonemizer


@pytest.fixture(scope="module")
def guarded():
    with Phonemizer(VOICE) as phonemizer:
        yield phonemizer


@pytest.fixture(scope="module")
def alone(raw) -> dict[str, list[str]]:
    return {sentence: raw.phonemize(sentence, VOICE) for sentence in [*GOOD, "Hello world."]}


@pytest.mark.parametrize("text", hostile.ESPEAK_ABORTS.values(), ids=hostile.ESPEAK_ABORTS.keys())
def test_espeak_itself_dies_on_these_inputs(raw, text):
    """What the input rules are for: if a new libespeak-ng stops dying here, they can go."""
    (result,) = raw.phonemize_many([text], VOICE)
    assert isinstance(result, SpeechError) and result.kind == "unprocessable"
    assert "SIGABRT" in result.detail["reason"] or "SIGSEGV" in result.detail["reason"]


@pytest.mark.parametrize("text", hostile.ESPEAK_ABORTS.values(), ids=hostile.ESPEAK_ABORTS.keys())
def test_the_input_rules_keep_espeak_alive(guarded, text):
    (result,) = guarded.phonemize_many([text], VOICE)
    assert isinstance(result, list)
    assert guarded.sandbox.stats["ChildDied"] == 0


def test_a_crash_costs_only_its_sentence(raw, alone):
    results = raw.phonemize_many(
        [GOOD[0], CRASH, GOOD[1], hostile.ESPEAK_ABORTS["caret, hyphen, Devanagari"], GOOD[2]], VOICE
    )
    assert [results[0], results[2], results[4]] == [alone[s] for s in GOOD]
    for crashed in (results[1], results[3]):
        assert isinstance(crashed, SpeechError) and crashed.kind == "unprocessable"
        assert "crashed on the sentence" in crashed.message


def test_the_call_after_a_crash_is_served_by_a_warm_child(raw, alone):
    assert raw.sandbox.wait_for_spares()
    cold = raw.sandbox.stats["cold_starts"]
    (crashed,) = raw.phonemize_many([CRASH], VOICE)
    assert isinstance(crashed, SpeechError)
    assert raw.phonemize_many([GOOD[0]], VOICE) == [alone[GOOD[0]]]
    assert raw.sandbox.stats["cold_starts"] == cold  # no start on the request's path


def test_espeak_itself_carries_state_from_one_text_to_the_next():
    """Why a text's leftovers are checked for: in one process, "dot" leaks into the next."""
    espeak = Espeak.get()
    clean = espeak.clauses("Hello world.", VOICE)
    espeak.clauses(hostile.ESPEAK_LEAK, VOICE)
    leaked = espeak.clauses("Hello world.", VOICE)
    assert leaked != clean and leaked[0][0].startswith("dˈɑːt")
    assert espeak.clauses("Hello world.", VOICE) == clean  # one call later it is gone


def test_no_state_crosses_from_one_text_to_the_next(raw, alone):
    """Without the input rules the leftover is really left; the child that holds it is
    retired, within a batch and between calls."""
    retired = raw.sandbox.stats["retired"]
    leak, after = raw.phonemize_many([hostile.ESPEAK_LEAK, "Hello world."], VOICE)
    assert isinstance(leak, list) and after == alone["Hello world."]
    raw.phonemize_many([hostile.ESPEAK_LEAK], VOICE)
    assert raw.phonemize_many(["Hello world."], VOICE) == [alone["Hello world."]]
    assert raw.sandbox.stats["retired"] == retired + 2


def test_a_synthesizer_answers_the_other_sentences_of_a_batch():
    """The runtime's batch: eSpeak dies on one sentence (rules off), the others get audio."""
    tts = SpeechSynthesizer.load("default", device="cpu", seed=0)
    voice = tts.voice
    raw_voice = PiperVoice(
        voice.model_path, voice.config_path, device="cpu", phonemizer=Phonemizer(guard=False)
    )
    exposed = SpeechSynthesizer(LoadedVoice(raw_voice, tts._loaded.info))
    try:
        results = exposed.synthesize_sentences(["Hello there.", CRASH, "Goodbye."])
        assert isinstance(results[1], SpeechError) and results[1].kind == "unprocessable"
        assert all(isinstance(r, np.ndarray) and r.size > 5000 for r in (results[0], results[2]))
        assert isinstance(tts.synthesize_sentences([CRASH])[0], np.ndarray)  # with the rules: read out
    finally:
        exposed.close()
        tts.close()


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("Hello, world.", "Hello, world."),
        ("J. R. R. Tolkien wrote it.", "J. R. R. Tolkien wrote it."),
        ("Pi is 3.14 and .5 is half.", "Pi is 3.14 and 0.5 is half."),
        ("Wait... what?", "Wait... what?"),
        ('He said "stop."', 'He said "stop."'),
        ("It ends here..", "It ends here."),
        ("z.z.z.z", "z z z z"),
        ("z . z . z", "z z z"),
        ("a well-known -5 and -x", "a well-known -5 and x"),
        ("(-\u0939\u0939", "( \u0939\u0939"),
        ("tab\tnew\nline\u00a0nbsp\x01ctl", "tab new line nbsp ctl"),
    ],
)
def test_the_input_rules_keep_ordinary_text_as_it_is(text, rewritten):
    assert sanitize(text) == rewritten


def test_long_words_are_broken():
    assert [len(word) for word in sanitize("x" * (2 * MAX_WORD_CHARS + 5)).split()] == [60, 60, 5]


@pytest.mark.parametrize("unit", ["z.", "z . ", ".", "-a", "x", "1.5 "])
def test_the_input_rules_take_linear_time(unit):
    assert_linear(sanitize, lambda n: unit * (n // len(unit)) + "x", 4000)
