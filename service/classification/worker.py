"""The classification model service: one runtime per worker, adaptive batching across
requests.

Items carry their own `top_k`, so requests with different options share one batch (a
batchable BentoML API takes exactly one argument). A bad image comes back as an error in
its slot and never fails the other requests of its batch.
"""

import bentoml

from ..model_service import ModelService, batchable_options, load_task_runtime, model_service_options
from ..settings import get_settings
from .schemas import ClassificationOut, ClassifyItem, ClassifyOutcome, ItemError, PredictionOut

settings = get_settings()


@bentoml.service(**model_service_options("pais-classification", settings.classification_workers, settings))
class ImageClassification(ModelService):
    def __init__(self) -> None:
        self.runtime = load_task_runtime("classification", settings)  # torch only in model workers

    @bentoml.api(**batchable_options(settings))
    def classify_batch(self, items: list[ClassifyItem]) -> list[ClassifyOutcome]:
        self.record_batch("classify_batch", len(items))
        results = self.runtime.classify_many([item.data for item in items], [item.top_k for item in items])
        return [_outcome(result) for result in results]


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
