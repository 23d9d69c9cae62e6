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
