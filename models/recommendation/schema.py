"""What the recommendation runtime takes and answers, torch-free: the service returns
these types as they are, and documents them from their fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field


@dataclass(frozen=True)
class Ask:
    """One recommendation request: exactly one of user_id, liked_items or query."""

    user_id: str | None = None
    liked_items: tuple[str, ...] | None = None
    query: str | None = None
    k: int = 10
    exclude_seen: bool = True

    def __post_init__(self) -> None:
        given = [name for name in ("user_id", "liked_items", "query") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of user_id, liked_items or query (got {given or 'none'})")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


@dataclass(frozen=True)
class SimilarAsk:
    """The k items most like `item_id`."""

    item_id: str
    k: int = 10


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    title: str | None
    score: float


@dataclass(frozen=True)
class Recommendation:
    """Items best first; `strategy` says how they were found."""

    model: str
    strategy: Annotated[
        Literal["personal", "popular", "content"],
        Field(
            description="personal: the user's or liked items' factors; popular: an unknown user; "
            "content: text"
        ),
    ]
    items: list[ScoredItem]


@dataclass(frozen=True)
class SimilarItems:
    """The items most like `item_id`, best first."""

    model: str
    item_id: str
    strategy: Annotated[
        Literal["collaborative", "content"],
        Field(description="collaborative: interaction embeddings; content: text embeddings (a cold item)"),
    ]
    items: list[ScoredItem]
