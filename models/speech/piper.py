"""Piper voices (VITS exported to ONNX) run with onnxruntime; phonemes from eSpeak NG.

Written from the voice's own JSON config, the way Piper uses it (Piper itself, the
`piper-tts` package, is GPL and not a dependency):

- phonemes: eSpeak NG IPA per clause with its punctuation (see `espeak.py`; eSpeak runs
  in a sandbox child, see `phonemizer.py`), mapped
  through the config's `phoneme_map`, then to ids with `phoneme_id_map`:
  BOS "^", a pad "_" after BOS and after every phoneme, EOS "$"; unknown phonemes skipped;
- inputs: `input` (batch, ids) int64, `input_lengths` (batch) int64, `scales` =
  [noise_scale, length_scale, noise_w] from the config's `inference` section; `sid` for
  multi-speaker voices;
- output: (batch, 1, 1, samples) float audio at `audio.sample_rate`.

Batches: the exported graph returns only audio padded to the longest item. The number of
frames of each item (VITS's `y_lengths`, the `/Clip_output_0` tensor of Piper's export)
is added as a second graph output when the session is built, so each item is cut exactly
(frames x hop length). Voices exported without that tensor run one sentence per call.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .phonemizer import Phonemizer
from .text import SpeechError

log = logging.getLogger("pais.speech")

# VITS's per-item frame count in Piper's ONNX export (clamp_min(sum(ceil(durations)), 1)).
FRAME_COUNT_TENSOR = "/Clip_output_0"
PAD, BOS, EOS = "_", "^", "$"


@dataclass(frozen=True)
class PiperConfig:
    sample_rate: int
    espeak_voice: str
    language: str  # BCP-47, e.g. en-US
    phoneme_id_map: dict[str, list[int]]
    phoneme_map: dict[str, list[str]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int
    dataset: str
    quality: str

    @classmethod
    def read(cls, path: Path) -> PiperConfig:
        raw = json.loads(path.read_text())
        if raw.get("phoneme_type", "espeak") != "espeak":
            raise ValueError(f"{path}: phoneme_type {raw['phoneme_type']!r} is not supported (only espeak)")
        inference = raw.get("inference", {})
        code = raw.get("language", {}).get("code") or raw["espeak"]["voice"]
        return cls(
            sample_rate=int(raw["audio"]["sample_rate"]),
            espeak_voice=raw["espeak"]["voice"],
            language=code.replace("_", "-"),
            phoneme_id_map={k: list(v) for k, v in raw["phoneme_id_map"].items()},
            phoneme_map={k: list(v) for k, v in raw.get("phoneme_map", {}).items()},
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            num_speakers=int(raw.get("num_speakers", 1)),
            dataset=str(raw.get("dataset", "")),
            quality=str(raw.get("audio", {}).get("quality", "")),
        )


def onnx_providers(device: str | None) -> list[Any]:
    """onnxruntime execution providers for a PAIS device setting: CUDA when asked for or
    (auto) when this onnxruntime build has it, else CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    device = (device or "auto").strip().lower()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
        if device == "cpu":
            return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; accepted: auto, cpu, cuda, cuda:N")
    if "CUDAExecutionProvider" not in available:
        raise ValueError(
            f"device {device!r} requested but this onnxruntime build has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu for GPU speech synthesis"
        )
    _, _, index = device.partition(":")
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


def _with_extra_output(model: bytes, tensor: str) -> bytes:
    """The serialized ONNX model with `tensor` added as a graph output.

    Protocol buffers merge a repeated embedded message field that appears twice: appending
    `ModelProto.graph (7) { GraphProto.output (12) { ValueInfoProto.name (1) } }` to the
    file adds one output to the existing graph, without the `onnx` package."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            low, value = value & 0x7F, value >> 7
            out.append(low | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def field(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    return model + field(7, field(12, field(1, tensor.encode())))


class PiperVoice:
    """One Piper voice: sentence -> phoneme ids -> batched ONNX inference -> float audio."""

    backend = "piper-onnx"

    def __init__(
        self,
        model_path: Path,
        config_path: Path,
        device: str | None = None,
        phonemizer: Phonemizer | None = None,
        seed: int | None = None,
    ):
        """`seed` makes the voice's noise reproducible: its random ops (VITS samples noise
        for durations and audio) draw the same sequence, call after call, as any session
        built with that seed. onnxruntime's seed is process-wide; tests and demos use it."""
        import onnxruntime

        self.model_path = model_path
        self.config_path = config_path
        self.config = PiperConfig.read(config_path)
        self.sample_rate = self.config.sample_rate
        self.language = self.config.language
        options = onnxruntime.SessionOptions()
        providers = onnx_providers(device)
        model = model_path.read_bytes()
        self.hop_length: int | None = None
        if seed is not None:
            onnxruntime.set_seed(seed)  # read when the session builds its random kernels
        try:
            self.session = onnxruntime.InferenceSession(
                _with_extra_output(model, FRAME_COUNT_TENSOR), options, providers=providers
            )
            self.hop_length = self._measure_hop_length()
        except Exception as exc:  # not a Piper export with that tensor: one sentence per call
            log.warning(
                "%s: no per-item frame counts (%s); synthesising one sentence per call", model_path, exc
            )
            if seed is not None:
                onnxruntime.set_seed(seed)
            self.session = onnxruntime.InferenceSession(model, options, providers=providers)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.providers = self.session.get_providers()
        self.phonemizer = phonemizer or Phonemizer(self.config.espeak_voice)
        self.phonemizer.phonemize("test", self.config.espeak_voice)  # fail at load, not at the first request

    @property
    def batchable(self) -> bool:
        return self.hop_length is not None

    def describe(self) -> str:
        provider = self.providers[0].removesuffix("ExecutionProvider")
        return f"onnxruntime {provider}, fp32"

    def ids(self, sentence: str) -> list[int]:
        """Phoneme ids of one sentence, Piper's way; [] when nothing in it maps to a phoneme.
        Raises SpeechError when the phonemiser crashed or hung on it."""
        (ids,) = self.ids_many([sentence])
        if isinstance(ids, SpeechError):
            raise ids
        return ids

    def ids_many(self, sentences: list[str]) -> list[list[int] | SpeechError]:
        """`ids` of each sentence, or the SpeechError of one the phonemiser failed on."""
        phonemes = self.phonemizer.phonemize_many(sentences, self.config.espeak_voice)
        return [p if isinstance(p, SpeechError) else self._to_ids(p) for p in phonemes]

    def _to_ids(self, phonemes: list[str]) -> list[int]:
        id_map, phoneme_map = self.config.phoneme_id_map, self.config.phoneme_map
        ids = [*id_map[BOS], *id_map[PAD]]
        spoken = 0
        for phoneme in phonemes:
            for mapped in phoneme_map.get(phoneme, [phoneme]):
                if mapped in id_map:
                    ids.extend(id_map[mapped])
                    ids.extend(id_map[PAD])
                    spoken += mapped.isalpha()
        ids.extend(id_map[EOS])
        return ids if spoken else []

    def generate(self, batch: list[list[int]], speed: float) -> list[np.ndarray]:
        """Float audio for each phoneme-id sequence, read at `speed` (1.0 = the voice's pace)."""
        if not self.batchable and len(batch) > 1:
            return [self.generate([ids], speed)[0] for ids in batch]
        lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
        inputs = np.zeros((len(batch), int(lengths.max())), dtype=np.int64)  # pad id 0
        for row, ids in enumerate(batch):
            inputs[row, : len(ids)] = ids
        scales = np.array(
            [self.config.noise_scale, self.config.length_scale / speed, self.config.noise_w], dtype=np.float32
        )
        feeds = {"input": inputs, "input_lengths": lengths, "scales": scales}
        if "sid" in self.input_names:
            feeds["sid"] = np.zeros(len(batch), dtype=np.int64)  # the voice's first speaker
        outputs = self.session.run(None, feeds)
        audio = outputs[0].reshape(len(batch), -1)
        if self.hop_length is None:
            return [audio[0]]
        frames = outputs[1].reshape(-1).astype(np.int64)
        return [audio[row, : frames[row] * self.hop_length] for row in range(len(batch))]

    def _measure_hop_length(self) -> int:
        """Samples per frame, from a batch of two sequences of different lengths; also
        proves that the added output is the per-item frame count (else no batching)."""
        id_map = self.config.phoneme_id_map
        letters = [ids[0] for phoneme, ids in id_map.items() if phoneme.isalpha()][:8]
        short = [*id_map[BOS], *letters[:2], *id_map[EOS]]
        long = [*id_map[BOS], *letters, *id_map[EOS]]
        inputs = np.zeros((2, len(long)), dtype=np.int64)
        inputs[0, : len(short)], inputs[1] = short, long
        feeds = {
            "input": inputs,
            "input_lengths": np.array([len(short), len(long)], dtype=np.int64),
            "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),
        }
        if "sid" in {i.name for i in self.session.get_inputs()}:
            feeds["sid"] = np.zeros(2, dtype=np.int64)
        audio, frames = self.session.run(None, feeds)
        frames = frames.reshape(-1).astype(np.int64)
        if frames.shape != (2,) or frames.min() < 1:
            raise ValueError(f"{FRAME_COUNT_TENSOR} is not a frame count per item: {frames}")
        hop, remainder = divmod(audio.shape[-1], int(frames.max()))
        if remainder or hop < 1:
            raise ValueError(f"audio of {audio.shape[-1]} samples is not {frames.max()} frames")
        return hop

    def close(self) -> None:
        self.phonemizer.close()

    def save(self, directory: Path) -> dict[str, str]:
        """Copy the voice files into `directory`; returns the manifest entry naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.model_path, directory / self.model_path.name)
        shutil.copyfile(self.config_path, directory / self.config_path.name)
        card = self.model_path.parent / "MODEL_CARD"
        if card.is_file():
            shutil.copyfile(card, directory / "MODEL_CARD")
        return {"model": self.model_path.name, "config": self.config_path.name}
