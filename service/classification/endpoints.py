"""POST /classify, mixed into the entry service (service.gateway.PAIS)."""

from pathlib import Path
from typing import Annotated

import bentoml
from pydantic import Field

from models.classification import MAX_TOP_K

from ..errors import answers_request_errors, checked_outcomes
from ..sagemaker import InvocationRoute
from ..settings import get_settings
from ..uploads import read_images
from .schemas import ClassificationOut, ClassifyItem, ClassifyOutcome
from .worker import ImageClassification

settings = get_settings()


class ClassificationEndpoints:
    classification = bentoml.depends(ImageClassification)
    invocation_routes = (
        InvocationRoute("classify", "/classify", file_field="images", raw_types=("image/",)),
    )

    @bentoml.api(route="/classify")
    @answers_request_errors
    async def classify(
        self,
        images: list[Path],
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="predictions per image")] = 5,
    ) -> list[ClassificationOut]:
        """Classify one or more images (JPEG, PNG, WebP, GIF): one entry per image, in order."""
        datas = await read_images(images, "images", settings)
        outcomes = await self.classification.to_async.classify_batch(
            [ClassifyItem(data=data, top_k=top_k) for data in datas]
        )
        return [outcome.result for outcome in checked_outcomes(outcomes, ClassifyOutcome, "images")]
