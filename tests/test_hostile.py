"""Every entry of the hostile corpus (tests/hostile.py) gets, from the real runtimes, the
outcome it promises the HTTP suite: the item's ItemError kind, or "ok"."""

from __future__ import annotations

import pytest
import torch

from models.errors import ItemError
from models.imaging import decode_many
from models.speech import SpeechSynthesizer
from models.translation.runtime import Translation, TranslationRequest, Translator
from models.video.decoder import VideoDecoder
from models.video.frames import Limits

from . import hostile


def outcome(result: object) -> str:
    return result.kind.value if isinstance(result, ItemError) else "ok"


@pytest.fixture(scope="module")
def tts():
    tts = SpeechSynthesizer.load("default", device="cpu", seed=0)
    yield tts
    tts.close()


@pytest.fixture(scope="module")
def translator():
    translator = Translator.load("apertium:en-es")
    yield translator
    translator.close()


@pytest.fixture(scope="module")
def decoder():
    with VideoDecoder() as decoder:
        yield decoder


def _ids(entry: hostile.Hostile) -> str:
    return entry.name


@pytest.mark.parametrize("entry", hostile.SPEECH, ids=_ids)
def test_speech(tts, entry):
    """Sentences, then what the voice would be given (phonemes from the sandboxed eSpeak,
    what crashed before; the per-sentence budget): audio from ids the voice accepts is its
    ordinary work."""
    try:
        sentences = tts.sentences(entry.make())
    except ItemError as error:
        assert error.kind == entry.expect, error.message
        return
    results = tts.phoneme_ids(sentences)
    assert [outcome(r) for r in results] == [entry.expect] * len(sentences)
    assert tts.voice.phonemizer.sandbox.stats["ChildDied"] == 0


@pytest.mark.parametrize("entry", hostile.TRANSLATION, ids=_ids)
def test_translation(translator, entry):
    (result,) = translator.translate_many([TranslationRequest([entry.make()], "en", "es")])
    assert outcome(result) == entry.expect
    assert isinstance(result, Translation) and len(result.translations) == 1


@pytest.mark.parametrize("entry", hostile.IMAGES, ids=_ids)
def test_image(entry):
    (result,) = decode_many([entry.make()])
    assert outcome(result) == entry.expect
    if entry.expect == "ok":
        assert isinstance(result, torch.Tensor) and result.shape == (3, 300, 451)


@pytest.mark.parametrize("entry", hostile.VIDEOS, ids=_ids)
def test_video(decoder, entry):
    try:
        with decoder.open(entry.make(), 1.0, Limits(600, 600, 50_000_000)) as video:
            frames = [frame for chunk in video for frame in chunk]
        result: object = frames
    except ItemError as error:
        result = error
    assert outcome(result) == entry.expect


def test_every_entry_is_checked():
    checked = {*hostile.SPEECH, *hostile.TRANSLATION, *hostile.IMAGES, *hostile.VIDEOS}
    assert set(hostile.CORPUS) == checked
    assert {entry.task for entry in hostile.CORPUS} == {"speech", "translation", "image", "video"}
