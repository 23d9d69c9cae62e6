"""Videos made from real photos for the tests: objects enter and leave on a script, so a
test knows when each one is on screen."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .images import photo

CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".webm": "VP80"}


@dataclass(frozen=True)
class Appearance:
    photo: str  # scikit-image sample name
    start_s: float  # on screen from this time...
    end_s: float  # ...until before this one
    box: tuple[int, int, int, int]  # x, y, width, height on the canvas (the photo is fitted inside)


def tile(name: str, width: int, height: int) -> np.ndarray:
    """A scikit-image photo scaled to fit width x height (aspect kept), as RGB."""
    image = Image.fromarray(photo(name)).convert("RGB")
    image.thumbnail((width, height))
    return np.asarray(image)


def scripted_video(
    path: Path,
    script: list[Appearance],
    duration_s: float,
    fps: float = 10,
    size: tuple[int, int] = (640, 480),
    background: int = 255,
) -> Path:
    """Write a video (container from the suffix: .mp4, .avi, .webm) where each photo shows
    in its box while its time window is open."""
    width, height = size
    tiles = {(a.photo, a.box): tile(a.photo, a.box[2], a.box[3]) for a in script}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix]), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path.suffix} here")
    try:
        for index in range(round(duration_s * fps)):
            time_s = index / fps
            canvas = np.full((height, width, 3), background, np.uint8)
            for a in script:
                if a.start_s <= time_s < a.end_s:
                    pixels = tiles[(a.photo, a.box)]
                    x, y = a.box[:2]
                    canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def plain_video(path: Path, frames: int, fps: float = 10, size: tuple[int, int] = (64, 48)) -> bytes:
    """A video of `frames` flat grey frames (container from the suffix), as bytes."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix]), fps, size)
    try:
        for index in range(frames):
            writer.write(np.full((size[1], size[0], 3), index % 256, np.uint8))
    finally:
        writer.release()
    return path.read_bytes()


def forged_avi(data: bytes, *, fps: int | None = None, frames: int | None = None) -> bytes:
    """An AVI whose headers lie: `fps` in the stream's rate (and the main header's frame
    period), `frames` in both frame counts. The frames themselves are untouched."""
    forged = bytearray(data)
    main, stream = forged.find(b"avih") + 8, forged.find(b"strh") + 8
    if fps is not None:
        struct.pack_into("<I", forged, main, max(1, 1_000_000 // fps))  # dwMicroSecPerFrame
        struct.pack_into("<II", forged, stream + 20, 1, fps)  # dwScale, dwRate
    if frames is not None:
        struct.pack_into("<I", forged, main + 16, frames)  # dwTotalFrames
        struct.pack_into("<I", forged, stream + 32, frames)  # dwLength
    return bytes(forged)
