"""Image bytes -> RGB uint8 tensors, with the checks a public service needs.

`sniff` reads only the header (format, size, EXIF orientation), so oversized images and
non-images are refused before any pixel is decoded. `decode_many` decodes a batch: JPEGs
in one `decode_jpeg` call (nvJPEG on CUDA, the same call on CPU), everything else per image
in a thread pool (torchvision's decoders release the GIL). A bad image becomes an
`ImageError` in its slot instead of failing the batch it shares with other requests.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from .image_header import DEFAULT_MAX_PIXELS, ImageError, ImageHeader, sniff

__all__ = [
    "DEFAULT_CHUNK_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "ImageHeader",
    "ImageInput",
    "decode",
    "decode_many",
    "decode_slots",
    "orient",
    "pixel_chunks",
    "sniff",
    "to_rgb_tensor",
]

ImageInput = bytes | bytearray | memoryview | str | Path | Image.Image | np.ndarray | torch.Tensor

# Decoded pixels a runtime holds at once (a chunk of a batch, at full resolution, before
# resizing): 100 MP is 300 MB of RGB. 64 phone photos of 12 MP would be 2.3 GB; the pixel
# limit per image (DEFAULT_MAX_PIXELS) alone does not bound a batch.
DEFAULT_CHUNK_PIXELS = 100_000_000


def decode(
    data: bytes, device: torch.device | str = "cpu", max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """One image's bytes -> RGB uint8 tensor (3, H, W) on `device`, EXIF orientation applied."""
    result = decode_many([data], device=device, max_pixels=max_pixels)[0]
    if isinstance(result, ImageError):
        raise result
    return result


def decode_many(
    datas: Sequence[bytes],
    device: torch.device | str = "cpu",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batched_jpeg: bool | None = None,
) -> list[torch.Tensor | ImageError]:
    """Decode a batch; each slot holds a (3, H, W) uint8 tensor on `device` or an ImageError.

    `batched_jpeg` (default: on CUDA) decodes all JPEGs in one `decode_jpeg(list)` call,
    which is what makes nvJPEG fast; the CPU suite forces it on to cover that path. Every
    path decodes without orientation and `orient` applies the EXIF orientation afterwards
    (torchvision's CUDA decoder and its WebP decoder ignore it), so GPU and CPU agree.
    """
    device = torch.device(device)
    if batched_jpeg is None:
        batched_jpeg = device.type == "cuda"
    results: list[torch.Tensor | ImageError | None] = [None] * len(datas)
    headers: dict[int, ImageHeader] = {}
    for i, data in enumerate(datas):
        try:
            headers[i] = sniff(data, max_pixels)
        except ImageError as exc:
            results[i] = exc
    if batched_jpeg:
        jpegs = [i for i, h in headers.items() if h.format == "JPEG"]
        for i, tensor in zip(jpegs, _decode_jpegs_on(device, [datas[i] for i in jpegs]), strict=True):
            results[i] = tensor  # None where the device decoder refused it: the CPU path tries
    pending = [i for i in headers if results[i] is None]
    decoded_rest = _thread_pool().map(lambda j: _decode_one(datas[j], headers[j]), pending)
    for i, result in zip(pending, decoded_rest, strict=True):
        results[i] = result if isinstance(result, ImageError) else result.to(device, non_blocking=True)
    for i, header in headers.items():
        if isinstance(results[i], torch.Tensor):
            results[i] = orient(results[i], header.orientation)  # type: ignore[arg-type]
    return results  # type: ignore[return-value]


def decode_slots(
    images: Sequence[bytes | torch.Tensor],
    device: torch.device | str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batched_jpeg: bool | None = None,
) -> list[torch.Tensor | ImageError]:
    """A runtime's batch input, encoded bytes and decoded tensors mixed: the bytes are
    decoded (all in one `decode_many` call), the tensors pass through, each in its slot."""
    encoded = [i for i, image in enumerate(images) if not isinstance(image, torch.Tensor)]
    slots: list[torch.Tensor | ImageError] = list(images)  # type: ignore[arg-type]
    if encoded:
        decoded = decode_many([images[i] for i in encoded], device, max_pixels, batched_jpeg)  # type: ignore[misc]
        for i, result in zip(encoded, decoded, strict=True):
            slots[i] = result
    return slots


def pixel_chunks(
    images: Sequence[bytes | torch.Tensor], max_items: int, max_pixels: int = DEFAULT_CHUNK_PIXELS
) -> list[slice]:
    """Consecutive slices of `images` to decode and run one after the other: each holds
    at most `max_items` images and `max_pixels` pixels once decoded, as their headers say
    (read without decoding). An image over `max_pixels` on its own goes alone; one whose
    header cannot be read counts nothing (decoding will refuse it)."""
    chunks: list[slice] = []
    start, pixels = 0, 0
    for index, image in enumerate(images):
        size = _pixels(image)
        if index > start and (index - start >= max_items or pixels + size > max_pixels):
            chunks.append(slice(start, index))
            start, pixels = index, 0
        pixels += size
    if start < len(images):
        chunks.append(slice(start, len(images)))
    return chunks


def _pixels(image: bytes | torch.Tensor) -> int:
    if isinstance(image, torch.Tensor):
        return int(image.shape[-1] * image.shape[-2])
    try:
        header = sniff(image, max_pixels=2**62)  # the size only: limits are checked when decoding
    except ImageError:
        return 0
    return header.width * header.height


def _decode_jpegs_on(device: torch.device, datas: list[bytes]) -> list[torch.Tensor | None]:
    """All JPEGs in one decoder call; when that fails (nvJPEG gives no partial results),
    each one alone on the same device, so one bad file does not move the batch to the CPU."""
    if not datas:
        return []
    encoded = [_as_uint8_tensor(data) for data in datas]
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except torch.OutOfMemoryError:
        raise  # not the input's fault: retrying image by image would only fail again
    except RuntimeError:
        pass
    singles: list[torch.Tensor | None] = []
    for data in encoded:
        try:
            singles.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except torch.OutOfMemoryError:
            raise
        except RuntimeError:
            singles.append(None)
    return singles


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1..8) to a (C, H, W) tensor, as PIL's exif_transpose."""
    if orientation in (5, 6, 7, 8):
        image = image.transpose(-1, -2)
    if orientation in (2, 3, 6, 7):
        image = image.flip(-1)
    if orientation in (3, 4, 7, 8):
        image = image.flip(-2)
    return image


def to_rgb_tensor(item: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor | bytes:
    """Normalise a notebook-style input. Encoded inputs (bytes, paths) come back as bytes
    for `decode_many`; pixel inputs come back as a (3, H, W) uint8 tensor."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (str, Path)):
        return Path(item).read_bytes()
    if isinstance(item, Image.Image):
        item = np.asarray(ImageOps.exif_transpose(item).convert("RGB"))
    if isinstance(item, np.ndarray):
        if item.ndim == 2:
            item = np.stack([item] * 3, axis=-1)
        if item.ndim != 3 or item.shape[-1] not in (3, 4):
            raise ImageError("unsupported", f"expected an HxWx3 array, got shape {item.shape}")
        item = torch.from_numpy(np.array(item[..., :3], copy=True)).permute(2, 0, 1)
    if isinstance(item, torch.Tensor):
        if item.ndim != 3 or item.shape[0] != 3:
            raise ImageError("unsupported", f"expected a 3xHxW tensor, got shape {tuple(item.shape)}")
        if item.dtype != torch.uint8:
            raise ImageError("unsupported", f"expected a uint8 tensor, got {item.dtype}")
        if item.shape[1] * item.shape[2] > max_pixels:
            raise ImageError("too_large", f"image has more than {max_pixels} pixels")
        return item
    raise ImageError("unsupported", f"cannot read an image from {type(item).__name__}")


def _decode_one(data: bytes, header: ImageHeader) -> torch.Tensor | ImageError:
    """Decode on the CPU, without orientation. Animated images go through PIL, which
    decodes only the first frame (torchvision would decode every frame: a frame-count
    bomb gets past a pixel limit that counts one frame)."""
    if header.animated:
        try:
            return _decode_with_pil(data)
        except Exception as error:
            return ImageError("corrupt", f"the {header.format} data could not be decoded: {error}")
    try:
        tensor = decode_image(_as_uint8_tensor(data), mode=ImageReadMode.RGB, apply_exif_orientation=False)
    except RuntimeError as first_error:
        # torchvision refuses some valid-but-unusual files that PIL reads; try PIL before
        # calling the image corrupt, and report torchvision's reason if both fail.
        try:
            return _decode_with_pil(data)
        except Exception:
            return ImageError(
                "corrupt", f"the {header.format} data could not be decoded: {_reason(first_error)}"
            )
    if tensor.dtype == torch.uint16:  # 16-bit PNG
        # uint16 has few CPU kernels (no shift); widen, keep the high byte
        tensor = (tensor.to(torch.int32) >> 8).to(torch.uint8)
    return tensor


def _reason(error: Exception) -> str:
    """torchvision prefixes its messages with a C++ source location; users need the rest."""
    return re.sub(r"^.*\.cpp:\d+,\s*", "", str(error))


def _decode_with_pil(data: bytes) -> torch.Tensor:
    """First frame, RGB, stored orientation (the caller orients)."""
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        rgb = img.convert("RGB")
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


def _as_uint8_tensor(data: bytes) -> torch.Tensor:
    # frombuffer needs a writable buffer to avoid a warning; bytearray copies once.
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


@functools.cache
def _thread_pool() -> ThreadPoolExecutor:
    # The CPUs this process may use (affinity, containers), not the host's count.
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pais-decode")
