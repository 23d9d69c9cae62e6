"""The recommendation model service: one runtime per worker, adaptive batching across
requests so a batch of users is scored with one matrix product on the device.

A request the model cannot answer (an unknown item id) comes back as an error in its slot
and never fails the other requests of its batch.
"""

from typing import Any

import bentoml

from ..model_service import ModelService, model_service_options
from ..model_store import resolve_source
from ..settings import get_settings
from .schemas import (
    RecommendationErrorOut,
    RecommendationOut,
    RecommendOutcome,
    RecommendRequest,
    ScoredItemOut,
    SimilarItemsOut,
    SimilarItemsOutcome,
    SimilarItemsRequest,
)

settings = get_settings()
BATCHING = {
    "max_batch_size": settings.recommendation_batch_size,
    "max_latency_ms": settings.batch_max_latency_ms,
}


@bentoml.service(**model_service_options("pais-recommendation", settings.recommendation_workers, settings))
class RecommendationModel(ModelService):
    def __init__(self) -> None:
        from models.recommendation import Recommender  # torch only in model workers

        self.runtime = Recommender.load(
            resolve_source("recommendation", settings), device=settings.device, dtype=settings.dtype
        )

    def model_cards(self) -> list[dict[str, Any]]:
        return [card.to_dict() for card in self.runtime.cards()]

    @bentoml.api(batchable=True, **BATCHING)
    def recommend_batch(self, requests: list[RecommendRequest]) -> list[RecommendOutcome]:
        from models.recommendation import Ask

        self.record_batch("recommend_batch", len(requests))
        asks = [
            Ask(
                r.user_id,
                tuple(r.liked_items) if r.liked_items is not None else None,
                r.query,
                r.k,
                r.exclude_seen,
            )
            for r in requests
        ]
        return [
            RecommendOutcome(**_outcome(result, lambda answer: RecommendationOut(**_answer(answer))))
            for result in self.runtime.recommend_many(asks)
        ]

    @bentoml.api(batchable=True, **BATCHING)
    def similar_batch(self, requests: list[SimilarItemsRequest]) -> list[SimilarItemsOutcome]:
        self.record_batch("similar_batch", len(requests))
        results = self.runtime.similar_many([r.item_id for r in requests], [r.k for r in requests])
        return [
            SimilarItemsOutcome(
                **_outcome(result, lambda answer, r=r: SimilarItemsOut(item_id=r.item_id, **_answer(answer)))
            )
            for r, result in zip(requests, results, strict=True)
        ]


def _outcome(result: Any, shape: Any) -> dict[str, Any]:
    from models.recommendation import RecommendationError

    if isinstance(result, RecommendationError):
        return {
            "error": RecommendationErrorOut(
                kind=result.kind, message=result.message, item_ids=result.item_ids
            )
        }
    return {"result": shape(result)}


def _answer(answer: Any) -> dict[str, Any]:
    return {
        "model": answer.model,
        "strategy": answer.strategy,
        "items": [ScoredItemOut(item_id=i.item_id, title=i.title, score=i.score) for i in answer.items],
    }
