"""Classifier input preparation on the runtime's device: resize, crop, normalise.

Every source (packaged, torchvision, Hugging Face) is translated into one `Preprocess`
spec, so all of them run through the same tensor path (on the GPU when there is one)
instead of each library's own PIL-based transforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..device import Placement


@dataclass(frozen=True)
class Preprocess:
    # int: resize the shorter side to this; (h, w): resize to exactly this size.
    resize: int | tuple[int, int]
    crop: tuple[int, int] | None  # center crop after resizing
    mean: tuple[float, float, float]  # on the 0..1 scale
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        resize = data["resize"]
        return cls(
            resize=resize if isinstance(resize, int) else tuple(resize),
            crop=tuple(data["crop"]) if data.get("crop") else None,
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            interpolation=data.get("interpolation", "bilinear"),
        )

    @property
    def output_size(self) -> tuple[int, int]:
        if self.crop:
            return self.crop
        if isinstance(self.resize, int):
            raise ValueError("a shorter-side resize needs a crop to give a fixed input size")
        return self.resize


def prepare_batch(images: Sequence[torch.Tensor], spec: Preprocess, placement: Placement) -> torch.Tensor:
    """uint8 (3, H, W) images of any sizes -> one normalised NCHW batch in the model's dtype."""
    interpolation = InterpolationMode(spec.interpolation)
    resized = []
    for image in images:
        image = image.to(placement.device, non_blocking=True)
        size = [spec.resize] if isinstance(spec.resize, int) else list(spec.resize)
        image = TF.resize(image, size, interpolation=interpolation, antialias=True)
        if spec.crop:
            image = TF.center_crop(image, list(spec.crop))
        resized.append(image)
    batch = torch.stack(resized).to(placement.dtype).div_(255)
    mean = torch.tensor(spec.mean, device=placement.device, dtype=placement.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=placement.device, dtype=placement.dtype).view(1, 3, 1, 1)
    batch = batch.sub_(mean).div_(std)
    if placement.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def from_hf_processor_config(config: dict[str, Any]) -> Preprocess:
    """Translate a transformers `preprocessor_config.json` (ViT, ConvNeXt, ResNet, ...)."""
    size = config.get("size", 224)
    if isinstance(size, dict):
        if "shortest_edge" in size:
            resize: int | tuple[int, int] = int(size["shortest_edge"])
        else:
            resize = (int(size["height"]), int(size["width"]))
    else:
        resize = (int(size), int(size))
    crop = None
    if config.get("do_center_crop"):
        crop_size = config.get("crop_size", resize)
        if isinstance(crop_size, dict):
            crop = (int(crop_size["height"]), int(crop_size["width"]))
        elif isinstance(crop_size, int):
            crop = (crop_size, crop_size)
    if isinstance(resize, int) and crop is None:
        # e.g. ConvNeXt's crop_pct scheme: resize then crop to the shortest edge
        pct = config.get("crop_pct")
        if pct:
            crop = (resize, resize)
            resize = int(resize / pct)
        else:
            resize = (resize, resize)
    if config.get("do_normalize", True):
        mean = tuple(config.get("image_mean", (0.5, 0.5, 0.5)))
        std = tuple(config.get("image_std", (0.5, 0.5, 0.5)))
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    # PIL resample codes used by transformers: 2 = bilinear, 3 = bicubic, 0 = nearest
    interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(config.get("resample", 2), "bilinear")
    return Preprocess(resize=resize, crop=crop, mean=mean, std=std, interpolation=interpolation)
