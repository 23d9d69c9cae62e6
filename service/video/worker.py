"""The video service: decodes a video in a thread, samples frames, and sends them in
chunks through the same batched detection and classification model services that serve
image requests (so frames of several videos and single-image requests share batches).

Decoding (OpenCV/FFmpeg, which releases the GIL) runs in worker threads, never on the
event loop, and overlaps with inference: while one chunk of frames is being analysed the
next one is decoded. At most MAX_CHUNKS_IN_FLIGHT chunks wait at once, which bounds the
memory a long video holds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
import bentoml

from models.classification import MAX_TOP_K
from models.video.errors import VideoError

from ..classification.schemas import ClassifyItem, ClassifyOutcome
from ..classification.worker import ImageClassification
from ..detection.schemas import DetectItem, DetectOutcome
from ..detection.worker import ObjectDetection
from ..model_service import ModelService, model_service_options
from ..schemas import ItemError
from ..settings import get_settings
from .schemas import FrameOut, LabelOut, LabelSummaryOut, VideoAnalysisOut, VideoOutcome, VideoRequest

settings = get_settings()

FRAMES_PER_CHUNK = 16  # frames per call to a model service: one adaptive batch or part of one
MAX_CHUNKS_IN_FLIGHT = 4


@bentoml.service(**model_service_options("pais-video", settings.video_workers, settings))
class VideoAnalysis(ModelService):
    detection = bentoml.depends(ObjectDetection)
    classification = bentoml.depends(ImageClassification)

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
        from models.detection.options import DetectOptions, canonical_classes
        from models.video.frames import Limits, VideoFile, encode_jpeg
        from models.video.summary import summarize

        if not 1 <= request.top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {request.top_k}")
        DetectOptions(request.score_threshold, request.max_detections).check()
        classes, models = None, {}
        if request.detect:
            card = (await self.detection.to_async.model_info())[0]
            models["detect"] = card["name"]
            if request.classes:
                classes = list(canonical_classes(request.classes, card["details"]["labels"]))
        if request.classify:
            models["classify"] = (await self.classification.to_async.model_info())[0]["name"]

        limits = Limits(settings.max_video_duration_s, settings.max_video_frames, settings.max_image_pixels)
        video = await anyio.to_thread.run_sync(VideoFile, request.data)
        in_flight: list[asyncio.Task[list[FrameOut]]] = []
        frames: list[FrameOut] = []
        try:
            sampled = video.sample(request.sample_fps, limits)

            def next_chunk() -> list[tuple[float, bytes]]:
                chunk = []
                for frame in sampled:
                    chunk.append((frame.time_s, encode_jpeg(frame)))
                    if len(chunk) == FRAMES_PER_CHUNK:
                        break
                return chunk

            while chunk := await anyio.to_thread.run_sync(next_chunk):
                in_flight.append(asyncio.create_task(self._analyze_chunk(chunk, request, classes)))
                if len(in_flight) >= MAX_CHUNKS_IN_FLIGHT:
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

    async def _analyze_chunk(
        self, chunk: list[tuple[float, bytes]], request: VideoRequest, classes: list[str] | None
    ) -> list[FrameOut]:
        datas = [data for _, data in chunk]
        detections: list[Any] = [None] * len(chunk)
        labels: list[Any] = [None] * len(chunk)
        calls = []
        if request.detect:
            items = [
                DetectItem(
                    data=data,
                    score_threshold=request.score_threshold,
                    max_detections=request.max_detections,
                    classes=classes,
                )
                for data in datas
            ]
            calls.append(self.detection.to_async.detect_batch(items))
        if request.classify:
            calls.append(
                self.classification.to_async.classify_batch(
                    [ClassifyItem(data=d, top_k=request.top_k) for d in datas]
                )
            )
        answers = list(await asyncio.gather(*calls))
        if request.detect:
            detections = [_result(o, DetectOutcome).detections for o in answers.pop(0)]
        if request.classify:
            labels = [
                [LabelOut(label=p.label, score=p.score) for p in _result(o, ClassifyOutcome).predictions]
                for o in answers.pop(0)
            ]
        return [
            FrameOut(time_s=round(time_s, 3), detections=found or [], labels=seen or [])
            for (time_s, _), found, seen in zip(chunk, detections, labels, strict=True)
        ]


def _result(outcome: Any, outcome_type: type) -> Any:
    """The result of a frame's outcome; a frame the model service could not read means the
    video's frame data is broken."""
    outcome = outcome_type.model_validate(outcome) if isinstance(outcome, dict) else outcome
    if outcome.error:
        raise VideoError("corrupt", f"a frame could not be analysed: {outcome.error.message}")
    return outcome.result
