"""Video container checks from the first bytes (no decoding, no OpenCV), so the HTTP
layer refuses what is not a video before a worker opens it."""

from __future__ import annotations

from .errors import VideoError

ACCEPTED_TEXT = "MP4/MOV (ISO BMFF), WebM/Matroska or AVI"


def sniff_container(data: bytes) -> str:
    """The container kind ("mp4", "webm", "avi") of `data`; VideoError otherwise."""
    if not data:
        raise VideoError("empty", "the video file is empty")
    head = data[:16]
    if head[4:8] == b"ftyp":  # ISO base media: MP4, MOV, 3GP
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM, Matroska
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    raise VideoError("unsupported", f"not a recognised video container; accepted: {ACCEPTED_TEXT}")
