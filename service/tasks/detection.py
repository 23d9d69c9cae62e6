"""Object detection: POST /detect and POST /detect/annotated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.detection import (
    ANNOTATION_MEDIA_TYPES,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    DEFAULT_SOURCE,
    MAX_DETECTIONS,
)
from models.detection.options import DetectOptions, canonical_classes
from models.detection.schema import DetectItem, ImageDetections

from ..config import ModelSettings, setting
from ..context import Context
from ..errors import RequestError, item_errors, single
from ..images import IMAGE_TYPES, checked_images
from ..task import BatchJob, Binary, BinaryAnswer, Files, Limit, Operation, Task


@dataclass(frozen=True)
class DetectionSettings(ModelSettings):
    model: str = setting(
        DEFAULT_SOURCE,
        "Source URI of the detector: packaged:yolov3-tiny, packaged:mtcnn-faces, torchvision:<arch>, "
        "hf:<id> (DETR-style), s3://, a directory.",
    )
    max_batch_size: int = setting(
        64, "Most images in one batch (also images decoded at a time: bounds decoded memory).", 1
    )
    max_images: int = setting(64, "Most images in one /detect request (413 beyond: split the batch).", 1)


ScoreThreshold = Annotated[float, Field(ge=0.0, le=1.0, description="keep detections scoring at least this")]
MaxDetections = Annotated[
    int, Field(ge=1, le=MAX_DETECTIONS, description="at most this many detections per image, best first")
]
Classes = Annotated[
    list[str] | None,
    Field(
        description="only these labels (GET /models lists them): repeated, or comma-separated `person,cup`"
    ),
]


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: Annotated[
        list[bytes],
        Files(IMAGE_TYPES),
        Limit("max_images", what="images"),
        Field(min_length=1, description="one or more images (JPEG, PNG, WebP, GIF: its first frame)"),
    ]
    score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD
    max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS
    classes: Classes = None


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: Annotated[bytes, Files(IMAGE_TYPES), Field(description="one image (JPEG, PNG, WebP, GIF)")]
    score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD
    max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS
    classes: Classes = None
    format: Annotated[Literal["jpeg", "png"], Field(description="encoding of the returned image")] = "jpeg"


async def detection_options(ctx: Context, request: DetectRequest | AnnotateRequest) -> DetectOptions:
    """The request's options, its classes spelt as the model spells them (400 listing the
    model's labels for an unknown one)."""
    classes = None
    if request.classes:
        (card,) = await ctx.cards("detection")
        classes = classes_of_model(request.classes, card)
    return DetectOptions(request.score_threshold, request.max_detections, classes)


def classes_of_model(requested: list[str], card: dict[str, Any]) -> list[str]:
    """`requested` spelt as the detector of `card` spells them (400 listing its labels for
    an unknown one)."""
    try:
        return canonical_classes(requested, card["details"]["labels"])
    except ValueError as error:
        raise RequestError(
            400, str(error), [{"field": "classes", "kind": "invalid", "message": str(error)}]
        ) from None


async def detect(ctx: Context, request: DetectRequest) -> list[ImageDetections]:
    """Detect objects in one or more images: one entry per image, in order, boxes
    [x1, y1, x2, y2] in the image's pixels (after EXIF orientation)."""
    images = await checked_images(request.images, "images", ctx)
    options = await detection_options(ctx, request)
    return item_errors(await ctx.predict([DetectItem(image, options) for image in images]), "images")


async def detect_annotated(ctx: Context, request: AnnotateRequest) -> Binary:
    """The image with its detections drawn (boxes, labels, scores), as JPEG or PNG."""
    (image,) = await checked_images([request.image], "image", ctx)
    options = await detection_options(ctx, request)
    result = single(await ctx.predict([DetectItem(image, options, request.format)]), "image")
    return Binary(result.annotated, ANNOTATION_MEDIA_TYPES[request.format])


async def class_choices(ctx: Context) -> dict[str, list[str]]:
    """The labels `classes` may name: the loaded detector's."""
    (card,) = await ctx.cards("detection")
    return {"classes": list(card["details"]["labels"])}


TASK = Task(
    name="detection",
    summary="COCO object detection (80 classes): labelled boxes",
    runtime="models.detection:ObjectDetector",
    settings=DetectionSettings,
    operations=(
        Operation(
            "/detect",
            detect,
            batch=BatchJob("image", "images", group=16, split="items"),
            choices=class_choices,
        ),
        Operation(
            "/detect/annotated",
            detect_annotated,
            answer=BinaryAnswer(
                tuple(ANNOTATION_MEDIA_TYPES.values()), "the image with its detections drawn"
            ),
            batch=BatchJob("image", "image", split=None),
            choices=class_choices,
        ),
    ),
    runtime_options=lambda section, settings: {
        "max_pixels": settings.max_image_pixels,
        "forward_chunk": section.max_batch_size,
    },
)
