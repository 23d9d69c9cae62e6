"""The classification model service: one runtime per worker, adaptive batching across
requests. Reached only through the entry service (service.gateway), which validates input.

Items carry their own `top_k`, so requests with different options share one batch: a
batchable BentoML API takes exactly one argument. A bad image comes back as an error in
its slot and never fails the other requests of its batch.
"""

from collections import Counter

import bentoml
from pydantic import BaseModel

from .model_store import resolve_source
from .settings import get_settings

settings = get_settings()


class ClassifyItem(BaseModel):
    data: bytes  # the encoded image, checked by the entry service
    top_k: int = 5


class PredictionOut(BaseModel):
    label: str
    score: float
    index: int


class ClassificationOut(BaseModel):
    model: str
    predictions: list[PredictionOut]


class ItemError(BaseModel):
    kind: str  # see models.image_header.ImageError
    message: str


class ClassifyOutcome(BaseModel):
    result: ClassificationOut | None = None
    error: ItemError | None = None


@bentoml.service(
    name="pais-classification",
    workers=settings.classification_workers,
    traffic={"timeout": settings.request_timeout_s, "max_concurrency": settings.max_concurrency},
    # BentoML's proxy recycles its connection every 100 requests even with requests in
    # flight, which drops ~10% of calls under concurrency (see DESIGN.md).
    runner_connection={"max_requests": 2**31 - 1},
)
class ImageClassification:
    def __init__(self) -> None:
        from models.classification import ImageClassifier  # torch only in model workers

        self.runtime = ImageClassifier.load(
            resolve_source("classification", settings),
            device=settings.device,
            dtype=settings.dtype,
            max_pixels=settings.max_image_pixels,
        )
        self.batch_sizes: Counter[int] = Counter()

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.batch_max_latency_ms,
    )
    def classify_batch(self, items: list[ClassifyItem]) -> list[ClassifyOutcome]:
        self.batch_sizes[len(items)] += 1
        results = self.runtime.classify_many([item.data for item in items], [item.top_k for item in items])
        return [_outcome(result) for result in results]

    @bentoml.api
    def model_info(self) -> dict:
        return self.runtime.info.to_dict()

    @bentoml.api
    def batch_stats(self) -> dict:
        """Batch sizes this worker has formed since start: {size: count}."""
        return {str(size): count for size, count in sorted(self.batch_sizes.items())}


def _outcome(result: object) -> ClassifyOutcome:
    from models.classification import Classification

    if isinstance(result, Classification):
        return ClassifyOutcome(
            result=ClassificationOut(
                model=result.model,
                predictions=[
                    PredictionOut(label=p.label, score=p.score, index=p.index) for p in result.predictions
                ],
            )
        )
    return ClassifyOutcome(error=ItemError(kind=result.kind, message=result.message))  # type: ignore[attr-defined]
