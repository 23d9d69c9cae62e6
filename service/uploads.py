"""Reading uploaded images at the HTTP edge: counts, empties, formats and pixel limits are
checked on the header alone, so bad input is refused before a model worker sees it."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import anyio.to_thread

from models.image_header import ImageError, sniff
from models.video.errors import VideoError
from models.video.header import sniff_container

from .errors import IMAGE_ERROR_STATUS, RequestError, image_request_error
from .settings import Settings


async def read_images(paths: list[Path], field: str, settings: Settings) -> list[bytes]:
    """The bytes of each uploaded image, in order; RequestError naming every bad one."""
    if not paths:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"no {field} sent; send one or more image files as multipart field {field!r}",
        )
    if len(paths) > settings.max_images_per_request:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(paths)} {field} sent; at most {settings.max_images_per_request} per request "
            "(PAIS_MAX_IMAGES_PER_REQUEST); split the batch",
        )
    # File reads and header parsing are small but blocking: keep them off the event loop.
    return await anyio.to_thread.run_sync(_read_and_check, paths, field, settings.max_image_pixels)


def _read_and_check(paths: list[Path], field: str, max_pixels: int) -> list[bytes]:
    datas = [path.read_bytes() for path in paths]
    failures: list[tuple[int, ImageError]] = []
    for index, data in enumerate(datas):
        try:
            sniff(data, max_pixels)
        except ImageError as error:
            failures.append((index, error))
    if failures:
        raise image_request_error(field, failures)
    return datas


async def read_video(path: Path, field: str, settings: Settings) -> bytes:
    """The bytes of an uploaded video: size from the file system before reading, container
    from the first bytes; RequestError saying what is accepted otherwise."""
    size = path.stat().st_size
    if size > settings.max_video_bytes:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{field}: the video is {size} bytes; the limit is {settings.max_video_bytes} bytes "
            "(PAIS_MAX_VIDEO_BYTES)",
        )
    data = await anyio.to_thread.run_sync(path.read_bytes)
    try:
        sniff_container(data)
    except VideoError as error:
        raise video_request_error(field, error) from None
    return data


def video_request_error(field: str, error: VideoError) -> RequestError:
    return RequestError(
        IMAGE_ERROR_STATUS.get(error.kind, HTTPStatus.BAD_REQUEST),
        f"{field}: {error.message}",
        {"field": field, "kind": error.kind, "message": error.message},
    )
