"""Files a request uploads: a path (streamed from disk), bytes, or an open binary file.

A path is opened afresh for every attempt, so a retried request sends the whole file again
and no handle outlives its request.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

FileInput = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

# Magic numbers of what PAIS takes, for bytes without a name (the server sniffs the content
# itself; this only makes the part's Content-Type truthful).
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"\x1aE\xdf\xa3", "video/webm"),
)


def sniff_media_type(head: bytes) -> str:
    for magic, media in _SIGNATURES:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


@dataclass(frozen=True)
class Upload:
    """One file to upload, described without holding it open."""

    source: Path | bytes | IO[bytes]
    name: str

    @classmethod
    def of(cls, value: FileInput, index: int = 0) -> Upload:
        if isinstance(value, str | os.PathLike):
            path = Path(value)
            return cls(path, path.name)
        if isinstance(value, bytes | bytearray | memoryview):
            return cls(bytes(value), f"file-{index}")
        if hasattr(value, "read"):
            name = Path(str(getattr(value, "name", "") or f"file-{index}")).name
            # a pipe cannot be rewound for a retry: read it now
            return cls(value if _seekable(value) else value.read(), name)
        raise TypeError(f"expected a path, bytes or a binary file, got {type(value).__name__}")

    @contextlib.contextmanager
    def opened(self) -> Iterator[tuple[str, IO[bytes] | bytes, str]]:
        """(filename, content, media type) for httpx's `files=`, valid inside the block."""
        if isinstance(self.source, bytes):
            yield self.name, self.source, sniff_media_type(self.source[:16])
            return
        if isinstance(self.source, Path):
            with open(self.source, "rb") as opened:
                yield self.name, opened, self._media_type(opened)
            return
        self.source.seek(0)  # a caller's open file: rewound for each attempt
        yield self.name, self.source, self._media_type(self.source)

    def _media_type(self, handle: IO[bytes]) -> str:
        media = mimetypes.guess_type(self.name)[0]
        if media is None:
            media = sniff_media_type(handle.read(16))
            handle.seek(0)
        return media


def _seekable(handle: IO[bytes]) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, ValueError):
        return False


def uploads(value: FileInput | Sequence[FileInput]) -> list[Upload]:
    """One Upload per file: a single file or a sequence of them."""
    if isinstance(value, str | os.PathLike | bytes | bytearray | memoryview | io.IOBase) or hasattr(
        value, "read"
    ):
        return [Upload.of(value)]  # type: ignore[arg-type]
    return [Upload.of(item, index) for index, item in enumerate(value)]
