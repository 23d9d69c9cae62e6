"""Image header checks that need no decoding (and no torch): what the HTTP layer uses to
refuse non-images and decompression bombs before any pixel is decoded."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# PIL format name -> media type, for the formats the services accept.
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
ACCEPTED_TEXT = "JPEG, PNG, WebP or GIF (first frame)"
DEFAULT_MAX_PIXELS = 50_000_000
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class ImageError(ValueError):
    """An input that is not a usable image. `kind` is one of: empty, unsupported,
    too_large, corrupt."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ImageHeader:
    format: str  # PIL format name, e.g. "JPEG"
    width: int  # after EXIF orientation
    height: int

    @property
    def media_type(self) -> str:
        return ACCEPTED_FORMATS[self.format]


def sniff(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Check the header only: accepted format and pixel count within `max_pixels`."""
    if not data:
        raise ImageError("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the check; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format, img.size
                orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "PNG", "WEBP") else 1
    except Image.DecompressionBombError as exc:
        # PIL refuses past ~179 MP before giving the size; its message carries the count.
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{pixels.group(1)} pixels" if pixels else "too many pixels"
        raise ImageError("too_large", f"image has {count}; the limit is {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise ImageError("unsupported", f"not a recognised image; accepted: {ACCEPTED_TEXT}") from None
    except Exception as exc:  # a header that PIL starts to parse and then chokes on
        raise ImageError("corrupt", f"unreadable image header: {exc}") from None
    if fmt not in ACCEPTED_FORMATS:
        raise ImageError("unsupported", f"{fmt} images are not accepted; accepted: {ACCEPTED_TEXT}")
    if width * height > max_pixels:
        raise ImageError(
            "too_large",
            f"image is {width}x{height} ({width * height} pixels); the limit is {max_pixels} pixels",
        )
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(fmt, width, height)
