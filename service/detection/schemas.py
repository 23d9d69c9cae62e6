"""Shapes exchanged between the entry service and the detection model service (and the
public answer of POST /detect)."""

from pydantic import BaseModel

from models.detection import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD

from ..schemas import ItemError


class DetectItem(BaseModel):
    data: bytes  # the encoded image, already checked by the entry service
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS
    classes: list[str] | None = None  # only these labels
    annotate: str | None = None  # "jpeg" or "png": also return the image with boxes drawn


class DetectionOut(BaseModel):
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in input-image pixels


class ImageDetectionsOut(BaseModel):
    model: str
    width: int
    height: int
    detections: list[DetectionOut]


class DetectOutcome(BaseModel):
    result: ImageDetectionsOut | None = None
    annotated: bytes | None = None
    error: ItemError | None = None
