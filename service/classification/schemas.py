"""Shapes exchanged between the entry service and the classification model service."""

from pydantic import BaseModel

from ..schemas import ItemError


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


class ClassifyOutcome(BaseModel):
    result: ClassificationOut | None = None
    error: ItemError | None = None
