"""Shapes exchanged between the entry service and the classification model service."""

from pydantic import BaseModel


class ClassifyItem(BaseModel):
    data: bytes  # the encoded image, already checked by the entry service
    top_k: int = 5


class PredictionOut(BaseModel):
    label: str
    score: float
    index: int


class ClassificationOut(BaseModel):
    model: str
    predictions: list[PredictionOut]


class ItemError(BaseModel):
    kind: str  # see models.image_header.ImageError
    message: str


class ClassifyOutcome(BaseModel):
    result: ClassificationOut | None = None
    error: ItemError | None = None
