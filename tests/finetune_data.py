"""Small labelled image folders for the fine-tuning tests: real Fashion-MNIST images,
and the kinds of bad files users have (not images, truncated, empty)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image

from .fashion_mnist import write_subset


def png_bytes(shade: int = 128, size: int = 28) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), shade).save(buffer, "PNG")
    return buffer.getvalue()


def add_bad_files(directory: Path, label: str) -> list[str]:
    """A text file named .jpg, a truncated PNG and an empty file in `label`'s folder;
    returns their names relative to `directory`."""
    folder = directory / label
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.jpg").write_text("not an image\n")
    (folder / "cut.png").write_bytes(png_bytes()[:40])
    (folder / "empty.png").write_bytes(b"")
    return [f"{label}/{name}" for name in ("cut.png", "empty.png", "notes.jpg")]


def fashion_folder(directory: Path, per_class: int, classes: int = 10, seed: int = 0) -> Path:
    """A user's folder of Fashion-MNIST training-split images (cached per argument set
    under `directory`'s parent, so several tests share one copy)."""
    if not directory.exists():
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        write_subset(staging, per_class, classes, seed)
        staging.rename(directory)
    return directory
