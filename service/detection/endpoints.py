"""POST /detect and POST /detect/annotated, mixed into the entry service
(service.gateway.PAIS)."""

from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Literal

import bentoml
from bentoml.validators import ContentType
from pydantic import Field
from starlette.responses import Response

from models.detection import (
    ANNOTATION_MEDIA_TYPES,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    MAX_DETECTIONS,
)
from models.detection.options import canonical_classes, split_names

from ..errors import RequestError, answers_request_errors, checked_outcomes
from ..model_calls import ask_once
from ..sagemaker import InvocationRoute
from ..settings import get_settings
from ..uploads import read_images
from .schemas import DetectItem, DetectOutcome, ImageDetectionsOut
from .worker import ObjectDetection

settings = get_settings()

ScoreThreshold = Annotated[
    float, Field(ge=0.0, le=1.0, description="keep detections scoring at least this (0..1)")
]
MaxDetections = Annotated[
    int, Field(ge=1, le=MAX_DETECTIONS, description="at most this many detections per image, best first")
]
Classes = Annotated[
    str | list[str] | None,
    Field(description="only these labels: comma-separated (`person,cup`) or a JSON list; see GET /models"),
]


class DetectionEndpoints:
    detection = bentoml.depends(ObjectDetection)
    invocation_routes = (
        InvocationRoute("detect", "/detect", file_field="images", raw_types=("image/",)),
        InvocationRoute("detect_annotated", "/detect/annotated", file_field="image", raw_types=("image/",)),
    )

    async def detection_items(
        self,
        datas: list[bytes],
        score_threshold: float,
        max_detections: int,
        classes: str | list[str] | None,
        annotate: str | None = None,
    ) -> list[DetectItem]:
        """One model-service item per image, with the classes spelt as the model spells them
        (RequestError listing the model's labels for an unknown one)."""
        names = split_names(classes)
        if names is not None:
            try:
                names = canonical_classes(names, await self.detection_labels())
            except ValueError as error:
                raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None
        return [
            DetectItem(
                data=data,
                score_threshold=score_threshold,
                max_detections=max_detections,
                classes=list(names) if names else None,
                annotate=annotate,
            )
            for data in datas
        ]

    async def detection_labels(self) -> list[str]:
        """The labels the detection model knows (asked once per worker)."""
        cards = await ask_once(self, "detection", self.detection, "model_info")
        return cards[0]["details"]["labels"]

    @bentoml.api(route="/detect")
    @answers_request_errors
    async def detect(
        self,
        images: list[Path],
        score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD,
        max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS,
        classes: Classes = None,
    ) -> list[ImageDetectionsOut]:
        """Detect objects in one or more images (JPEG, PNG, WebP, GIF): one entry per image,
        in order, boxes [x1, y1, x2, y2] in the image's pixels (after EXIF orientation)."""
        datas = await read_images(images, "images", settings)
        items = await self.detection_items(datas, score_threshold, max_detections, classes)
        outcomes = await self.detection.to_async.detect_batch(items)
        return [outcome.result for outcome in checked_outcomes(outcomes, DetectOutcome, "images")]

    @bentoml.api(route="/detect/annotated")
    @answers_request_errors
    async def detect_annotated(
        self,
        image: Path,
        score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD,
        max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS,
        classes: Classes = None,
        format: Annotated[
            Literal["jpeg", "png"], Field(description="encoding of the returned image")
        ] = "jpeg",
    ) -> Annotated[Path, ContentType("image/*")]:
        """The image with its detections drawn (boxes, labels, scores), as JPEG or PNG."""
        datas = await read_images([image], "image", settings)
        items = await self.detection_items(datas, score_threshold, max_detections, classes, annotate=format)
        (outcome,) = checked_outcomes(
            await self.detection.to_async.detect_batch(items), DetectOutcome, "image"
        )
        return Response(outcome.annotated, media_type=ANNOTATION_MEDIA_TYPES[format])  # type: ignore[return-value]
