"""What the detection runtime takes and answers, torch-free: the service returns these
types as they are, and documents them from their fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from .options import DetectOptions


@dataclass(frozen=True)
class Detection:
    label: str
    score: Annotated[float, Field(description="confidence, 0..1")]
    box: Annotated[
        tuple[float, float, float, float],
        Field(description="x1, y1, x2, y2 in the image's pixels (after EXIF orientation)"),
    ]


@dataclass(frozen=True)
class ImageDetections:
    """One image's detected objects, highest score first."""

    model: Annotated[str, Field(description="the model that answered")]
    width: Annotated[int, Field(description="of the image as oriented by EXIF: what the boxes refer to")]
    height: int
    detections: list[Detection]
    # the image with the detections drawn, when asked for (the annotated route's answer)
    annotated: Annotated[bytes | None, Field(exclude=True)] = field(default=None, repr=False)


@dataclass(frozen=True)
class DetectItem:
    """One image to detect objects in, with its own options (requests with different
    options share a batch); `annotate` ("jpeg" or "png") also draws the boxes."""

    image: bytes
    options: DetectOptions = field(default_factory=DetectOptions)
    annotate: str | None = None
