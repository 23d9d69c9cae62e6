"""Object detection runtime (COCO's 80 classes by default).

The heavy runtime (torch) is imported on first use, so the HTTP layer can read the
option limits here without loading torch into its processes.
"""

from typing import Any

DEFAULT_SCORE_THRESHOLD = 0.25
DEFAULT_MAX_DETECTIONS = 100
MAX_DETECTIONS = 300  # most detections one image can ask for
# formats an annotated image can come back in -> media type
ANNOTATION_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}

_LAZY = {"Detection", "ImageDetections", "ObjectDetector"}

__all__ = [
    "ANNOTATION_MEDIA_TYPES",
    "DEFAULT_MAX_DETECTIONS",
    "DEFAULT_SCORE_THRESHOLD",
    "MAX_DETECTIONS",
    "DetectOptions",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name == "DetectOptions":  # torch-free
        from .options import DetectOptions

        return DetectOptions
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
