"""Inputs for the SDK's tests of detection and video, made from real photos."""

from __future__ import annotations

from pathlib import Path

from .images import encode, photo


def side_by_side(
    names: list[str], tile: int = 300, gap: int = 40
) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """Photos scaled into `tile`-pixel tiles on a white canvas (YOLOv3-tiny, the default
    detector, misses objects that fill the whole frame), and each tile's box."""
    from PIL import Image

    tiles = []
    for name in names:
        image = Image.fromarray(photo(name))
        image.thumbnail((tile, tile))
        tiles.append(image)
    canvas = Image.new("RGB", (gap + sum(t.width + gap for t in tiles), tile + 2 * gap), "white")
    boxes, x = [], gap
    for image in tiles:
        canvas.paste(image, (x, gap))
        boxes.append((x, gap, x + image.width, gap + image.height))
        x += image.width + gap
    return encode(canvas, "JPEG", quality=92), boxes


def write_cat_video(path: Path) -> Path:
    """3 s at 10 fps on a white 640x480 frame: the cat photo (scaled to 300 px) for the
    first 2 s, then the coffee photo."""
    import cv2
    import numpy as np
    from PIL import Image

    def frame(name: str) -> np.ndarray:
        canvas = Image.new("RGB", (640, 480), "white")
        image = Image.fromarray(photo(name))
        image.thumbnail((300, 300))
        canvas.paste(image, (170, 90))
        return cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2BGR)

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    cat, coffee = frame("chelsea"), frame("coffee")
    for index in range(30):
        writer.write(cat if index < 20 else coffee)
    writer.release()
    return path
