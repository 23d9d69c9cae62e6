"""Real test photos (scikit-image's samples) encoded the ways clients send them."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import skimage.data
from PIL import Image

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}  # ImageNet classes for chelsea()
COFFEE_LABELS = {"espresso", "cup"}
PHOTO_LABELS = {"astronaut": "person", "chelsea": "cat", "coffee": "cup"}  # COCO label each photo shows


def photo(name: str) -> np.ndarray:
    """An HxWx3 uint8 scikit-image sample: chelsea (cat), coffee, astronaut, rocket..."""
    return getattr(skimage.data, name)()


def encode(array: np.ndarray | Image.Image, fmt: str = "JPEG", **options) -> bytes:
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def with_exif_orientation(array: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose stored pixels are rotated and whose EXIF tag says how to undo it:
    only a decoder that honours EXIF sees the upright photo."""
    # PIL's ROTATE_90 turns counter-clockwise; each tag says how to turn the stored pixels back.
    stored_turn = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    image = Image.fromarray(array).transpose(stored_turn[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif(first: np.ndarray, second: np.ndarray) -> bytes:
    frames = [Image.fromarray(first), Image.fromarray(second)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: ~100 KB on the wire, a billion
    pixels once decoded. Built row by row so the test never holds the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def composite(
    names: list[str], tile: int = 300, gap: int = 40, background: int = 255
) -> tuple[np.ndarray, list]:
    """Photos scaled to fit `tile` x `tile` and laid out left to right with white gaps;
    returns the image and each photo's box (x1, y1, x2, y2) on it."""
    tiles = []
    for name in names:
        image = Image.fromarray(photo(name)).convert("RGB")
        image.thumbnail((tile, tile))
        tiles.append(image)
    width = gap + sum(t.width + gap for t in tiles)
    canvas = Image.new("RGB", (width, tile + 2 * gap), (background,) * 3)
    boxes, x = [], gap
    for t in tiles:
        canvas.paste(t, (x, gap))
        boxes.append((x, gap, x + t.width, gap + t.height))
        x += t.width + gap
    return np.asarray(canvas), boxes


def inside(box, tile, margin: float = 0.1) -> bool:
    """`box` belongs to `tile`: its centre lies in the tile, and the box in the tile grown
    by `margin` of the tile's longer side (YOLOv3-tiny's boxes hug objects loosely)."""
    x1, y1, x2, y2 = tile
    grow = margin * max(x2 - x1, y2 - y1)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    within = x1 - grow <= box[0] and y1 - grow <= box[1] and box[2] <= x2 + grow and box[3] <= y2 + grow
    return within and x1 <= cx <= x2 and y1 <= cy <= y2


def overlaps(box, tile) -> bool:
    return box[0] < tile[2] and tile[0] < box[2] and box[1] < tile[3] and tile[1] < box[3]


def assert_photos_in_their_tiles(found: list[tuple[str, tuple]], order: list[str], tiles: list) -> None:
    """Detections (label, box) of a `composite` image: each photo's label is found, every
    box of that label lies in that photo's tile, and none reaches into another tile."""
    assert {PHOTO_LABELS[name] for name in order} <= {label for label, _ in found}, found
    for name, tile in zip(order, tiles, strict=True):
        boxes = [box for label, box in found if label == PHOTO_LABELS[name]]
        assert all(inside(box, tile) for box in boxes), (name, tile, boxes)
        assert not any(overlaps(box, other) for box in boxes for other in tiles if other != tile), (
            name,
            boxes,
        )
