"""The detection model service: one runtime per worker, adaptive batching across requests
(image requests and video frames alike).

Items carry their own options (score threshold, cap, classes, whether to draw the boxes),
so requests with different options share one batch (a batchable BentoML API takes exactly
one argument). A bad image or option comes back as an error in its slot and never fails
the other requests of its batch.
"""

import bentoml

from ..model_service import ModelService, batchable_options, load_task_runtime, model_service_options
from ..schemas import ItemError
from ..settings import get_settings
from .schemas import DetectionOut, DetectItem, DetectOutcome, ImageDetectionsOut

settings = get_settings()


@bentoml.service(**model_service_options("pais-detection", settings.detection_workers, settings))
class ObjectDetection(ModelService):
    def __init__(self) -> None:
        self.runtime = load_task_runtime("detection", settings)  # torch only in model workers

    @bentoml.api(**batchable_options(settings))
    def detect_batch(self, items: list[DetectItem]) -> list[DetectOutcome]:
        from models.detection import DetectOptions

        self.record_batch("detect_batch", len(items))
        outcomes: list[DetectOutcome | None] = [None] * len(items)
        good, options = [], []
        for i, item in enumerate(items):
            option = DetectOptions(
                item.score_threshold, item.max_detections, tuple(item.classes) if item.classes else None
            )
            try:
                self.runtime.check_options(option, item.annotate)
            except ValueError as error:  # the entry service checks first: this is a safety net
                outcomes[i] = DetectOutcome(error=ItemError(kind="invalid", message=str(error)))
                continue
            good.append(i)
            options.append(option)
        results = self.runtime.detect_many(
            [items[i].data for i in good], options, [items[i].annotate for i in good]
        )
        for i, result in zip(good, results, strict=True):
            outcomes[i] = _outcome(result)
        return outcomes  # type: ignore[return-value]


def _outcome(result: object) -> DetectOutcome:
    from models.detection import ImageDetections

    if isinstance(result, ImageDetections):
        return DetectOutcome(
            result=ImageDetectionsOut(
                model=result.model,
                width=result.width,
                height=result.height,
                detections=[DetectionOut(label=d.label, score=d.score, box=d.box) for d in result.detections],
            ),
            annotated=result.annotated,
        )
    return DetectOutcome(error=ItemError(kind=result.kind, message=result.message))  # type: ignore[attr-defined]
