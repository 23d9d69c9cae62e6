"""POST /recommend and POST /similar_items, mixed into the entry service (service.gateway.PAIS).

Each takes its whole JSON body as one model (a positional-only parameter), so unknown
fields and the "exactly one of user_id, liked_items, query" rule are checked by pydantic
and answered as 400s naming the field.
"""

from http import HTTPStatus
from typing import Any

import bentoml

from ..errors import RequestError, answers_request_errors
from ..sagemaker import InvocationRoute
from .schemas import (
    RecommendationErrorOut,
    RecommendationOut,
    RecommendOutcome,
    RecommendRequest,
    SimilarItemsOut,
    SimilarItemsOutcome,
    SimilarItemsRequest,
)
from .worker import RecommendationModel

# RecommendationError.kind -> HTTP status
ERROR_STATUS = {"unknown_item": HTTPStatus.NOT_FOUND, "unsupported": HTTPStatus.BAD_REQUEST}


class RecommendationEndpoints:
    recommendation = bentoml.depends(RecommendationModel)
    # SageMaker /invocations: JSON bodies as these endpoints take them
    invocation_routes = (
        InvocationRoute("recommend", "/recommend"),
        InvocationRoute("similar_items", "/similar_items"),
    )

    @bentoml.api(route="/recommend")
    @answers_request_errors
    async def recommend(self, request: RecommendRequest, /) -> RecommendationOut:
        """Top-k items for a known user (strategy "personal"), an unknown one ("popular"),
        a new user's liked items (fold-in, "personal") or a text query ("content")."""
        (outcome,) = await self.recommendation.to_async.recommend_batch([request])
        return _result(RecommendOutcome, outcome)

    @bentoml.api(route="/similar_items")
    @answers_request_errors
    async def similar_items(self, request: SimilarItemsRequest, /) -> SimilarItemsOut:
        """The k items most like `item_id` (cosine of collaborative embeddings, or of
        content embeddings for an item without interactions)."""
        (outcome,) = await self.recommendation.to_async.similar_batch([request])
        return _result(SimilarItemsOutcome, outcome)


def _result(shape: Any, outcome: Any) -> Any:
    if isinstance(outcome, dict):
        outcome = shape.model_validate(outcome)
    if outcome.error is not None:
        raise _request_error(outcome.error)
    return outcome.result


def _request_error(error: RecommendationErrorOut) -> RequestError:
    detail = {"kind": error.kind, "item_ids": error.item_ids} if error.item_ids else {"kind": error.kind}
    return RequestError(ERROR_STATUS.get(error.kind, HTTPStatus.BAD_REQUEST), error.message, detail)
