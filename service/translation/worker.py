"""The translation model service: the engines and the language identifier of one worker,
adaptive batching across requests.

Items carry their own pair, so requests for different pairs share a batch; the runtime
sends the sentences of all requests that take the same hop to their engine in one call.
A request that cannot be served comes back as an error in its slot.
"""

from typing import Any

import bentoml

from ..model_service import ModelService, model_service_options
from ..model_store import resolve_source
from ..settings import get_settings
from .schemas import DetectionOut, ItemError, RouteHop, TranslateItem, TranslateOutcome, TranslationOut

settings = get_settings()


@bentoml.service(**model_service_options("pais-translation", settings.translation_workers, settings))
class TextTranslation(ModelService):
    def __init__(self) -> None:
        from models.translation import Translator  # engines only in model workers

        self.runtime = Translator.load(
            resolve_source("translation", settings),
            device=settings.device,
            dtype=settings.dtype,
            allow_pivot=settings.translation_allow_pivot,
            pipelines_per_pair=settings.translation_pipelines_per_pair,
            engine_timeout_s=settings.translation_engine_timeout_s,
            show_unknown=settings.translation_unknown_marks,
            generation_batch=settings.translation_generation_batch,
        )
        self.runtime.detector.warm_up()

    def model_cards(self) -> list[dict[str, Any]]:
        return [card.to_dict() for card in self.runtime.cards()]

    @bentoml.api
    def languages(self) -> dict[str, Any]:
        return self.runtime.languages()

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.translation_max_batch_size,
        max_latency_ms=settings.batch_max_latency_ms,
    )
    def translate_batch(self, items: list[TranslateItem]) -> list[TranslateOutcome]:
        from models.translation import TranslationRequest

        self.record_batch("translate_batch", len(items))
        results = self.runtime.translate_many(
            [TranslationRequest(item.texts, item.source, item.target) for item in items]
        )
        return [_outcome(result) for result in results]


def _outcome(result: Any) -> TranslateOutcome:
    from models.translation import TranslationError

    if isinstance(result, TranslationError):
        return TranslateOutcome(
            error=ItemError(kind=result.kind, message=result.message, detail=result.detail)
        )
    detection = result.detection
    return TranslateOutcome(
        result=TranslationOut(
            model=result.model,
            source=result.source,
            target=result.target,
            translations=result.translations,
            route=[RouteHop(**hop) for hop in result.route],
            detection=DetectionOut(language=detection.language, confidence=detection.confidence)
            if detection
            else None,
        )
    )
