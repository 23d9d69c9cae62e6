"""Sample frames of a video at a fixed rate with OpenCV (FFmpeg inside the wheel).

Frames are read in order with `grab()` (decode only) and converted (`retrieve()`) only
when sampled: seeking is unreliable across codecs and keyframe spacing, sequential reading
is not. A frame's time is its index over the stream's frame rate. Limits are checked from
the container's metadata before decoding, and again while decoding, since metadata can
be missing or wrong: a header that claims 10,000 frames a second makes each decoded frame
count for 0.1 ms of the duration limit, so frames decoded (not only sampled) and the time
spent decoding are bounded too.

FFmpeg parses and decodes untrusted bytes: the service runs this in a sandbox child
(`decoder.py`), never in its own process.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import VideoError

JPEG_QUALITY = 90
# Frame rates above this are not a camera's: a forged header, refused before decoding.
MAX_FPS = 1000.0
# Frames decoded per second of allowed duration when no bound is given: 120 covers
# 60 frames/s video with room to spare.
DECODED_FRAMES_PER_SECOND = 120


@dataclass(frozen=True)
class Limits:
    max_duration_s: float
    max_frames: int  # frames sampled
    max_pixels: int  # per frame
    max_decoded_frames: int | None = None  # default: max_duration_s x DECODED_FRAMES_PER_SECOND
    timeout_s: float | None = None  # time spent decoding the whole video (not holding its frames)
    max_fps: float = MAX_FPS

    @property
    def decoded_frames(self) -> int:
        if self.max_decoded_frames is not None:
            return self.max_decoded_frames
        return math.ceil(self.max_duration_s * DECODED_FRAMES_PER_SECOND)


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    duration_s: float | None  # from the container; None when it does not say


@dataclass(frozen=True)
class SampledFrame:
    time_s: float
    index: int
    bgr: np.ndarray  # (H, W, 3) uint8, OpenCV's channel order


class VideoFile:
    """A video's bytes opened with OpenCV (which reads from a path: the bytes go to a
    temporary file, removed on close), or a video file already on disk (`path`, left as
    it is)."""

    def __init__(self, data: bytes | None = None, *, path: str | None = None):
        self._owned = path is None
        if path is None:
            handle, path = tempfile.mkstemp(prefix="pais-video-")
            with os.fdopen(handle, "wb") as file:
                file.write(data or b"")
        self._path = path
        self.frames_read: int | None = None  # known once `sample` has read to the end
        self._capture = cv2.VideoCapture(self._path, cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            self.close()
            raise VideoError(
                "corrupt", "the video could not be opened: its container or codec data is damaged"
            )
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        if not fps or not math.isfinite(fps) or fps <= 0:
            self.close()
            raise VideoError("corrupt", "the video has no frame rate: its stream data is damaged")
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and count > 0 and math.isfinite(count) else None
        self.info = VideoInfo(
            fps=fps,
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            duration_s=count / fps if count and count > 0 else None,
        )

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_capture", None) is not None:
            self._capture.release()
            self._capture = None
        if self._owned and os.path.exists(self._path):
            os.unlink(self._path)

    def check(self, sample_fps: float, limits: Limits) -> None:
        """Refuse from the metadata what would cross a limit."""
        info = self.info
        if info.fps > limits.max_fps:
            raise VideoError(
                "too_large",
                f"the video says it has {info.fps:g} frames per second; at most {limits.max_fps:g} "
                "are decoded (a header that claims more is not a camera's)",
            )
        if self.frame_count is not None and self.frame_count > limits.decoded_frames:
            raise VideoError("too_large", _decoded_message(self.frame_count, limits.decoded_frames))
        if info.width * info.height > limits.max_pixels:
            raise VideoError(
                "too_large",
                f"video frames are {info.width}x{info.height}; the limit is {limits.max_pixels} pixels",
            )
        if info.duration_s is not None:
            if info.duration_s > limits.max_duration_s:
                raise VideoError(
                    "too_large",
                    f"video is {info.duration_s:.1f} s long; the limit is {limits.max_duration_s:g} s",
                )
            frames = math.floor(info.duration_s * sample_fps) + 1
            if frames > limits.max_frames:
                raise VideoError("too_large", _frames_message(frames, limits.max_frames, sample_fps))

    def sample(self, sample_fps: float, limits: Limits) -> Iterator[SampledFrame]:
        """Frames at times 0, 1/sample_fps, 2/sample_fps, ...: each the first frame at or
        after its time (never the same frame twice when sample_fps exceeds the frame rate)."""
        self.check(sample_fps, limits)
        fps = self.info.fps
        # Time spent decoding, not the time the caller holds each frame (inference).
        spent, resumed = 0.0, time.monotonic()
        index, sampled, slot = 0, 0, 0  # slot k is due at time k / sample_fps
        while self._capture.grab():
            if index >= limits.decoded_frames:
                raise VideoError("too_large", _decoded_message(index + 1, limits.decoded_frames))
            if limits.timeout_s is not None and spent + time.monotonic() - resumed > limits.timeout_s:
                raise VideoError(
                    "timeout", f"decoding took longer than {limits.timeout_s:g} s; send a shorter video"
                )
            time_s = index / fps
            if time_s > limits.max_duration_s:
                raise VideoError(
                    "too_large", f"video is longer than the limit of {limits.max_duration_s:g} s"
                )
            if time_s * sample_fps + 1e-9 >= slot:
                ok, frame = self._capture.retrieve()
                if not ok or frame is None:
                    raise VideoError("corrupt", f"frame {index} at {time_s:.2f} s could not be decoded")
                sampled += 1
                if sampled > limits.max_frames:
                    raise VideoError("too_large", _frames_message(sampled, limits.max_frames, sample_fps))
                spent += time.monotonic() - resumed
                yield SampledFrame(time_s, index, frame)
                resumed = time.monotonic()
                slot = math.floor(time_s * sample_fps + 1e-9) + 1
            index += 1
        if index == 0:
            raise VideoError("corrupt", "no frame of the video could be decoded")
        self.frames_read = index

    @property
    def duration_s(self) -> float | None:
        """After `sample` has run: the decoded length; before: the container's."""
        return self.frames_read / self.info.fps if self.frames_read else self.info.duration_s


def encode_jpeg(frame: SampledFrame) -> bytes:
    """A sampled frame as JPEG bytes, what the image model services take."""
    ok, buffer = cv2.imencode(".jpg", frame.bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise VideoError("corrupt", f"frame {frame.index} could not be re-encoded")
    return buffer.tobytes()


def _decoded_message(frames: int, limit: int) -> str:
    return f"the video has {frames} frames or more to decode; at most {limit} are decoded per video"


def _frames_message(frames: int, limit: int, sample_fps: float) -> str:
    return (
        f"analysing this video at {sample_fps:g} frames/s means {frames} frames or more; the limit is "
        f"{limit} frames per request: lower sample_fps or send a shorter video"
    )
