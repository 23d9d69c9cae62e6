"""Recommendation: an implicit-feedback collaborative model (iALS) trained on a user's own
interactions, with content embeddings of item text for cold start and text queries.

    python -m models.recommendation train --interactions ratings.csv --items items.csv --name my-recs

The heavy runtime (torch, transformers) is imported on first use, so the HTTP layer can
read this package without loading torch into its processes.
"""

from typing import Any

from .schema import Ask, Recommendation, ScoredItem, SimilarAsk, SimilarItems

DEFAULT_SOURCE = "packaged:movielens-100k"  # trained by `make models` on the data recbole ships
STRATEGIES = ("personal", "popular", "content")  # how /recommend answered
SIMILARITY_STRATEGIES = ("collaborative", "content")  # how /similar_items answered

_LAZY = {"RecommendationError", "Recommender"}

__all__ = [
    "DEFAULT_SOURCE",
    "SIMILARITY_STRATEGIES",
    "STRATEGIES",
    "Ask",
    "Recommendation",
    "ScoredItem",
    "SimilarAsk",
    "SimilarItems",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
