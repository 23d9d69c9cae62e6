"""Shapes exchanged between the entry service and the video service (and the public
answer of POST /analyze_video)."""

from pydantic import BaseModel

from ..detection.schemas import DetectionOut
from ..schemas import ItemError


class VideoRequest(BaseModel):
    data: bytes  # the video file, its container already checked by the entry service
    sample_fps: float
    detect: bool
    classify: bool
    score_threshold: float
    max_detections: int
    classes: list[str] | None  # as sent; the video service checks them against the model
    top_k: int


class LabelOut(BaseModel):
    label: str
    score: float


class FrameOut(BaseModel):
    time_s: float
    detections: list[DetectionOut]  # empty when `detect` was not asked for
    labels: list[LabelOut]  # whole-frame classification, best first; empty without `classify`


class LabelSummaryOut(BaseModel):
    first_s: float  # time of the first analysed frame showing it
    last_s: float
    max_count: int  # most instances in one frame
    frames: int  # analysed frames showing it


class VideoAnalysisOut(BaseModel):
    duration_s: float
    width: int
    height: int
    sample_fps: float
    models: dict[str, str]  # task -> model name
    frames: list[FrameOut]
    # detections per label when `detect` was asked for, else each frame's top label
    summary: dict[str, LabelSummaryOut]


class VideoOutcome(BaseModel):
    result: VideoAnalysisOut | None = None
    error: ItemError | None = None
