"""POST /analyze_video, mixed into the entry service (service.gateway.PAIS)."""

from http import HTTPStatus
from pathlib import Path
from typing import Annotated

import bentoml
from pydantic import Field

from models.classification import MAX_TOP_K
from models.detection import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD
from models.detection.options import split_names
from models.video import DEFAULT_SAMPLE_FPS, MAX_SAMPLE_FPS, TASKS
from models.video.errors import VideoError

from ..detection.endpoints import Classes, MaxDetections, ScoreThreshold
from ..errors import RequestError, answers_request_errors
from ..sagemaker import InvocationRoute
from ..settings import get_settings
from ..uploads import read_video, video_request_error
from .schemas import VideoAnalysisOut, VideoOutcome, VideoRequest
from .worker import VideoAnalysis

settings = get_settings()
ALL_TASKS = ",".join(TASKS)


def parse_tasks(tasks: str | list[str]) -> set[str]:
    names = split_names(tasks) or ()
    unknown = sorted(set(names) - set(TASKS))
    if unknown or not names:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"tasks must name one or more of {', '.join(TASKS)} (comma-separated), got {tasks!r}",
        )
    return set(names)


class VideoEndpoints:
    video = bentoml.depends(VideoAnalysis)
    invocation_routes = (
        InvocationRoute("analyze_video", "/analyze_video", file_field="video", raw_types=("video/",)),
    )

    @bentoml.api(route="/analyze_video")
    @answers_request_errors
    async def analyze_video(
        self,
        video: Path,
        sample_fps: Annotated[
            float, Field(gt=0, le=MAX_SAMPLE_FPS, description="frames analysed per second of video")
        ] = DEFAULT_SAMPLE_FPS,
        tasks: Annotated[
            str | list[str], Field(description="detect and/or classify, comma-separated")
        ] = ALL_TASKS,
        score_threshold: ScoreThreshold = DEFAULT_SCORE_THRESHOLD,
        max_detections: MaxDetections = DEFAULT_MAX_DETECTIONS,
        classes: Classes = None,
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="classification labels per frame")] = 3,
    ) -> VideoAnalysisOut:
        """Detect and/or classify what a video shows, sampled at `sample_fps` frames per
        second: per-frame results and, per label, when it was first and last seen."""
        wanted = parse_tasks(tasks)
        data = await read_video(video, "video", settings)
        names = split_names(classes)
        outcome = await self.video.to_async.analyze(
            VideoRequest(
                data=data,
                sample_fps=sample_fps,
                detect="detect" in wanted,
                classify="classify" in wanted,
                score_threshold=score_threshold,
                max_detections=max_detections,
                classes=list(names) if names else None,
                top_k=top_k,
            )
        )
        if isinstance(outcome, dict):
            outcome = VideoOutcome.model_validate(outcome)
        if outcome.error:
            raise video_request_error("video", VideoError(outcome.error.kind, outcome.error.message))
        return outcome.result
