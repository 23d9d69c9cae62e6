"""What every image runtime shares: loading from a source URI onto a placement, its name,
saving a snapshot, and how it holds the loaded model and its limits."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Self

import torch

from .catalog import default_source
from .device import Placement, choose_placement
from .imaging import DEFAULT_MAX_PIXELS
from .info import ModelInfo
from .sources import parse_source


class ImageRuntime:
    """Subclasses set `loaders` (their task's module with TASK, `load(source)` and
    `save(loaded, directory)`) and finish `__init__` by setting `self.info`."""

    loaders: ModuleType
    info: ModelInfo

    def __init__(
        self,
        loaded: Any,
        placement: Placement,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_batch_size: int = 64,
    ):
        self._loaded = loaded
        self.placement = placement
        self.max_pixels = max_pixels
        self.max_batch_size = max_batch_size  # forward passes are chunked to bound memory

    @classmethod
    def load(
        cls,
        source: str = "default",
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        channels_last: bool | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Self:
        """Load from a source URI ("default" is the catalog's offline default)."""
        uri = default_source(cls.loaders.TASK) if source == "default" else source
        placement = choose_placement(device, dtype, channels_last)
        return cls(cls.loaders.load(parse_source(uri)), placement, max_pixels=max_pixels)

    @property
    def task(self) -> str:
        return self.loaders.TASK

    @property
    def name(self) -> str:
        return self.info.name

    def save(self, directory: str | Path) -> None:
        """Write a self-contained snapshot; `load(directory)` reads it back."""
        self.loaders.save(self._loaded, Path(directory))
