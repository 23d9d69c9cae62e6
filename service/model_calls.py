"""Admin calls from one service to the model services it depends on (cards, batch
statistics, language and voice lists), and how their failures are answered.

These calls are idempotent, so a failed one is tried once more: a call can meet a
connection that the model service is just closing. A second failure is logged with its
traceback and raised as ModelServiceError; the GET routes answer it as a JSON 503 (try
again), never as a bare 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("pais.model_calls")


class ModelServiceError(Exception):
    """A model service did not answer an admin call."""


async def ask_model_service(name: str, service: Any, api: str) -> Any:
    """`service.<api>()` through the service's async client, tried twice."""
    for attempt in (1, 2):
        try:
            return await getattr(service.to_async, api)()
        except Exception as error:
            if attempt == 2:
                log.exception("model service %s: %s failed twice", name, api)
                raise ModelServiceError(f"model service {name!r} did not answer {api}: {error!r}") from error
            log.warning("model service %s: %s failed (%r); trying again", name, api, error)
    raise AssertionError("unreachable")


async def ask_once(owner: Any, name: str, service: Any, api: str) -> Any:
    """ask_model_service, asked once per worker and the answer kept on `owner`: cards,
    labels and language lists do not change while a server runs."""
    answers = owner.__dict__.setdefault("_model_service_answers", {})
    if (name, api) not in answers:
        answers[(name, api)] = await ask_model_service(name, service, api)
    return answers[(name, api)]


def answers_model_service_errors(
    route: Callable[[Request], Awaitable[JSONResponse]],
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """A GET route whose ModelServiceError becomes a JSON 503."""

    @functools.wraps(route)
    async def wrapper(request: Request) -> JSONResponse:
        try:
            return await route(request)
        except ModelServiceError as error:
            return JSONResponse({"error": f"{error}; try again"}, status_code=503)

    return wrapper
