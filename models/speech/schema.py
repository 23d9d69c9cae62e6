"""What the speech runtime takes and answers, torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True)
class SentenceItem:
    """One normalised sentence to speak at `speed` (1.0 = the voice's pace). Sentences of
    different requests share a batch."""

    text: str
    speed: float = 1.0


@dataclass(frozen=True)
class Voice:
    id: str
    language: str
    sample_rate: int
    model: str
    source: str
    version: str
    licence: str
    origin: str
    default: bool
    formats: Annotated[list[str], Field(description="formats of POST /synthesize")]
    stream_formats: Annotated[list[str], Field(description="formats of POST /synthesize/stream")]
    speed: Annotated[list[float], Field(description="slowest and fastest reading speed")]


@dataclass(frozen=True)
class Voices:
    voices: list[Voice]
