"""Image classification: POST /classify and POST /embed, with the served classifier or a
custom one trained with `python -m models.finetune` (model=NAME[:version])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.classification import (
    DEFAULT_SOURCE,
    MAX_TOP_K,
    Classification,
    ClassifyItem,
    Embedding,
    EmbedItem,
)

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


Images = Annotated[
    list[bytes],
    Files(IMAGE_TYPES),
    Limit("max_images", what="images"),
    Field(min_length=1, description="one or more images (JPEG, PNG, WebP, GIF: its first frame)"),
]
# BentoML store names (what `python -m models.finetune --name` stores), with a version or not
ModelName = Annotated[
    str | None,
    Field(
        max_length=128,
        pattern=r"^[a-z0-9][a-z0-9._-]*(:[a-z0-9._-]+)?$",
        description="a custom model trained with models.finetune: NAME (its latest version) or "
        "NAME:version (GET /models lists them); unset: the served classifier",
    ),
]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: Images
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="predictions per image")] = 5
    model: ModelName = None


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: Images
    model: ModelName = None


async def classify(ctx: Context, request: ClassifyRequest) -> list[Classification]:
    """Classify one or more images: one entry per image, in order, best class first."""
    images = await checked_images(request.images, "images", ctx)
    results = await ctx.predict([ClassifyItem(image, request.top_k, request.model) for image in images])
    return item_errors(results, "images")


async def embed(ctx: Context, request: EmbedRequest) -> list[Embedding]:
    """Image embeddings: the features the classifier's final layer reads (1280 floats for
    EfficientNet-Lite0), one per image, in order; for search, clustering or a head of your own."""
    images = await checked_images(request.images, "images", ctx)
    return item_errors(await ctx.predict([EmbedItem(image, request.model) for image in images]), "images")


TASK = Task(
    name="classification",
    summary="ImageNet-1k image classification (1000 classes)",
    runtime="models.classification:ImageClassifier",
    settings=ClassificationSettings,
    operations=(
        Operation(
            "/classify", classify, statuses=(404,), batch=BatchJob("image", "images", group=16, split="items")
        ),
        Operation(
            "/embed", embed, statuses=(404, 422), batch=BatchJob("image", "images", group=16, split="items")
        ),
    ),
    named_models=True,
    runtime_options=lambda section, settings: {
        "max_pixels": settings.max_image_pixels,
        "forward_chunk": section.max_batch_size,
    },
)
