"""transformers VITS voices (the MMS-TTS family) through the real loading code, with a tiny
VITS made here with save_pretrained (random weights: the audio is noise, the plumbing is
real): directory and snapshot sources, batching with exact lengths, speed, dtypes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.sources import SourceError
from models.speech import SpeechError, SpeechSynthesizer

VOCAB = ["<pad>", " ", *"abcdefghijklmnopqrstuvwxyz", "'", "<unk>"]


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory):
    """A 16 kHz VITS with MMS-TTS's tokenizer settings (characters, no phonemizer). The
    duration noise is off so that lengths are deterministic."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory = tmp_path_factory.mktemp("tiny-vits")
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(VOCAB)}))
    tokenizer = VitsTokenizer(
        str(directory / "vocab.json"), language="eng", add_blank=True, normalize=True, phonemize=False
    )
    config = VitsConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        window_size=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=17,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1,
        duration_predictor_filter_channels=16,
        depth_separable_num_layers=1,
        sampling_rate=16000,
        noise_scale_duration=0.0,
        # random weights predict durations under one frame per token; a slow own pace
        # makes them several frames, so that a faster speed can shorten them
        speaking_rate=0.05,
    )
    torch.manual_seed(0)
    VitsModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# tiny test VITS\n")
    return directory


@pytest.fixture(scope="module")
def vits(tiny_vits) -> SpeechSynthesizer:
    return SpeechSynthesizer.load(str(tiny_vits), device="cpu")


def test_directory_source_card(vits, tiny_vits):
    info = vits.info
    assert info.name == tiny_vits.name
    assert info.licence == "cc-by-nc-4.0"
    assert info.version.startswith("dir-")
    assert "VitsModel" in info.origin
    assert info.details["backend"] == "transformers-vits"
    assert info.details["placement"] == "torch cpu float32"
    assert (vits.sample_rate, vits.language) == (16000, "en")


def test_batch_lengths_are_exact_and_follow_the_text(vits):
    import torch

    sentences = ["hi.", "a much longer sentence than the first one, with many words in it."]
    short, longer = vits.synthesize_sentences(sentences)
    # the model's own per-item length for the same input, one sentence at a time
    for sentence, batched in zip(sentences, (short, longer), strict=True):
        ids = torch.tensor([vits.voice.ids(sentence)])
        with torch.inference_mode():
            alone = vits.voice.model(input_ids=ids).sequence_lengths.item()
        assert len(batched) == alone
    assert len(short) < len(longer)


def test_speed_scales_the_durations(vits):
    text = "a sentence long enough to measure the speed of reading."
    normal, fast = (vits.synthesize_sentences([text], speed)[0] for speed in (1.0, 2.0))
    assert len(fast) < 0.75 * len(normal)


def test_numbers_reach_a_character_vocabulary_as_words(vits):
    # MMS vocabularies have no digits: the English normaliser spells them out first
    (sentence,) = vits.sentences("Room 42.")
    assert sentence == "Room forty-two."
    assert len(vits.voice.ids(sentence)) > len(vits.voice.ids("Room."))


def test_characters_outside_the_vocabulary_are_unspeakable(vits):
    assert vits.voice.ids("ÆØÅ") == []
    (result,) = vits.synthesize_sentences(["ÆØÅ"])
    assert isinstance(result, SpeechError) and result.kind == "unspeakable"


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_reduced_precision_runs_on_cpu(tiny_vits, dtype):
    """The GPU default (fp16) and bf16, forced on the CPU so the path is exercised here."""
    voice = SpeechSynthesizer.load(str(tiny_vits), device="cpu", dtype=dtype)
    assert voice.info.details["placement"] == f"torch cpu {'bfloat16' if dtype == 'bf16' else 'float16'}"
    (samples,) = voice.synthesize_sentences(["hello there."])
    assert samples.dtype == np.float32 and samples.size > 0 and np.isfinite(samples).all()


def test_snapshot_round_trip(vits, tmp_path):
    vits.save(tmp_path / "snapshot")
    restored = SpeechSynthesizer.load(str(tmp_path / "snapshot"), device="cpu")
    assert restored.info.version == vits.info.version
    assert restored.info.details["backend"] == "transformers-vits"
    text = "the same weights give the same lengths."
    assert len(restored.synthesize_sentences([text])[0]) == len(vits.synthesize_sentences([text])[0])


def test_hub_id_not_in_the_cache_is_a_clear_error():
    with pytest.raises(SourceError, match="not in the Hugging Face cache"):
        SpeechSynthesizer.load("hf:facebook/mms-tts-xyz-not-cached")
