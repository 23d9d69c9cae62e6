"""Image classification runtime (ImageNet-1k by default).

The heavy runtime (torch) is imported on first use, so the HTTP layer can read the
constants here without loading torch into its processes.
"""

from typing import Any

MAX_TOP_K = 100  # most predictions one image can ask for

_LAZY = {"Classification", "ImageClassifier", "Prediction"}

__all__ = ["MAX_TOP_K", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
