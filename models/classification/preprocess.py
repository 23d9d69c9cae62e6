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
from ..sources import SourceError


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


class BatchPreparer:
    """uint8 (3, H, W) images of any sizes -> one normalised NCHW batch in the model's dtype.

    The normalisation constants live on the device from the start (building them per batch
    would be a host-to-device copy that waits for the queued resizes). On accelerated
    placements images are resized in the compute dtype: torchvision resizes uint8 on CUDA
    by going through float32 and back, a full-resolution round trip for nothing.
    """

    def __init__(self, spec: Preprocess, placement: Placement):
        self.spec = spec
        self.placement = placement
        self.interpolation = InterpolationMode(spec.interpolation)
        self.size = [spec.resize] if isinstance(spec.resize, int) else list(spec.resize)
        self.mean = torch.tensor(spec.mean, device=placement.device, dtype=placement.dtype).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, device=placement.device, dtype=placement.dtype).view(1, 3, 1, 1)

    def __call__(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        placement = self.placement
        resized = []
        for image in images:
            image = image.to(placement.device, non_blocking=True)
            if placement.accelerated:
                image = image.to(placement.dtype).div_(255)
            image = TF.resize(image, self.size, interpolation=self.interpolation, antialias=True)
            if self.spec.crop:
                image = TF.center_crop(image, list(self.spec.crop))
            resized.append(image)
        batch = torch.stack(resized)
        if not placement.accelerated:
            batch = batch.to(placement.dtype).div_(255)
        batch = batch.sub_(self.mean).div_(self.std)
        if placement.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def from_hf_processor_config(config: dict[str, Any]) -> Preprocess:
    """Translate a transformers `preprocessor_config.json` (ViT, ConvNeXt, ResNet, ...)."""
    size = config.get("size", 224)
    if isinstance(size, dict):
        if "shortest_edge" in size:
            resize: int | tuple[int, int] = int(size["shortest_edge"])
        elif "height" in size and "width" in size:
            resize = (int(size["height"]), int(size["width"]))
        else:
            raise SourceError(
                f"unsupported image processor size {size!r}; supported: shortest_edge, height+width"
            )
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
    # The batch preparer scales pixels to 0..1; a processor that rescales by another factor
    # (or not at all) is matched by scaling mean and std: (x*r - m)/s == (x/255 - m/(255r))/(s/(255r)).
    rescale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
    factor = 255 * rescale
    mean = tuple(m / factor for m in mean)
    std = tuple(s / factor for s in std)
    # PIL resample codes used by transformers: 2 = bilinear, 3 = bicubic, 0 = nearest
    interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(config.get("resample", 2), "bilinear")
    return Preprocess(resize=resize, crop=crop, mean=mean, std=std, interpolation=interpolation)
