"""Image classification: POST /classify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.classification import DEFAULT_SOURCE, MAX_TOP_K, Classification, ClassifyItem

from ..config import ModelSettings, setting
from ..context import Context
from ..errors import item_errors
from ..images import IMAGE_TYPES, checked_images
from ..task import BatchJob, Files, Limit, Operation, Task


@dataclass(frozen=True)
class ClassificationSettings(ModelSettings):
    model: str = setting(
        DEFAULT_SOURCE,
        "Source URI of the classifier: packaged:efficientnet-lite0, torchvision:<arch>[:<WEIGHTS>], "
        "hf:<id>, s3://, a directory.",
    )
    max_batch_size: int = setting(
        64, "Most images in one batch (also images decoded at a time: bounds decoded memory).", 1
    )
    max_images: int = setting(64, "Most images in one /classify request (413 beyond: split the batch).", 1)


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: Annotated[
        list[bytes],
        Files(IMAGE_TYPES),
        Limit("max_images", what="images"),
        Field(min_length=1, description="one or more images (JPEG, PNG, WebP, GIF: its first frame)"),
    ]
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="predictions per image")] = 5


async def classify(ctx: Context, request: ClassifyRequest) -> list[Classification]:
    """Classify one or more images: one entry per image, in order, best class first."""
    images = await checked_images(request.images, "images", ctx)
    results = await ctx.predict([ClassifyItem(image, request.top_k) for image in images])
    return item_errors(results, "images")


TASK = Task(
    name="classification",
    summary="ImageNet-1k image classification (1000 classes)",
    runtime="models.classification:ImageClassifier",
    settings=ClassificationSettings,
    operations=(
        Operation("/classify", classify, batch=BatchJob("image", "images", group=16, split="items")),
    ),
    runtime_options=lambda section, settings: {
        "max_pixels": settings.max_image_pixels,
        "forward_chunk": section.max_batch_size,
    },
)
