"""PAIS entry service: the public HTTP surface, on one port.

It parses and checks requests (cheap, header-only work, no torch in this process) and
hands whole requests to per-task model services composed with `bentoml.depends`; those
form batches across requests and run the models. Each task contributes an endpoints mixin
(its public APIs and its model service dependency); the entry service is composed of the
mixins of the tasks PAIS_TASKS names, so BentoML starts only their model services. GET
/models and GET /stats gather from every model service found on the class.

Serve it with `bentoml serve service.gateway:PAIS` (what `make serve` does).
"""

import asyncio
import math
from typing import Any

import bentoml
from _bentoml_sdk.service.dependency import Dependency
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .classification.endpoints import ClassificationEndpoints
from .detection.endpoints import DetectionEndpoints
from .middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ConcurrencyLimitMiddleware,
    ErrorShapeMiddleware,
)
from .model_calls import ModelServiceError, answers_model_service_errors, ask_model_service, ask_once
from .multipart import install_strict_multipart
from .recommendation.endpoints import RecommendationEndpoints
from .sagemaker import InvocationRoute, SageMakerMiddleware
from .settings import Settings, get_settings
from .speech import endpoints as speech_endpoints
from .translation.endpoints import TranslationEndpoints, list_languages
from .video.endpoints import VideoEndpoints

settings = get_settings()
install_strict_multipart()
MODEL_READY_TIMEOUT_S = 5  # BentoML's own probe timeout


# Each task's public endpoints, and the GET routes it adds to the mounted app.
TASK_ENDPOINTS: dict[str, type] = {
    "classification": ClassificationEndpoints,
    "detection": DetectionEndpoints,
    "video": VideoEndpoints,
    "translation": TranslationEndpoints,
    "speech": speech_endpoints.SpeechEndpoints,
    "recommendation": RecommendationEndpoints,
}
TASK_GET_ROUTES: dict[str, list[Route]] = {
    "translation": [Route("/translate/languages", list_languages, methods=["GET"])],
    "speech": list(speech_endpoints.ROUTES),
}


class Gateway:
    """What the entry service does whatever tasks it serves."""

    async def __is_ready__(self) -> bool:
        """Ready when every model service answers its /readyz; a timeout means not yet."""
        probes = [service.is_ready(MODEL_READY_TIMEOUT_S) for service in self.model_services().values()]
        return all(answer is True for answer in await asyncio.gather(*probes, return_exceptions=True))

    def model_services(self) -> dict[str, Any]:
        """Every model service this entry service depends on, by attribute name."""
        cls = type(self)
        return {name: getattr(self, name) for name in dir(cls) if isinstance(getattr(cls, name), Dependency)}

    async def model_cards(self) -> list[dict[str, Any]]:
        """Every loaded model with task, source, version and licence (asked once per
        worker: models do not change while a server runs). Raises ModelServiceError."""
        cards = []
        for name, service in self.model_services().items():
            cards.extend(await ask_once(self, name, service, "model_info"))
        return cards

    async def batch_stats(self) -> dict[str, Any]:
        """Batch sizes per model service; one that does not answer is reported as such."""
        stats: dict[str, Any] = {}
        for name, service in self.model_services().items():
            try:
                stats[name] = await ask_model_service(name, service, "batch_stats")
            except ModelServiceError as error:
                stats[name] = {"error": str(error)}
        return stats


# No BentoML max_concurrency here: its limiter sits outside the service's middleware and
# would refuse SageMaker's /ping under load; ConcurrencyLimitMiddleware exempts health checks.
# BentoML's own dependency probe in /readyz lets a timeout escape while a model service is
# still loading; its timeout middleware then holds that request for the whole request timeout,
# and shutdown waits for it (SIGTERM took up to PAIS_REQUEST_TIMEOUT_S once two model services
# loaded side by side). Gateway.__is_ready__ probes the model services instead.
PAIS = bentoml.service(
    name="pais",
    workers=settings.gateway_workers,
    traffic={"timeout": settings.request_timeout_s},
    runner_probe={"enabled": False},
)(
    type(
        "PAIS",
        (Gateway, *(TASK_ENDPOINTS[task] for task in settings.served_tasks)),
        {"__module__": __name__, "__qualname__": "PAIS", "__doc__": "The PAIS entry service."},
    )
)


@answers_model_service_errors
async def list_models(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse({"models": await service.model_cards()})


async def batch_stats(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse(await service.batch_stats())


PAIS.mount_asgi_app(
    Starlette(
        routes=[
            Route("/models", list_models, methods=["GET"]),
            Route("/stats", batch_stats, methods=["GET"]),
            *(route for task in settings.served_tasks for route in TASK_GET_ROUTES.get(task, [])),
        ]
    ),
    path="/",
)


def invocation_routes() -> list[InvocationRoute]:
    """The SageMaker /invocations routes every task mixin declares."""
    return [route for base in PAIS.inner.__mro__ for route in vars(base).get("invocation_routes", ())]


def default_invocation_task(routes: list[InvocationRoute]) -> str:
    """classify when it is served, else the first task served."""
    names = [route.task for route in routes]
    return "classify" if "classify" in names else names[0]


def middleware_stack(settings: Settings, routes: list[InvocationRoute]) -> list[tuple[type, dict[str, Any]]]:
    """The entry service's ASGI middleware, outermost first. Load shedding and API keys
    before anything; the SageMaker layer next, so that its in-process sub-requests get the
    same error shapes and body limits as REST calls."""
    return [
        (
            ConcurrencyLimitMiddleware,
            {"limit": math.ceil(settings.max_concurrency / settings.gateway_workers)},
        ),
        (ApiKeyMiddleware, {"keys": settings.api_key_set}),
        (
            SageMakerMiddleware,
            {
                "routes": routes,
                "default_task": settings.sagemaker_default_task or default_invocation_task(routes),
                "max_request_bytes": settings.max_request_bytes,
            },
        ),
        (ErrorShapeMiddleware, {}),
        (
            BodyLimitMiddleware,
            {
                "max_bytes": settings.max_request_bytes,
                # a video upload has its own limit; the slack covers the multipart framing and form fields
                "path_limits": {
                    "/analyze_video": (settings.max_video_bytes + 64 * 1024, "PAIS_MAX_VIDEO_BYTES")
                },
            },
        ),
    ]


for middleware, options in middleware_stack(settings, invocation_routes()):
    PAIS.add_asgi_middleware(middleware, **options)
