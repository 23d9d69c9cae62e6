"""What the translation runtime takes and answers, torch-free: the service returns these
types as they are, and documents them from their fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True)
class DetectedLanguage:
    """What source="auto" identified."""

    language: Annotated[str | None, Field(description="ISO 639-1; null when the text gives no clue")]
    confidence: Annotated[float, Field(description="the identifier's relative confidence in it, 0..1")]


@dataclass(frozen=True)
class TranslationRequest:
    """Texts to translate from `source` (ISO 639-1, or "auto") to `target`. Requests with
    different pairs share a batch; sentences taking the same hop go to an engine together."""

    texts: list[str]
    source: str
    target: str


@dataclass(frozen=True)
class IdentifyLanguage:
    """Which language `texts` are in (what source="auto" does before translating)."""

    texts: list[str]


@dataclass(frozen=True)
class RouteHop:
    source: str
    target: str
    model: str


@dataclass(frozen=True)
class Translation:
    """Translations in input order."""

    model: Annotated[
        str, Field(description="the model that translated; models joined by ' > ' along a pivot route")
    ]
    source: Annotated[str, Field(description="the source language (the detected one when source was 'auto')")]
    target: str
    route: Annotated[
        list[RouteHop], Field(description="one hop per model; two when pivoting through English")
    ]
    translations: list[str]
    detection: Annotated[DetectedLanguage | None, Field(description="present when source was 'auto'")] = None


@dataclass(frozen=True)
class LanguagePair:
    source: str
    target: str
    model: str
    engine: str
    licence: str
    route: Annotated[list[str], Field(description="languages along the route, source first")]


@dataclass(frozen=True)
class Languages:
    """The pairs served, each with its model(s), engine and licence."""

    pairs: list[LanguagePair]
    languages: Annotated[dict[str, str], Field(description="ISO 639-1 code -> language name")]
    pivot: Annotated[bool, Field(description="whether pairs without a direct engine go through English")]
    auto_detection: Annotated[str, Field(description="the language identifier behind source='auto'")]
