"""The video service: decodes a video in a thread, samples frames, and sends them in
chunks through the same batched detection and classification model services that serve
image requests (so frames of several videos and single-image requests share batches).

Decoding (OpenCV/FFmpeg, which releases the GIL) runs in worker threads, never on the
event loop, and overlaps with inference: while one chunk of frames is being analysed the
next one is decoded. Two bounds keep videos from flooding the model services, whose
adaptive batching refuses (503) work it cannot start within its latency budget: one video
has at most CHUNKS_PER_VIDEO chunks decoded ahead (which also bounds its memory), and the
whole worker at most CHUNKS_IN_FLIGHT chunks at the model services, however many videos
it analyses at once. A chunk refused as overloaded all the same is retried after a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import bentoml
from bentoml.exceptions import ServiceUnavailable

from models.classification import MAX_TOP_K
from models.video.errors import VideoError

from ..classification.schemas import ClassifyItem, ClassifyOutcome
from ..classification.worker import ImageClassification
from ..detection.schemas import DetectItem, DetectOutcome
from ..detection.worker import ObjectDetection
from ..model_calls import ask_once
from ..model_service import ModelService, model_service_options
from ..schemas import ItemError
from ..settings import get_settings
from .schemas import FrameOut, LabelOut, LabelSummaryOut, VideoAnalysisOut, VideoOutcome, VideoRequest

settings = get_settings()

FRAMES_PER_CHUNK = 16  # frames per call to a model service: one adaptive batch or part of one
CHUNKS_PER_VIDEO = 4
CHUNKS_IN_FLIGHT = 8  # per worker: 128 frames, two full batches of the default max_batch_size
OVERLOAD_RETRIES = (1.0, 3.0, 9.0)  # pauses before retrying a chunk refused as overloaded

Chunk = list[tuple[float, bytes]]  # (time_s, JPEG) of consecutive sampled frames
ModelCall = Callable[[], Awaitable[list[Any]]]


# No dependency probe in this service's /readyz: while the model services load, BentoML's
# probe times out with an exception, and its timeout middleware then holds each such
# /readyz for the whole request timeout, which blocks this worker's shutdown on SIGTERM.
# The entry service depends on the model services itself, so its readiness (and
# SageMaker's /ping) still waits for them.
@bentoml.service(
    **model_service_options("pais-video", settings.video_workers, settings), runner_probe={"enabled": False}
)
class VideoAnalysis(ModelService):
    detection = bentoml.depends(ObjectDetection)
    classification = bentoml.depends(ImageClassification)

    def __init__(self) -> None:
        self._chunks_in_flight = asyncio.Semaphore(CHUNKS_IN_FLIGHT)

    def model_cards(self) -> list[dict[str, Any]]:
        return []  # its models are the detection and classification services', listed by them

    @bentoml.api
    async def analyze(self, request: VideoRequest) -> VideoOutcome:
        try:
            return VideoOutcome(result=await self._analyze(request))
        except ValueError as error:  # VideoError (a ValueError with a kind) or a refused option
            kind = getattr(error, "kind", "invalid")
            return VideoOutcome(error=ItemError(kind=kind, message=str(error)))

    async def _analyze(self, request: VideoRequest) -> VideoAnalysisOut:
        from models.video.frames import Limits, VideoFile, encode_jpeg
        from models.video.summary import summarize

        classes, models = await self._check(request)
        limits = Limits(settings.max_video_duration_s, settings.max_video_frames, settings.max_image_pixels)
        video = await anyio.to_thread.run_sync(VideoFile, request.data)
        in_flight: list[asyncio.Task[list[FrameOut]]] = []
        frames: list[FrameOut] = []
        try:
            sampled = video.sample(request.sample_fps, limits)

            def next_chunk() -> Chunk:
                chunk = []
                for frame in sampled:
                    chunk.append((frame.time_s, encode_jpeg(frame)))
                    if len(chunk) == FRAMES_PER_CHUNK:
                        break
                return chunk

            while chunk := await anyio.to_thread.run_sync(next_chunk):
                in_flight.append(asyncio.create_task(self._analyze_chunk(chunk, request, classes)))
                if len(in_flight) >= CHUNKS_PER_VIDEO:
                    frames.extend(await in_flight.pop(0))
            for task in in_flight:
                frames.extend(await task)
        finally:
            for task in in_flight:
                task.cancel()
            await anyio.to_thread.run_sync(video.close)

        if request.detect:
            observations = [(f.time_s, [d.label for d in f.detections]) for f in frames]
        else:
            observations = [(f.time_s, [f.labels[0].label] if f.labels else []) for f in frames]
        return VideoAnalysisOut(
            duration_s=round(video.duration_s or 0.0, 3),
            width=video.info.width,
            height=video.info.height,
            sample_fps=request.sample_fps,
            models=models,
            frames=frames,
            summary={label: LabelSummaryOut(**entry) for label, entry in summarize(observations).items()},
        )

    async def _check(self, request: VideoRequest) -> tuple[list[str] | None, dict[str, str]]:
        """ValueError for options the models refuse; else the classes as the detector spells
        them, and which model serves each task."""
        from models.detection.options import DetectOptions, canonical_classes

        if not 1 <= request.top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {request.top_k}")
        DetectOptions(request.score_threshold, request.max_detections).check()
        classes, models = None, {}
        if request.detect:
            card = (await ask_once(self, "detection", self.detection, "model_info"))[0]
            models["detect"] = card["name"]
            if request.classes:
                classes = list(canonical_classes(request.classes, card["details"]["labels"]))
        if request.classify:
            classifier = await ask_once(self, "classification", self.classification, "model_info")
            models["classify"] = classifier[0]["name"]
        return classes, models

    async def _analyze_chunk(
        self, chunk: Chunk, request: VideoRequest, classes: list[str] | None
    ) -> list[FrameOut]:
        datas = [data for _, data in chunk]
        calls: list[ModelCall] = []
        if request.detect:
            detect_items = [
                DetectItem(
                    data=data,
                    score_threshold=request.score_threshold,
                    max_detections=request.max_detections,
                    classes=classes,
                )
                for data in datas
            ]
            calls.append(lambda: self.detection.to_async.detect_batch(detect_items))
        if request.classify:
            classify_items = [ClassifyItem(data=data, top_k=request.top_k) for data in datas]
            calls.append(lambda: self.classification.to_async.classify_batch(classify_items))
        answers = await self._call_model_services(calls)
        detections: list[Any] = [[]] * len(chunk)
        labels: list[Any] = [[]] * len(chunk)
        if request.detect:
            detections = [_result(o, DetectOutcome).detections for o in answers.pop(0)]
        if request.classify:
            labels = [
                [LabelOut(label=p.label, score=p.score) for p in _result(o, ClassifyOutcome).predictions]
                for o in answers.pop(0)
            ]
        return [
            FrameOut(time_s=round(time_s, 3), detections=found, labels=seen)
            for (time_s, _), found, seen in zip(chunk, detections, labels, strict=True)
        ]

    async def _call_model_services(self, calls: list[ModelCall]) -> list[list[Any]]:
        """Run the calls of one chunk together, within the worker's bound on chunks at the
        model services; a call refused as overloaded (503) is retried after a pause."""

        async def patiently(call: ModelCall) -> list[Any]:
            for pause in OVERLOAD_RETRIES:
                try:
                    return await call()
                except ServiceUnavailable:
                    await asyncio.sleep(pause)
            return await call()

        async with self._chunks_in_flight:
            return list(await asyncio.gather(*(patiently(call) for call in calls)))


def _result(outcome: Any, outcome_type: type) -> Any:
    """The result of a frame's outcome; a frame the model service could not read means the
    video's frame data is broken."""
    outcome = outcome_type.model_validate(outcome) if isinstance(outcome, dict) else outcome
    if outcome.error:
        raise VideoError("corrupt", f"a frame could not be analysed: {outcome.error.message}")
    return outcome.result
