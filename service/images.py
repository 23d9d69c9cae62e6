"""Uploaded images checked at the HTTP edge, on their headers alone: empties, formats,
pixels per image and pixels per request are refused before any model worker decodes a
pixel. Shared by the image tasks."""

from __future__ import annotations

import asyncio

from models.image_header import ACCEPTED_FORMATS, ImageError, sniff

from .context import Context
from .errors import RequestError, item_errors

IMAGE_TYPES = tuple(ACCEPTED_FORMATS.values())
# Header parsing is small but blocking: past this many images it runs off the event loop.
OFF_LOOP_IMAGES = 4


async def checked_images(images: list[bytes], field: str, ctx: Context) -> list[bytes]:
    """`images` when every header is acceptable and all pixels together are within
    PAIS_MAX_REQUEST_PIXELS; else one RequestError naming every bad image."""
    settings = ctx.settings
    if len(images) > OFF_LOOP_IMAGES:
        headers = await asyncio.to_thread(_sniff_all, images, settings.max_image_pixels)
    else:
        headers = _sniff_all(images, settings.max_image_pixels)
    item_errors(headers, field)
    pixels = sum(h.width * h.height for h in headers)  # type: ignore[union-attr]
    if pixels > settings.max_request_pixels:
        raise RequestError(
            413,
            f"{field}: {len(images)} images of {pixels} pixels in all; at most {settings.max_request_pixels} "
            "per request (PAIS_MAX_REQUEST_PIXELS): send fewer or smaller images per request",
            [{"field": field, "kind": "too_large", "message": f"{pixels} pixels"}],
        )
    return images


def _sniff_all(images: list[bytes], max_pixels: int) -> list[object]:
    out: list[object] = []
    for data in images:
        try:
            out.append(sniff(data, max_pixels))
        except ImageError as error:
            out.append(error)
    return out
