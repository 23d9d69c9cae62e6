"""Shapes exchanged between the entry service and the translation model service, and the
public answer of POST /translate."""

from typing import Any

from pydantic import BaseModel, Field


class TranslateItem(BaseModel):
    """One /translate request; requests with different pairs share a batch."""

    texts: list[str]
    source: str  # ISO 639-1 or "auto"
    target: str


class RouteHop(BaseModel):
    source: str
    target: str
    model: str


class DetectionOut(BaseModel):
    language: str
    confidence: float = Field(description="lingua's relative confidence in this language, 0..1")


class TranslationOut(BaseModel):
    model: str = Field(description="the model that translated; models joined by ' > ' along a pivot route")
    source: str = Field(description="the source language (the detected one when source was 'auto')")
    target: str
    translations: list[str]
    route: list[RouteHop] = Field(description="one hop per model; two when pivoting through English")
    detection: DetectionOut | None = Field(None, description="present when source was 'auto'")


class ItemError(BaseModel):
    kind: str  # unknown_language, unsupported_pair, undetectable, engine
    message: str
    detail: dict[str, Any] = {}


class TranslateOutcome(BaseModel):
    result: TranslationOut | None = None
    error: ItemError | None = None
