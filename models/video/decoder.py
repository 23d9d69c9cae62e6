"""Video decoding in a sandbox child: the bytes of a video in, chunks of sampled frames out.

FFmpeg (inside OpenCV) parses untrusted containers and codecs: a crash, an abort or a hang
in it must cost one video, not the service. `VideoDecoder` decodes each video in its own
child process (models/sandbox.py: a fresh process per video, one kept started), which
samples frames (`frames.VideoFile.sample`), encodes them as JPEG and hands them over a
chunk at a time, only when asked: when the consumer stops reading, decoding stops.

>>> decoder = VideoDecoder()
>>> with decoder.open(data, sample_fps=1.0, limits=Limits(600, 600, 50_000_000)) as video:
...     video.info.width, video.info.height
...     for chunk in video:            # [Frame(time_s, jpeg), ...], up to frames_per_chunk
...         analyse(chunk)
...     video.duration_s               # decoded length, once read to the end

Every failure is a VideoError: the video's own (corrupt; too_large: forged frame rates and
frame counts are refused from the header, frames decoded are bounded while decoding;
timeout: decoding took longer than `limits.timeout_s`) or the decoder's (unprocessable:
FFmpeg crashed on it; timeout: no chunk within `chunk_timeout_s`; too_large: decoding
needed more memory than the child may use).

Measured on this project's shared 2-core machine (tests/measure_sandboxes.py, p50, a 10 s
640x480 MP4 sampled at 2 frames/s): 58 ms decoded in process, 94 ms in a warm child (the
temporary file, one OpenCV thread instead of two, the pipe); a child is 45 MB resident and
two are kept; starting one costs ~1 s of CPU under load, paid in the background (a video
that finds no started child waits for it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..sandbox import ChildDied, ChildTimeout, Closing, Sandbox, SandboxError, WorkerSpec
from .errors import VideoError
from .frames import Limits, VideoFile, VideoInfo, encode_jpeg

FRAMES_PER_CHUNK = 16
CHUNK_TIMEOUT_S = 60.0  # no chunk for this long: FFmpeg hangs, the child is killed
MEMORY_LIMIT_MB = 4096  # address space of a decoder child (FFmpeg threads reserve a lot)


@dataclass(frozen=True)
class Frame:
    time_s: float
    jpeg: bytes


@dataclass(frozen=True)
class _End:
    frames_decoded: int


class FrameSampler:
    """What a decoder child serves (runs in the child only)."""

    def __init__(self, threads: int = 1):
        import cv2

        cv2.setNumThreads(threads)  # OpenCV's own pool (colour conversion, JPEG encoding)

    def sample(
        self, path: str, sample_fps: float, limits: Limits, frames_per_chunk: int
    ) -> Iterator[VideoInfo | list[Frame] | _End]:
        with VideoFile(path=path) as video:
            video.check(sample_fps, limits)  # refusals from the header come before any decoding
            yield video.info
            chunk: list[Frame] = []
            for frame in video.sample(sample_fps, limits):
                chunk.append(Frame(frame.time_s, encode_jpeg(frame)))
                if len(chunk) == frames_per_chunk:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
            yield _End(video.frames_read or 0)


class DecodedVideo(Closing):
    """One video being decoded: `info` at once, chunks of frames as the caller iterates,
    `duration_s` and `frames_decoded` once read to the end. Close it (or use `with`) to
    stop the child early; the temporary copy of the video is removed then."""

    def __init__(self, stream: Iterator[Any], path: str):
        self._stream = stream
        self._path = path
        self.frames_decoded: int | None = None
        try:
            self.info: VideoInfo = self._next()
        except BaseException:
            self.close()
            raise

    @property
    def duration_s(self) -> float | None:
        """After the last chunk: the decoded length; before: the container's."""
        if self.frames_decoded:
            return self.frames_decoded / self.info.fps
        return self.info.duration_s

    def __iter__(self) -> Iterator[list[Frame]]:
        while self.frames_decoded is None:
            item = self._next()
            if isinstance(item, _End):
                self.frames_decoded = item.frames_decoded
            else:
                yield item

    def _next(self) -> Any:
        try:
            return next(self._stream)
        except StopIteration:
            raise VideoError("corrupt", "the video decoder stopped before the end of the video") from None
        except VideoError:
            raise
        except ChildDied as error:
            raise VideoError(
                "unprocessable", "the video decoder (FFmpeg) crashed on this video", {"reason": str(error)}
            ) from None
        except ChildTimeout as error:
            raise VideoError(
                "timeout",
                "the video decoder (FFmpeg) stopped answering on this video",
                {"reason": str(error)},
            ) from None
        except MemoryError:
            raise VideoError(
                "too_large", "decoding this video needs more memory than a video may use"
            ) from None
        except SandboxError as error:
            raise VideoError("engine", f"the video decoder is not available: {error}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()  # type: ignore[attr-defined]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)


class VideoDecoder(Closing):
    """Decodes videos in sandbox children: a fresh child per video, `spares` kept started.
    Thread-safe: videos opened from several threads decode in parallel children."""

    def __init__(
        self,
        *,
        spares: int = 1,
        frames_per_chunk: int = FRAMES_PER_CHUNK,
        chunk_timeout_s: float = CHUNK_TIMEOUT_S,
        memory_limit_mb: int | None = MEMORY_LIMIT_MB,
        threads: int = 1,
    ):
        """`threads`: OpenCV threads per video (1: parallelism comes from videos decoded
        side by side; 0: OpenCV's default, every core, for one video at a time)."""
        self.frames_per_chunk = frames_per_chunk
        self.chunk_timeout_s = chunk_timeout_s
        spec = WorkerSpec(
            "models.video.decoder:FrameSampler", {"threads": threads}, memory_limit_mb=memory_limit_mb
        )
        self.sandbox = Sandbox(spec, name="video decoder", spares=spares, max_uses=1)

    def open(self, data: bytes, sample_fps: float, limits: Limits) -> DecodedVideo:
        """Start decoding `data`; raises VideoError when the video cannot be opened or its
        header is over a limit (before any frame is decoded)."""
        handle, path = tempfile.mkstemp(prefix="pais-video-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        stream = self.sandbox.stream(
            "sample", path, sample_fps, limits, self.frames_per_chunk, timeout_s=self.chunk_timeout_s
        )
        return DecodedVideo(stream, path)

    def close(self) -> None:
        self.sandbox.close()
