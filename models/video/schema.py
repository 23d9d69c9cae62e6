"""What a video analysis answers, torch-free: the service returns these types as they are,
and documents them from their fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from ..detection.schema import Detection


@dataclass(frozen=True)
class FrameLabel:
    label: str
    score: float


@dataclass(frozen=True)
class AnalysedFrame:
    time_s: Annotated[float, Field(description="the frame's time in the video, in seconds")]
    detections: Annotated[list[Detection], Field(description="empty when detect was not asked for")] = field(
        default_factory=list
    )
    labels: Annotated[
        list[FrameLabel], Field(description="whole-frame classes, best first; empty without classify")
    ] = field(default_factory=list)


@dataclass(frozen=True)
class LabelSummary:
    first_s: Annotated[float, Field(description="time of the first analysed frame showing the label")]
    last_s: float
    max_count: Annotated[int, Field(description="most instances in one frame")]
    frames: Annotated[int, Field(description="analysed frames showing it")]


@dataclass(frozen=True)
class VideoAnalysis:
    """Per-frame results and, per label, when it was first and last seen."""

    duration_s: float
    width: int
    height: int
    sample_fps: float
    models: Annotated[dict[str, str], Field(description="operation (detect, classify) -> model name")]
    frames: list[AnalysedFrame]
    summary: Annotated[
        dict[str, LabelSummary],
        Field(description="per label: detections when detect was asked for, else each frame's top class"),
    ]
