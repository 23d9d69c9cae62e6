"""What every image runtime shares: loading from a source URI onto a placement, its name,
saving a snapshot, and decoding its inputs a chunk at a time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import torch

from .device import Placement, choose_placement
from .imaging import DEFAULT_CHUNK_PIXELS, DEFAULT_MAX_PIXELS, ImageError, decode_slots, pixel_chunks
from .info import ModelInfo
from .sources import parse_source


class ImageRuntime:
    """Subclasses set `loaders` (their task's module with TASK, `load(source)` and
    `save(loaded, directory)`) and finish `__init__` by setting `self.info`."""

    loaders: ModuleType
    default_source: str  # the source "default" names: weights that ship in a package
    info: ModelInfo

    def __init__(
        self,
        loaded: Any,
        placement: Placement,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        forward_chunk: int = 64,
        chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    ):
        self._loaded = loaded
        self.placement = placement
        self.max_pixels = max_pixels
        # Inputs are decoded, resized and run at most this many (and this many pixels) at
        # a time, so a batch of large photos never holds more than one chunk of
        # full-resolution pixels.
        self.forward_chunk = forward_chunk
        self.chunk_pixels = chunk_pixels

    @classmethod
    def load(
        cls,
        source: str = "default",
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        channels_last: bool | None = None,
        accelerated: bool | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        forward_chunk: int = 64,
    ) -> Self:
        """Load from a source URI ("default" is the catalog's offline default)."""
        uri = cls.default_source if source == "default" else source
        placement = choose_placement(device, dtype, channels_last, accelerated)
        return cls(
            cls.loaders.load(parse_source(uri)), placement, max_pixels=max_pixels, forward_chunk=forward_chunk
        )

    @property
    def task(self) -> str:
        return self.loaders.TASK

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def cards(self) -> list[ModelInfo]:
        """The model cards of what this runtime serves (one model)."""
        return [self.info]

    def save(self, directory: str | Path) -> None:
        """Write a self-contained snapshot; `load(directory)` reads it back."""
        self.loaders.save(self._loaded, Path(directory))

    def _chunks(self, images: Sequence[bytes | torch.Tensor]) -> list[slice]:
        """How a batch is cut for decoding and the forward pass (images and pixels)."""
        return pixel_chunks(images, self.forward_chunk, self.chunk_pixels)

    def _decode_chunk(self, images: Sequence[bytes | torch.Tensor]) -> list[torch.Tensor | ImageError]:
        """Encoded images decoded onto the device (JPEGs in one batched call when the
        placement is accelerated), decoded ones passed through; an ImageError in each bad
        one's slot."""
        return decode_slots(images, self.placement.device, self.max_pixels, self.placement.accelerated)
