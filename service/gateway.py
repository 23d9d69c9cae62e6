"""PAIS entry service: the public HTTP surface, on one port.

It parses and checks requests (cheap, header-only work, no torch in this process) and
hands whole requests to per-task model services composed with `bentoml.depends`; those
form batches across requests and run the models. This split lets the model service run
one worker per GPU while the entry service scales with HTTP load.

Serve it with `bentoml serve service.gateway:PAIS` (what `make serve` does).
"""

from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.classification import MAX_TOP_K
from models.image_header import ImageError

from .classification import ClassificationOut, ClassifyItem, ClassifyOutcome, ImageClassification
from .errors import answers_request_errors, image_request_error
from .middleware import ApiKeyMiddleware, BodyLimitMiddleware, ErrorShapeMiddleware
from .multipart import install_strict_multipart
from .settings import get_settings
from .uploads import read_images

settings = get_settings()
install_strict_multipart()


@bentoml.service(
    name="pais",
    workers=settings.gateway_workers,
    traffic={"timeout": settings.request_timeout_s, "max_concurrency": settings.max_concurrency},
)
class PAIS:
    classification = bentoml.depends(ImageClassification)

    def __init__(self) -> None:
        self._model_cards: list[dict[str, Any]] | None = None

    @bentoml.api(route="/classify")
    @answers_request_errors
    async def classify(
        self,
        images: list[Path],
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="predictions per image")] = 5,
    ) -> list[ClassificationOut]:
        """Classify one or more images (JPEG, PNG, WebP, GIF): one entry per image, in order."""
        datas = await read_images(images, "images", settings)
        outcomes = await self.classification.to_async.classify_batch(
            [ClassifyItem(data=data, top_k=top_k) for data in datas]
        )
        outcomes = [ClassifyOutcome.model_validate(o) if isinstance(o, dict) else o for o in outcomes]
        failures = [(i, ImageError(o.error.kind, o.error.message)) for i, o in enumerate(outcomes) if o.error]
        if failures:
            raise image_request_error("images", failures)
        return [outcome.result for outcome in outcomes]

    async def model_cards(self) -> list[dict[str, Any]]:
        """Every loaded model with task, source, version and licence (asked once per worker:
        models do not change while a server runs)."""
        if self._model_cards is None:
            self._model_cards = [await self.classification.to_async.model_info()]
        return self._model_cards

    async def batch_stats(self) -> dict[str, Any]:
        return {"classification": await self.classification.to_async.batch_stats()}


async def list_models(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse({"models": await service.model_cards()})


async def batch_stats(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse(await service.batch_stats())


PAIS.mount_asgi_app(
    Starlette(
        routes=[Route("/models", list_models, methods=["GET"]), Route("/stats", batch_stats, methods=["GET"])]
    ),
    path="/",
)
# Outermost first: refuse oversized bodies and missing keys before any parsing.
PAIS.add_asgi_middleware(ErrorShapeMiddleware)
PAIS.add_asgi_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
PAIS.add_asgi_middleware(ApiKeyMiddleware, keys=settings.api_key_set)
