"""The interface every detector family implements (Darknet YOLO, torchvision, transformers),
and the finishing step they share.

A backend takes decoded images already on the model's device and each image's query, runs
one batched forward, and returns candidates in input-image pixels. The runtime then
applies every query exactly the same way whatever the backend (`finish`), so a score
threshold, a class filter or a cap means the same thing for every source.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import Placement

# Libraries keep scores strictly above their threshold; PAIS keeps scores at or above the
# asked one. Handing them a hair less makes the two agree (`finish` applies the exact one).
STRICT_THRESHOLD_SLACK = 1e-6


@dataclass(frozen=True)
class Query:
    """One image's options, with classes as the backend's label indices."""

    score_threshold: float
    max_detections: int
    class_ids: tuple[int, ...] | None  # None: every class


@dataclass
class Candidates:
    """One image's detections, highest score first or not, on any device."""

    boxes: torch.Tensor  # (K, 4) float x1, y1, x2, y2 in input-image pixels
    scores: torch.Tensor  # (K,)
    label_ids: torch.Tensor  # (K,) int64 indices into the backend's labels


class DetectorBackend(nn.Module):
    """Subclasses set `labels` (index -> name; "" or placeholders for unused indices),
    `arch` (how a snapshot rebuilds it) and implement `detect` and `save`."""

    labels: list[str]
    arch: str
    # Reduced precision as autocast over fp32 weights instead of fp16/bf16 weights: for
    # models whose library post-processing (box decoding, NMS) needs fp32, as torchvision's
    # reference scripts run them; CPU autocast then runs the same path as CUDA's.
    autocast = False

    def placed(self, placement: Placement) -> DetectorBackend:
        """This backend moved to the placement's device, dtype and layout."""
        if not self.autocast:
            return placement.place(self)  # type: ignore[return-value]
        module = self.eval().to(placement.device)
        return module.to(memory_format=torch.channels_last) if placement.channels_last else module

    def precision(self, placement: Placement) -> contextlib.AbstractContextManager:
        """The context a forward runs in: autocast to the placement's dtype when it applies."""
        enabled = self.autocast and placement.dtype != torch.float32
        return torch.autocast(placement.device.type, dtype=placement.dtype, enabled=enabled)

    def detect(
        self, images: Sequence[torch.Tensor], queries: Sequence[Query], placement: Placement
    ) -> list[Candidates]:
        """uint8 (3, H, W) images on `placement.device` -> one Candidates per image. Backends
        may apply a query early (cheaper); `finish` applies it in full afterwards."""
        raise NotImplementedError

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the weights under `directory`; returns manifest fields to store."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Details for the model card (input size, ...)."""
        return {}


def finish(candidates: Candidates, query: Query, height: int, width: int) -> Candidates:
    """Clip to the image, keep what the query asks for, highest scores first, capped."""
    boxes = candidates.boxes.float().clone()  # clipped in place below
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    keep = candidates.scores >= query.score_threshold
    if query.class_ids is not None:
        allowed = torch.tensor(query.class_ids, device=candidates.label_ids.device)
        keep &= torch.isin(candidates.label_ids, allowed)
    # boxes clipped to nothing (wholly outside the image) are not detections
    keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    scores = candidates.scores[keep].float()
    order = scores.argsort(descending=True)[: query.max_detections]
    return Candidates(boxes[keep][order], scores[order], candidates.label_ids[keep][order])
