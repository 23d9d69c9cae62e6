"""Recommendation: an implicit-feedback collaborative model (iALS) trained on a user's own
interactions, with content embeddings of item text for cold start and text queries.

    python -m models.recommendation train --interactions ratings.csv --items items.csv --name my-recs

The heavy runtime (torch, transformers) is imported on first use, so the HTTP layer can
read this package without loading torch into its processes.
"""

from typing import Any

STRATEGIES = ("personal", "popular", "content")  # how /recommend answered
SIMILARITY_STRATEGIES = ("collaborative", "content")  # how /similar_items answered

_LAZY = {"Ask", "Recommendation", "RecommendationError", "Recommender", "ScoredItem"}

__all__ = ["SIMILARITY_STRATEGIES", "STRATEGIES", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
