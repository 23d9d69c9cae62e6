"""What the classification runtime takes and answers, torch-free: the service returns
these types as they are, and documents them from their fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True)
class Prediction:
    label: str
    score: Annotated[float, Field(description="probability, 0..1")]
    index: Annotated[int, Field(description="class index in the model's label list")]


@dataclass(frozen=True)
class Classification:
    """One image's classes, best first."""

    model: Annotated[str, Field(description="the model that answered")]
    predictions: list[Prediction]  # sorted by score, highest first


@dataclass(frozen=True)
class Embedding:
    """One image's embedding: the features the classifier's final layer reads."""

    model: Annotated[str, Field(description="the model whose backbone computed it")]
    embedding: Annotated[
        list[float], Field(description="float32 values; the length is the model's embedding_size")
    ]


@dataclass(frozen=True)
class ClassifyItem:
    """One image to classify: its encoded bytes (JPEG, PNG, WebP, GIF), how many classes to
    return, and which model (None: the served classifier; else a stored custom one)."""

    image: bytes
    top_k: int = 5
    model: str | None = None


@dataclass(frozen=True)
class EmbedItem:
    """One image whose embedding is wanted, from `model` (None: the served classifier)."""

    image: bytes
    model: str | None = None
