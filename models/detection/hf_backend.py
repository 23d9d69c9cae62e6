"""transformers object detectors (DETR, Conditional/Deformable DETR, YOLOS, RT-DETR, ...:
`AutoModelForObjectDetection`) as a detector backend.

Preprocessing follows the model's `preprocessor_config.json` (resize rule, rescale,
mean/std) as tensor operations on the device instead of the processor's PIL path; the
output goes through the processor's own `post_process_object_detection`, which knows each
family's scoring (softmax with a no-object class for DETR, sigmoid for the others).
Images are batched by resized shape, not padded: models differ in whether and how they
read a padding mask, and unpadded batches give exactly what the library's pipeline gives
one image at a time. Video frames and same-sized uploads all share one shape.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..device import Placement
from .backend import STRICT_THRESHOLD_SLACK, Candidates, DetectorBackend, Query

HF_DIR = "hf"
# PIL resample codes in processor configs: 0 nearest, 2 bilinear, 3 bicubic
_INTERPOLATION = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC}


def resized_shape(height: int, width: int, size: dict[str, int]) -> tuple[int, int]:
    """The (height, width) a transformers detection processor resizes an image to: an
    exact size, or the shortest edge capped by the longest (DETR's 800 / 1333), rounded
    the way transformers' `get_size_with_aspect_ratio` rounds."""
    if "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    if "shortest_edge" in size:
        target, max_size = int(size["shortest_edge"]), size.get("longest_edge")
        raw = None
        if max_size is not None:
            short, long = float(min(height, width)), float(max(height, width))
            if long / short * target > max_size:
                raw = max_size * short / long
                target = round(raw)
        if (height <= width and height == target) or (width <= height and width == target):
            return height, width
        if width < height:
            return int((raw or target) * height / width), target
        return target, int((raw or target) * width / height)
    if "longest_edge" in size:
        scale = int(size["longest_edge"]) / max(height, width)
        return round(height * scale), round(width * scale)
    raise ValueError(
        f"unsupported processor size {size}; expected height/width, shortest_edge or longest_edge"
    )


class HFDetectorBackend(DetectorBackend):
    arch = "hf"

    def __init__(self, model: nn.Module, processor: Any):
        super().__init__()
        self.model = model
        self.processor = processor
        id2label = model.config.id2label
        self.labels = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(id2label))]
        self._size = dict(processor.size)
        self._interpolation = _INTERPOLATION.get(
            int(getattr(processor, "resample", 2)), InterpolationMode.BILINEAR
        )
        self._rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
        normalise = getattr(processor, "do_normalize", True)
        self._mean = tuple(processor.image_mean) if normalise else (0.0, 0.0, 0.0)
        self._std = tuple(processor.image_std) if normalise else (1.0, 1.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {"resize": self._size}

    def save(self, directory: Path) -> dict[str, Any]:
        self.model.save_pretrained(directory / HF_DIR)
        self.processor.save_pretrained(directory / HF_DIR)
        return {}

    def _prepare(self, image: torch.Tensor, placement: Placement) -> torch.Tensor:
        height, width = image.shape[-2:]
        shape = list(resized_shape(height, width, self._size))
        image = TF.resize(
            image.to(placement.device), shape, interpolation=self._interpolation, antialias=True
        )
        pixels = image.to(torch.float32) * self._rescale
        mean = torch.tensor(self._mean, device=pixels.device).view(3, 1, 1)
        std = torch.tensor(self._std, device=pixels.device).view(3, 1, 1)
        return ((pixels - mean) / std).to(placement.dtype)

    def detect(
        self, images: Sequence[torch.Tensor], queries: Sequence[Query], placement: Placement
    ) -> list[Candidates]:
        prepared = [self._prepare(image, placement) for image in images]
        groups: defaultdict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, pixels in enumerate(prepared):
            groups[tuple(pixels.shape)].append(i)
        results: list[Candidates | None] = [None] * len(images)
        threshold = min(q.score_threshold for q in queries) - STRICT_THRESHOLD_SLACK
        for members in groups.values():
            batch = torch.stack([prepared[i] for i in members])
            if placement.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            outputs = self.model(pixel_values=batch)
            # post-processing in fp32 whatever the model computes in
            outputs.logits = outputs.logits.float()
            outputs.pred_boxes = outputs.pred_boxes.float()
            sizes = [tuple(images[i].shape[-2:]) for i in members]
            found = self.processor.post_process_object_detection(
                outputs, threshold=threshold, target_sizes=sizes
            )
            for i, out in zip(members, found, strict=True):
                results[i] = Candidates(out["boxes"], out["scores"], out["labels"])
        return results  # type: ignore[return-value]
