"""SpeechSynthesizer: the text-to-speech runtime, usable from a notebook or a service.

>>> tts = SpeechSynthesizer.load("default")
>>> speech = tts.synthesize("Hello there. How are you?", speed=1.2)
>>> speech.encode("flac")[:4]
b'fLaC'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..info import ModelInfo
from ..sources import parse_source
from . import DEFAULT_SOURCE, MAX_SPEED, MIN_SPEED, audio, loaders, text
from .schema import SentenceItem
from .text import SpeechError

# A sentence joins a batch only if it is at least this share of the batch's longest one.
MIN_FILL = 0.7
# Most phoneme ids one sentence may have. A 400-character English sentence has up to ~900;
# letters eSpeak reads by name ("Oriya letter ...") made 5,185 of 400 characters, which
# took 76 s and 3.2 GB to synthesise on the CPU (2,000 ids: 25 s, 1.5 GB): refused, before
# the voice runs.
MAX_SENTENCE_IDS = 1500


@dataclass(frozen=True)
class Speech:
    pcm: bytes  # 16-bit little-endian mono
    sample_rate: int
    sentences: int

    @property
    def duration_s(self) -> float:
        return audio.duration_s(self.pcm, self.sample_rate)

    def encode(self, format: str = "wav") -> bytes:
        return audio.encode(self.pcm, self.sample_rate, format)


class SpeechSynthesizer:
    task = loaders.TASK

    def __init__(
        self,
        loaded: loaders.LoadedVoice,
        max_batch_size: int = 32,
        max_batch_ids: int = 6000,
        max_sentence_ids: int = MAX_SENTENCE_IDS,
    ):
        self._loaded = loaded
        self.max_sentence_ids = max_sentence_ids
        self.voice = loaded.voice
        self.sample_rate = loaded.voice.sample_rate
        self.language = loaded.voice.language
        # A batch is padded to its longest sentence: bound items and padded ids (memory).
        self.max_batch_size = max_batch_size if loaded.voice.batchable else 1
        self.max_batch_ids = max_batch_ids
        self.info: ModelInfo = loaded.info.with_details(
            backend=loaded.voice.backend,
            placement=loaded.voice.describe(),
            sample_rate=self.sample_rate,
            language=self.language,
            batchable=loaded.voice.batchable,
            voices=[{"id": loaded.info.name, "language": self.language, "sample_rate": self.sample_rate}],
        )

    @classmethod
    def load(
        cls,
        source: str = "default",
        *,
        device: str | None = None,
        dtype: Any = None,
        max_batch_size: int = 32,
        seed: int | None = None,
    ) -> SpeechSynthesizer:
        """Load from a source URI ("default" is the offline default voice). `seed` makes a
        Piper voice's noise reproducible (tests)."""
        uri = DEFAULT_SOURCE if source == "default" else source
        return cls(loaders.load(parse_source(uri), device, dtype, seed), max_batch_size=max_batch_size)

    @property
    def name(self) -> str:
        return self._loaded.info.name

    @property
    def cards(self) -> list[ModelInfo]:
        return [self.info]

    def predict_batch(self, items: Sequence[SentenceItem]) -> list[bytes | SpeechError]:
        """The runtime interface: each sentence's audio as 16-bit little-endian mono PCM at
        the voice's sample rate, or a SpeechError, in order."""
        results = self.synthesize_sentences([item.text for item in items], [item.speed for item in items])
        return [result if isinstance(result, SpeechError) else audio.to_pcm16(result) for result in results]

    def close(self) -> None:
        """Stop the voice's helper processes (the phonemiser's sandbox)."""
        self.voice.close()

    def save(self, directory: str | Path) -> None:
        """Write a self-contained snapshot; `SpeechSynthesizer.load(directory)` reads it back."""
        loaders.save(self._loaded, Path(directory))

    def sentences(self, text_: str) -> list[str]:
        """The speakable sentences of a text, normalised for this voice's language."""
        return text.sentences(text_, self.language)

    def synthesize(self, text_: str, speed: float = 1.0) -> Speech:
        """Speech for a whole text: sentences synthesised as batches, joined with pauses.
        Raises SpeechError for empty or unspeakable text, or a sentence the voice cannot
        say."""
        sentences = self.sentences(text_)
        results = self.synthesize_sentences(sentences, speed)
        for result in results:
            if isinstance(result, SpeechError):
                raise result
        pcm = audio.join_sentences([audio.to_pcm16(r) for r in results], self.sample_rate)
        return Speech(pcm, self.sample_rate, len(sentences))

    def synthesize_sentences(
        self, sentences: Sequence[str], speed: float | Sequence[float] = 1.0
    ) -> list[Any]:
        """The service's entry point: float audio (numpy) or SpeechError per sentence, in
        order, so one unspeakable sentence never fails the rest of a batch (nor one the
        phonemiser crashed or hung on: unprocessable, timeout; nor one over
        max_sentence_ids: too_large). Sentences of one speed run as batches of similar
        length."""
        speeds = [speed] * len(sentences) if isinstance(speed, int | float) else list(speed)
        if len(speeds) != len(sentences):
            raise ValueError("speed must be a number or one value per sentence")
        for value in speeds:
            if not MIN_SPEED <= value <= MAX_SPEED:
                raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {value}")
        results: list[Any] = self.phoneme_ids(sentences)
        by_speed: defaultdict[float, list[tuple[int, list[int]]]] = defaultdict(list)
        for index, ids in enumerate(results):
            if not isinstance(ids, SpeechError):
                by_speed[float(speeds[index])].append((index, ids))
        for value, items in by_speed.items():
            for chunk in self._chunks(items):
                generated = self.voice.generate([ids for _, ids in chunk], value)
                for (index, _), samples in zip(chunk, generated, strict=True):
                    results[index] = samples
        return results

    def phoneme_ids(self, sentences: Sequence[str]) -> list[list[int] | SpeechError]:
        """What the voice would be given for each sentence, or the SpeechError that keeps
        it from the voice: unprocessable or timeout (the phonemiser crashed or hung on it),
        too_large (over max_sentence_ids), unspeakable (no sound of this voice)."""
        results: list[list[int] | SpeechError] = []
        for sentence, ids in zip(sentences, self.voice.ids_many(list(sentences)), strict=True):
            if isinstance(ids, SpeechError):
                pass
            elif len(ids) > self.max_sentence_ids:
                ids = SpeechError(
                    "too_large",
                    f"the sentence {sentence[:60]!r} reads as {len(ids)} phoneme ids (letters or "
                    f"symbols read by name); at most {self.max_sentence_ids} per sentence",
                )
            elif not ids:
                ids = SpeechError(
                    "unspeakable", f"nothing in {sentence[:60]!r} maps to a sound of voice {self.name}"
                )
            results.append(ids)
        return results

    def _chunks(self, items: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
        """Batches of sentences of similar length, longest first. A batch is padded to its
        longest row, and VITS pads its audio frames the same way: measured on the CPU (16
        sentences of 53..157 ids), one padded batch of 16 cost 15% more CPU time per audio
        second than one sentence per call; with rows kept within MIN_FILL of the longest it
        cost no more. On a GPU the batch is where the speed comes from."""
        chunks: list[list[tuple[int, list[int]]]] = []
        for item in sorted(items, key=lambda item: len(item[1]), reverse=True):
            current = chunks[-1] if chunks else None
            longest = len(current[0][1]) if current else 0
            if (
                current is not None
                and len(current) < self.max_batch_size
                and len(item[1]) >= MIN_FILL * longest
                and (len(current) + 1) * longest <= self.max_batch_ids
            ):
                current.append(item)
            else:
                chunks.append([item])
        return chunks
