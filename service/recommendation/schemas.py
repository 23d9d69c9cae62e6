"""Shapes of POST /recommend and POST /similar_items, also what the entry service hands the
recommendation model service (each request carries its own options, so requests with
different k or strategies share a batch).

Request bodies refuse unknown fields: a misspelt `exclude_seen` must not silently become
the default.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from ..settings import get_settings

settings = get_settings()


def _id_text(value: Any) -> Any:
    """JSON integers are accepted as ids (MovieLens ids are numbers); booleans are not."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Constraints before the validator: the ids are checked as strings, with string messages.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256), BeforeValidator(_id_text)]
K = Annotated[
    int,
    Field(
        ge=1,
        le=settings.max_recommendations,
        description="how many items to return (1..PAIS_MAX_RECOMMENDATIONS)",
    ),
]


class RecommendRequest(BaseModel):
    """Exactly one of user_id, liked_items or query."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier | None = Field(
        None, description="a user of the training data; unknown users get popular items"
    )
    liked_items: (
        Annotated[list[Identifier], Field(min_length=1, max_length=settings.max_liked_items)] | None
    ) = Field(None, description="item ids a new user liked: folded into the model on the fly")
    query: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=settings.max_query_chars)
        ]
        | None
    ) = Field(None, description="text matched against item text (title, genres, description)")
    k: K = 10
    exclude_seen: bool = Field(True, description="leave out items the user (or liked_items) already has")

    @model_validator(mode="after")
    def _one_input(self) -> "RecommendRequest":
        given = [name for name in ("user_id", "liked_items", "query") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of user_id (a user id), liked_items (item ids a new user liked) "
                f"or query (text); got {', '.join(given) if given else 'none'}"
            )
        return self


class SimilarItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    k: K = 10


class ScoredItemOut(BaseModel):
    item_id: str
    title: str | None
    score: float


class RecommendationOut(BaseModel):
    model: str
    items: list[ScoredItemOut]
    strategy: Literal["personal", "popular", "content"]


class SimilarItemsOut(BaseModel):
    model: str
    item_id: str
    items: list[ScoredItemOut]
    strategy: Literal["collaborative", "content"]


class RecommendationErrorOut(BaseModel):
    kind: str  # unknown_item | unsupported (see models.recommendation.RecommendationError)
    message: str
    item_ids: list[str] = []


class RecommendOutcome(BaseModel):
    result: RecommendationOut | None = None
    error: RecommendationErrorOut | None = None


class SimilarItemsOutcome(BaseModel):
    result: SimilarItemsOut | None = None
    error: RecommendationErrorOut | None = None
