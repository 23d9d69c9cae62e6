"""Image header checks that need no decoding (and no torch): what the HTTP layer uses to
refuse non-images and decompression bombs before any pixel is decoded."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .errors import ItemError

# PIL format name -> media type, for the formats the services accept.
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
ACCEPTED_TEXT = "JPEG, PNG, WebP or GIF (first frame)"
# Files PIL names by what follows the first JPEG image: phones write MPO (CIPA DC-007
# multi-picture: the photo, then a preview or a depth map), a plain JPEG up to its first
# end-of-image marker, which is all a JPEG decoder reads.
JPEG_VARIANTS = frozenset({"MPO"})
DEFAULT_MAX_PIXELS = 50_000_000
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class ImageError(ItemError):
    """An input that is not a usable image. `kind` is one of: empty, unsupported,
    too_large, corrupt."""


@dataclass(frozen=True)
class ImageHeader:
    format: str  # PIL format name, e.g. "JPEG"
    width: int  # as displayed: after EXIF orientation
    height: int
    orientation: int = 1  # EXIF orientation (1..8) the decoder must apply
    animated: bool = False  # several frames (GIF, WebP): only the first one is the image

    @property
    def media_type(self) -> str:
        return ACCEPTED_FORMATS[self.format]


def sniff(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Check the header only: accepted format and pixel count within `max_pixels`.

    Nothing here decodes pixels: the size is checked first, and the orientation is read
    from the EXIF block PIL parsed while opening (PIL's getexif() would decode a PNG).
    PIL itself refuses images over ~179 MP at open, whatever `max_pixels` says.
    """
    if not data:
        raise ImageError("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the check; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format, img.size
                if fmt in JPEG_VARIANTS:
                    fmt = "JPEG"
                if fmt not in ACCEPTED_FORMATS:
                    raise ImageError(
                        "unsupported", f"{fmt} images are not accepted; accepted: {ACCEPTED_TEXT}"
                    )
                if width * height > max_pixels:
                    size = f"{width}x{height} ({width * height} pixels)"
                    raise ImageError("too_large", f"image is {size}; the limit is {max_pixels} pixels")
                orientation = _orientation(img.info.get("exif"))
                # WebP knows from its header; a GIF is always decoded as its first frame
                animated = fmt == "GIF" or bool(fmt == "WEBP" and getattr(img, "is_animated", False))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        # PIL refuses past ~179 MP before giving the size; its message carries the count.
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{pixels.group(1)} pixels" if pixels else "too many pixels"
        raise ImageError("too_large", f"image has {count}; the limit is {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise ImageError("unsupported", f"not a recognised image; accepted: {ACCEPTED_TEXT}") from None
    except Exception as exc:  # a header that PIL starts to parse and then chokes on
        raise ImageError("corrupt", f"unreadable image header: {exc}") from None
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(fmt, width, height, orientation, animated)


def _orientation(raw_exif: bytes | None) -> int:
    if not raw_exif:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw_exif)
    except Exception:  # a broken EXIF block is not a broken image
        return 1
    value = exif.get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
