"""What one epoch trains on: cached feature vectors (head mode) or augmented pixels
(finetune, full). Both draw their order and augmentation from a generator seeded by
(seed, epoch), so an epoch replayed after --resume is the epoch the killed run began."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..classification.preprocess import Preprocess

EVAL_CHUNK = 256  # validation images per forward


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass(frozen=True)
class Split:
    train: torch.Tensor  # features or uint8 images, one row per example
    train_y: torch.Tensor
    val: torch.Tensor
    val_y: torch.Tensor

    @classmethod
    def of(cls, rows: torch.Tensor, targets: torch.Tensor, split: tuple[torch.Tensor, torch.Tensor]) -> Split:
        train_idx, val_idx = split
        return cls(rows[train_idx], targets[train_idx], rows[val_idx], targets[val_idx])


class FeatureBatches:
    """Frozen features, computed once: an epoch is a shuffled pass over vectors."""

    def __init__(self, data: Split, batch_size: int, seed: int):
        self.train, self.train_y, self.val, self.val_y = data.train, data.train_y, data.val, data.val_y
        self.batch_size, self.seed = batch_size, seed

    def __len__(self) -> int:
        return -(-len(self.train) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = epoch_generator(self.seed, epoch)
        order = torch.randperm(len(self.train), generator=generator)
        for start in range(0, len(order), self.batch_size):
            pick = order[start : start + self.batch_size]
            yield self.inputs(pick, generator), self.train_y[pick]

    def inputs(self, pick: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.train[pick]

    @torch.no_grad()
    def validation_logits(self, model: nn.Module) -> torch.Tensor:
        return model(self.val)


class PixelBatches(FeatureBatches):
    """uint8 images at the training size: each epoch crops, rescales and mirrors them at
    random (mild: a crop keeps at least 70% of the image, so the object stays in it),
    then normalises as the served model's preprocessing does. Validation images are not
    augmented."""

    def __init__(self, data: Split, batch_size: int, seed: int, spec: Preprocess, device: torch.device):
        super().__init__(data, batch_size, seed)
        self.device = device
        self.interpolation = InterpolationMode(spec.interpolation)
        self.mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std).view(1, 3, 1, 1)

    def inputs(self, pick: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.normalise(torch.stack([self._augment(self.train[i], generator) for i in pick.tolist()]))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.float().div_(255).sub_(self.mean).div_(self.std)
        return batch.to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def validation_logits(self, model: nn.Module) -> torch.Tensor:
        chunks = [
            model(self.normalise(self.val[i : i + EVAL_CHUNK])) for i in range(0, len(self.val), EVAL_CHUNK)
        ]
        return torch.cat(chunks).float().cpu()

    def _augment(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        size = image.shape[-1]
        scale, aspect, mirror, dx, dy = torch.rand(5, generator=generator).tolist()
        area = (0.7 + 0.3 * scale) * size * size
        ratio = 0.85 + 0.3 * aspect  # width / height
        width = min(size, round((area * ratio) ** 0.5))
        height = min(size, round((area / ratio) ** 0.5))
        top, left = round(dy * (size - height)), round(dx * (size - width))
        image = TF.resized_crop(
            image, top, left, height, width, [size, size], interpolation=self.interpolation, antialias=True
        )
        return TF.horizontal_flip(image) if mirror < 0.5 else image
