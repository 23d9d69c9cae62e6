"""Video analysis: POST /analyze_video.

A task with no model of its own: frames are decoded in a sandbox child process (OpenCV;
models/video/decoder.py), pulled by a worker thread, never on the event loop, and sent in
chunks through the detection and classification runners that serve image requests, so
frames of several videos and single images share batches. While one chunk is analysed the
next is decoded; a video has at most CHUNKS_AHEAD chunks in flight, which also bounds its
memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.classification import MAX_TOP_K, ClassifyItem
from models.detection import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD
from models.detection.options import DetectOptions
from models.detection.schema import DetectItem
from models.video import DEFAULT_SAMPLE_FPS, MAX_SAMPLE_FPS
from models.video.errors import VideoError
from models.video.header import sniff_container
from models.video.schema import AnalysedFrame, FrameLabel, LabelSummary, VideoAnalysis
from models.video.summary import summarize

from ..config import MIB, TaskSettings, setting
from ..context import Context
from ..errors import RequestError, from_item_error, item_errors
from ..runners import Unavailable
from ..task import BatchJob, Files, Limit, Operation, Task
from .detection import Classes, MaxDetections, ScoreThreshold, class_choices, classes_of_model

FRAMES_PER_CHUNK = 16  # frames per call to a runner: one batch or part of one
CHUNKS_AHEAD = 4  # chunks of one video decoded and at the runners at once
OVERLOAD_PAUSES_S = (1.0, 3.0, 9.0)  # before retrying a chunk refused as overloaded
VIDEO_TYPES = ("video/mp4", "video/webm", "video/x-msvideo", "video/quicktime", "video/x-matroska", "video/*")


@dataclass(frozen=True)
class VideoSettings(TaskSettings):
    max_bytes: int = setting(
        256 * MIB,
        "Largest video accepted by /analyze_video, in bytes (its request body may be this large).",
        1,
    )
    max_duration_s: int = setting(600, "Longest video accepted, in seconds.", 1)
    max_frames: int = setting(600, "Most frames one request may analyse (duration x sample_fps).", 1)


class AnalyzeVideoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: Annotated[
        bytes,
        Files(VIDEO_TYPES),
        Limit("max_bytes", what="bytes"),
        Field(description="a video file (mp4, webm, avi, mov, mkv)"),
    ]
    sample_fps: Annotated[
        float, Field(gt=0, le=MAX_SAMPLE_FPS, description="frames analysed per second of video")
    ] = DEFAULT_SAMPLE_FPS
    tasks: Annotated[
        list[Literal["detect", "classify"]],
        Field(min_length=1, description="detect and/or classify: repeated, or comma-separated"),
    ] = ["detect", "classify"]
    score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD
    max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS
    classes: Classes = None
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="classification labels per frame")] = 3


Chunk = list[tuple[float, bytes]]  # (time_s, JPEG) of consecutive sampled frames


async def analyze_video(ctx: Context, request: AnalyzeVideoRequest) -> VideoAnalysis:
    """Detect and/or classify what a video shows, sampled at `sample_fps` frames per
    second: per-frame results and, per label, when it was first and last seen."""
    try:
        sniff_container(request.video)
    except VideoError as error:
        raise from_item_error(error, "video") from None
    detect, classify = "detect" in request.tasks, "classify" in request.tasks
    options, models = await _options(ctx, request, detect, classify)
    frames: list[AnalysedFrame] = []
    try:
        decoder = await asyncio.to_thread(_Decoder, request.video, request.sample_fps, ctx)
    except VideoError as error:
        raise from_item_error(error, "video") from None
    in_flight: list[asyncio.Task[list[AnalysedFrame]]] = []
    try:
        while chunk := await asyncio.to_thread(decoder.next_chunk):
            in_flight.append(
                asyncio.create_task(_analyse(ctx, chunk, options, request.top_k, detect, classify))
            )
            if len(in_flight) >= CHUNKS_AHEAD:
                frames.extend(await in_flight.pop(0))
        for task in in_flight:
            frames.extend(await task)
    except VideoError as error:
        raise from_item_error(error, "video") from None
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.to_thread(decoder.close)
    if detect:
        observations = [(f.time_s, [d.label for d in f.detections]) for f in frames]
    else:
        observations = [(f.time_s, [f.labels[0].label] if f.labels else []) for f in frames]
    info = decoder.info
    return VideoAnalysis(
        duration_s=round(decoder.duration_s or 0.0, 3),
        width=info.width,
        height=info.height,
        sample_fps=request.sample_fps,
        models=models,
        frames=frames,
        summary={label: LabelSummary(**entry) for label, entry in summarize(observations).items()},  # type: ignore[arg-type]
    )


class _Decoder:
    """A video's sampled frames as JPEG chunks, decoded in a sandbox child process (FFmpeg
    on untrusted input: a crash or a hang costs this video only); pulled from a thread."""

    _shared: Any = None  # one VideoDecoder per entry worker: it keeps a child started

    def __init__(self, data: bytes, sample_fps: float, ctx: Context):
        from models.video.decoder import VideoDecoder
        from models.video.frames import Limits

        if _Decoder._shared is None:
            _Decoder._shared = VideoDecoder(frames_per_chunk=FRAMES_PER_CHUNK)
        section = ctx.section
        limits = Limits(
            section.max_duration_s,
            section.max_frames,
            ctx.settings.max_image_pixels,
            timeout_s=ctx.remaining_s(),  # decoding stops with the request's deadline
        )
        self._video = _Decoder._shared.open(data, sample_fps, limits)
        self.info = self._video.info
        self._chunks = iter(self._video)

    @property
    def duration_s(self) -> float | None:
        return self._video.duration_s

    def next_chunk(self) -> Chunk:
        chunk = next(self._chunks, [])
        return [(frame.time_s, frame.jpeg) for frame in chunk]

    def close(self) -> None:
        self._video.close()


async def _options(
    ctx: Context, request: AnalyzeVideoRequest, detect: bool, classify: bool
) -> tuple[DetectOptions, dict[str, str]]:
    """The detection options (classes as the detector spells them) and which model serves
    each operation."""
    models: dict[str, str] = {}
    classes = None
    if detect:
        (card,) = await ctx.cards("detection")
        models["detect"] = card["name"]
        if request.classes:
            classes = classes_of_model(request.classes, card)
    if classify:
        # the served classifier's card comes first; custom classifiers' cards follow it
        models["classify"] = (await ctx.cards("classification"))[0]["name"]
    return DetectOptions(request.score_threshold, request.max_detections, classes), models


async def _analyse(
    ctx: Context, chunk: Chunk, options: DetectOptions, top_k: int, detect: bool, classify: bool
) -> list[AnalysedFrame]:
    images = [image for _, image in chunk]
    detections: list[Any] = [[] for _ in chunk]
    labels: list[Any] = [[] for _ in chunk]
    calls = []
    if detect:
        calls.append(_patiently(ctx, [DetectItem(image, options) for image in images], "detection"))
    if classify:
        calls.append(_patiently(ctx, [ClassifyItem(image, top_k) for image in images], "classification"))
    answers = list(await asyncio.gather(*calls))
    try:
        if detect:
            detections = [r.detections for r in item_errors(answers.pop(0), "frames")]
        if classify:
            labels = [
                [FrameLabel(p.label, p.score) for p in r.predictions]
                for r in item_errors(answers.pop(0), "frames")
            ]
    except RequestError as error:  # a frame the models could not read: the video's data is broken
        raise VideoError("corrupt", f"a frame could not be analysed: {error.message}") from None
    return [
        AnalysedFrame(round(time_s, 3), found, seen)
        for (time_s, _), found, seen in zip(chunk, detections, labels, strict=True)
    ]


async def _patiently(ctx: Context, items: list[Any], task: str) -> list[Any]:
    """The runner's answer; a chunk refused as overloaded is retried after a pause."""
    for pause in OVERLOAD_PAUSES_S:
        try:
            return await ctx.predict(items, task)
        except Unavailable:
            await asyncio.sleep(pause)
    return await ctx.predict(items, task)


TASK = Task(
    name="video",
    summary="Video analysis: objects and classes over time, from the detection and classification models",
    runtime=None,
    settings=VideoSettings,
    operations=(
        Operation(
            "/analyze_video",
            analyze_video,
            statuses=(422,),
            batch=BatchJob("video", "video"),
            max_body_bytes=lambda section: section.max_bytes + 64 * 1024,  # + the multipart framing
            body_limit_setting="PAIS_VIDEO_MAX_BYTES",
            choices=class_choices,
        ),
    ),
    requires=("detection", "classification"),
)
