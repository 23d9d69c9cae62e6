"""torchvision detection models (Faster R-CNN, RetinaNet, FCOS, SSD, SSDlite, ...) as a
detector backend.

These models resize, normalise and batch internally and answer in input-image pixels, so
the backend hands them float images on the device as they are. Their own score threshold
and per-image cap are attributes read at each forward: they are set to the loosest query
of the batch (the runtime's `finish` then applies each image's own), under a lock since
a model service may run two batches at once.

Reduced precision runs as autocast over fp32 weights (as torchvision's own reference
scripts do): box decoding and NMS stay in fp32, and CPU autocast runs the same code path
as CUDA's (torchvision's CPU NMS has no fp16 kernel, so plain fp16 would not run there).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import Placement
from ..loading import WEIGHTS_FILE, save_weights
from . import MAX_DETECTIONS
from .backend import STRICT_THRESHOLD_SLACK, Candidates, DetectorBackend, Query


class TorchvisionBackend(DetectorBackend):
    autocast = True  # see the module docstring

    def __init__(self, network: nn.Module, labels: list[str], arch: str):
        super().__init__()
        self.network = network
        self.labels = labels
        self.arch = arch
        self._lock = threading.Lock()
        # two-stage models (Faster/Mask/Keypoint R-CNN) keep their limits in roi_heads,
        # one-stage ones (RetinaNet, FCOS, SSD) on the model itself
        self._limits = getattr(network, "roi_heads", network)
        if not hasattr(self._limits, "score_thresh"):
            raise ValueError(f"{type(network).__name__} has no score_thresh to set")

    def describe(self) -> dict[str, Any]:
        transform = getattr(self.network, "transform", None)
        if transform is None:
            return {}
        return {"min_size": list(transform.min_size), "max_size": transform.max_size}

    def save(self, directory: Path) -> dict[str, Any]:
        save_weights(self.network, directory / WEIGHTS_FILE)
        return {}

    def detect(
        self, images: Sequence[torch.Tensor], queries: Sequence[Query], placement: Placement
    ) -> list[Candidates]:
        inputs = [image.to(placement.device).float() / 255 for image in images]
        # a class filter is applied after the model's own cap: let that cap pass everything
        filtered = any(q.class_ids is not None for q in queries)
        with self._lock:
            self._limits.score_thresh = min(q.score_threshold for q in queries) - STRICT_THRESHOLD_SLACK
            self._limits.detections_per_img = (
                MAX_DETECTIONS if filtered else max(q.max_detections for q in queries)
            )
            with self.precision(placement):
                outputs = self.network(inputs)
        return [Candidates(out["boxes"], out["scores"], out["labels"]) for out in outputs]
