"""Draw detections onto the image they came from, and encode it as PNG or JPEG.

Line width and text size follow the image size, so boxes stay visible on a 4000 px photo
and do not swamp a 300 px one; each label gets a fixed colour (the same across images),
and text sits on a filled tag so it stays readable on any background.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import ANNOTATION_MEDIA_TYPES

FORMATS = {fmt: fmt.upper() for fmt in ANNOTATION_MEDIA_TYPES}  # PIL's names: JPEG, PNG
JPEG_QUALITY = 90

# Well-separated, saturated colours that keep white text readable.
PALETTE = (
    (230, 25, 75),
    (60, 140, 60),
    (0, 92, 230),
    (245, 130, 48),
    (145, 30, 180),
    (0, 128, 128),
    (240, 50, 230),
    (128, 0, 0),
    (0, 0, 128),
    (170, 110, 40),
)


def label_colour(label: str) -> tuple[int, int, int]:
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def draw_detections(
    image: torch.Tensor,
    boxes: Sequence[Sequence[float]],
    captions: Sequence[tuple[str, float]],
    fmt: str = "jpeg",
) -> bytes:
    """uint8 (3, H, W) image + boxes (x1, y1, x2, y2) + (label, score) captions -> encoded
    `fmt` ("jpeg" or "png") bytes of the annotated image."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    canvas = Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy()))
    draw = ImageDraw.Draw(canvas)
    short_side = min(canvas.size)
    width = max(2, round(short_side / 250))
    font = ImageFont.load_default(size=max(12, round(short_side / 40)))
    for box, (label, score) in zip(boxes, captions, strict=True):
        colour = label_colour(label)
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"{label} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 2 * width, bottom - top + 2 * width
        # above the box when there is room, else inside its top edge
        tag_y = y1 - tag_h if y1 - tag_h >= 0 else y1
        tag_x = min(x1, max(0.0, canvas.width - tag_w))
        draw.rectangle((tag_x, tag_y, tag_x + tag_w, tag_y + tag_h), fill=colour)
        draw.text((tag_x + width - left, tag_y + width - top), text, fill=(255, 255, 255), font=font)
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if fmt == "jpeg" else {}
    canvas.save(buffer, FORMATS[fmt], **options)
    return buffer.getvalue()
