"""Strict multipart parsing for the image endpoints.

BentoML's multipart parser treats a *text* value in a file field as a URL and downloads
it (the server would fetch any public URL, with no size limit), and it answers 500 when a
non-file field arrives as a file upload, an unexpected field holds binary data, the body
is not valid multipart, or a filename is too long for a temp file. PAIS refuses the bad
ones with a 400 that says what to send instead, and renames uploads to safe names.
"""

import re
from pathlib import PurePosixPath
from typing import Any

from bentoml.exceptions import InvalidArgument
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

_installed = False


def install_strict_multipart() -> None:
    """Replace BentoML's form serde (multipart and urlencoded) with the strict one."""
    global _installed
    if _installed:
        return
    from _bentoml_impl import serde

    class StrictMultipartSerde(serde.MultipartSerde):
        @staticmethod
        async def ensure_file(obj: Any) -> UploadFile:
            if isinstance(obj, UploadFile):
                return obj
            raise InvalidArgument(
                "file fields must be uploaded as files (multipart parts with a filename, e.g. "
                "curl -F images=@photo.jpg); text values and URLs are not accepted"
            )

        async def parse_request(self, request: Request, cls: Any) -> Any:
            try:
                form = await request.form()  # Starlette caches it for the parent's second call
            except (MultiPartException, HTTPException) as error:
                # Starlette raises HTTPException(400) instead when it runs inside an app
                message = getattr(error, "message", None) or getattr(error, "detail", "")
                raise InvalidArgument(f"malformed multipart body: {message}") from None
            unknown = ", ".join(sorted({key for key in form if key not in cls.model_fields}))
            if unknown:
                expected = ", ".join(cls.model_fields)
                raise InvalidArgument(f"unexpected form field(s): {unknown}; this endpoint takes: {expected}")
            for key, value in form.multi_items():
                if key not in cls.multipart_fields and isinstance(value, UploadFile):
                    raise InvalidArgument(f"field {key!r} must be a plain form value, not a file")
                # a repeated value field would silently keep only its last value
                if key not in cls.multipart_fields and len(form.getlist(key)) > 1:
                    raise InvalidArgument(
                        f"field {key!r} was sent {len(form.getlist(key))} times; send it once "
                        "(list options take comma-separated values, e.g. classes=person,cup)"
                    )
                if isinstance(value, UploadFile):
                    # BentoML names its temp file after the client's filename: a long or odd
                    # name would fail there (500). Keep only a short, safe extension.
                    value.filename = _safe_filename(value.filename)
            return await super().parse_request(request, cls)

    for media_type, serde_class in list(serde.ALL_SERDE.items()):  # forms, multipart and urlencoded
        if serde_class is serde.MultipartSerde:
            serde.ALL_SERDE[media_type] = StrictMultipartSerde  # type: ignore[index]
    _installed = True


def _safe_filename(filename: str | None) -> str:
    suffix = PurePosixPath(filename or "").suffix.lower()
    return "upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else "")
