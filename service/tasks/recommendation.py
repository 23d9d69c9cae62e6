"""Recommendation: POST /recommend and POST /similar_items.

Served in the entry process by default: scoring a batch is one matrix product of well
under a millisecond, so the hop to a model service would cost many times the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from models.recommendation import DEFAULT_SOURCE, Ask, Recommendation, SimilarAsk, SimilarItems

from ..config import ModelSettings, setting
from ..context import Context
from ..errors import single
from ..task import BatchJob, Limit, Operation, Task

HARD_MAX_K = 10_000  # the schema's own bound; PAIS_RECOMMENDATION_MAX_K sets the served one


@dataclass(frozen=True)
class RecommendationSettings(ModelSettings):
    model: str = setting(
        DEFAULT_SOURCE,
        "Source URI of the recommender: packaged:movielens-100k (trained by `make models`), a "
        "snapshot directory or s3:// archive, or bentoml:<name> for one trained with "
        "`python -m models.recommendation train`.",
    )
    serve_in: str = setting(
        "entry",
        "Where the model runs: `entry` (default: a batch scores in well under a millisecond, less than "
        "a hop between processes costs; each entry worker holds a copy) or `model-service`.",
        choices=("model-service", "entry"),
    )
    max_batch_size: int = setting(64, "Most requests scored in one matrix product.", 1)
    max_k: int = setting(100, "Largest k one /recommend or /similar_items request may ask for.", 1)
    max_liked_items: int = setting(500, "Most liked_items one /recommend request may send.", 1)
    max_query_chars: int = setting(1000, "Longest /recommend query, in characters.", 1)


def _id_text(value: Any) -> Any:
    """JSON integers are accepted as ids (MovieLens ids are numbers); booleans are not."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Constraints before the validator: ids are checked as strings, with string messages. The
# schema says what is accepted: a string, or an integer (read as its decimal text).
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    BeforeValidator(_id_text),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}]}),
]
# "exactly one of user_id, liked_items, query", as JSON Schema: each branch holds when its
# field is present and not null, and oneOf wants exactly one branch to hold.
EXACTLY_ONE = {
    "oneOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("user_id", "liked_items", "query")
    ]
}
K = Annotated[
    int, Limit("max_k", status=400), Field(ge=1, le=HARD_MAX_K, description="how many items to return")
]


class RecommendRequest(BaseModel):
    """Exactly one of user_id, liked_items or query."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=EXACTLY_ONE)

    user_id: Annotated[
        Identifier | None, Field(description="a user of the training data; unknown users get popular items")
    ] = None
    liked_items: Annotated[
        list[Identifier] | None,
        Limit("max_liked_items", status=400, what="items"),
        Field(min_length=1, description="item ids a new user liked: folded into the model on the fly"),
    ] = None
    query: Annotated[
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None,
        Limit("max_query_chars", status=400, what="characters"),
        Field(description="text matched against item text (title, genres, description)"),
    ] = None
    k: K = 10
    exclude_seen: Annotated[
        bool, Field(description="leave out items the user (or liked_items) already has")
    ] = True

    @model_validator(mode="after")
    def _one_input(self) -> RecommendRequest:
        given = [name for name in ("user_id", "liked_items", "query") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of user_id (a user id), liked_items (item ids a new user liked) "
                f"or query (text); got {', '.join(given) if given else 'none'}"
            )
        return self


class SimilarItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Annotated[Identifier, Field(description="an item of the model's catalogue")]
    k: K = 10


async def recommend(ctx: Context, request: RecommendRequest) -> Recommendation:
    """Top-k items for a known user (strategy "personal"), an unknown one ("popular"), a
    new user's liked items (fold-in, "personal") or a text query ("content")."""
    liked = tuple(request.liked_items) if request.liked_items is not None else None
    ask = Ask(request.user_id, liked, request.query, request.k, request.exclude_seen)
    return single(await ctx.predict([ask]))


async def similar_items(ctx: Context, request: SimilarItemsRequest) -> SimilarItems:
    """The k items most like `item_id` (cosine of collaborative embeddings, or of content
    embeddings for an item without interactions)."""
    return single(await ctx.predict([SimilarAsk(request.item_id, request.k)]))


TASK = Task(
    name="recommendation",
    summary="iALS recommendations trained on MovieLens-100K, content embeddings for cold start",
    runtime="models.recommendation:Recommender",
    settings=RecommendationSettings,
    operations=(
        Operation("/recommend", recommend, statuses=(404, 422), batch=BatchJob("json", None)),
        Operation("/similar_items", similar_items, statuses=(404, 422), batch=BatchJob("json", None)),
    ),
)
