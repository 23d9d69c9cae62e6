"""The user's image files -> one uint8 tensor of model-sized images, the bad files listed.

Images go through the serving runtime's own decoder (models.imaging: format sniffing,
pixel limit, EXIF orientation, grey and palette images as RGB) and the same resize call
as its BatchPreparer, so the pixels a model is trained and validated on are the pixels
the served model sees for the same file. Each image is decoded once and kept at the
training size: a few hundred per class at 64-224 px is a few hundred MB at most.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..imaging import DEFAULT_MAX_PIXELS, ImageError, decode_many, sniff
from .data import Example

CHUNK = 64  # files decoded at once: bounds the full-resolution pixels held


@dataclass(frozen=True)
class ImageSet:
    pixels: torch.Tensor  # (N, 3, size, size) uint8
    labels: list[str]  # per image
    names: list[str]  # per image, as the user knows the file
    paths: list[Path]
    digests: list[str]  # per image: sha256 of the file's bytes
    skipped: list[tuple[str, str]]  # (name, why) of every file that is not a usable image


@dataclass(frozen=True)
class Scan:
    """What a header-only pass over the files found: usable candidates and their sizes."""

    examples: list[Example]
    digests: list[str]
    short_sides: list[int]
    skipped: list[tuple[str, str]]


def scan(examples: list[Example], max_pixels: int = DEFAULT_MAX_PIXELS) -> Scan:
    """Read every file once: its digest, and its header (is it an image, how large)."""
    kept, digests, sides, skipped = [], [], [], []
    for example in examples:
        try:
            data = example.path.read_bytes()
            header = sniff(data, max_pixels)
        except OSError as error:
            skipped.append((example.name, f"cannot be read: {error.strerror or error}"))
            continue
        except ImageError as error:
            skipped.append((example.name, error.message))
            continue
        kept.append(example)
        digests.append(hashlib.sha256(data).hexdigest())
        sides.append(min(header.width, header.height))
    return Scan(kept, digests, sides, skipped)


def choose_image_size(short_sides: list[int], base_size: int) -> int:
    """The training and serving input size for data whose images have these shorter sides.

    Twice the median shorter side, rounded up to a multiple of 32 (the backbone's total
    stride), between 64 and the base model's own input size. Upsampling a small image
    further adds compute but no detail: on Fashion-MNIST (28 px) EfficientNet-Lite0's
    frozen features scored 0.82 validation accuracy at 48 and 64 px, 0.84 at 96 and 128,
    0.85 at 160, for 11x the compute. Photos get the base model's native size, where its
    features were learnt.
    """
    median = statistics.median(short_sides) if short_sides else base_size
    size = -(-int(2 * median) // 32) * 32
    return max(64, min(base_size, size))


def decode_resized(
    scanned: Scan,
    size: int,
    interpolation: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageSet:
    """Decode the scanned files and resize each to (size, size) exactly as the serving
    runtime's BatchPreparer does on the CPU (uint8, antialiased)."""
    mode = InterpolationMode(interpolation)
    pixels, keep, skipped = [], [], list(scanned.skipped)
    for start in range(0, len(scanned.examples), CHUNK):
        chunk = scanned.examples[start : start + CHUNK]
        decoded = decode_many([example.path.read_bytes() for example in chunk], "cpu", max_pixels)
        for offset, (example, image) in enumerate(zip(chunk, decoded, strict=True)):
            if isinstance(image, ImageError):
                skipped.append((example.name, image.message))
                continue
            pixels.append(TF.resize(image, [size, size], interpolation=mode, antialias=True))
            keep.append(start + offset)
    examples = [scanned.examples[i] for i in keep]
    return ImageSet(
        pixels=torch.stack(pixels) if pixels else torch.empty(0, 3, size, size, dtype=torch.uint8),
        labels=[e.label for e in examples],
        names=[e.name for e in examples],
        paths=[e.path for e in examples],
        digests=[scanned.digests[i] for i in keep],
        skipped=skipped,
    )
