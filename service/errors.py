"""Client errors: one exception type, one JSON shape.

Every 4xx answer is `{"error": "<what was wrong and what is accepted>", "detail": ...}`.
APIs raise `RequestError` and are wrapped with `answers_request_errors`;
`middleware.ErrorShapeMiddleware` gives BentoML's own errors (input validation, unknown
routes) the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.responses import JSONResponse

from models.image_header import ImageError

# ImageError.kind (and VideoError.kind, the same kinds) -> HTTP status
IMAGE_ERROR_STATUS = {
    "empty": HTTPStatus.BAD_REQUEST,
    "corrupt": HTTPStatus.BAD_REQUEST,
    "unsupported": HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    "too_large": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "invalid": HTTPStatus.BAD_REQUEST,  # an option a model service refused
}

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Outcome = TypeVar("Outcome", bound=BaseModel)


class RequestError(Exception):
    """A 4xx answer; `detail` (JSON-able) is added to the body as is."""

    def __init__(self, status: HTTPStatus, message: str, detail: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return JSONResponse(body, status_code=int(self.status))


def answers_request_errors(api: F) -> F:
    """Turn a RequestError raised by an async API into its JSON response."""

    @functools.wraps(api)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await api(*args, **kwargs)
        except RequestError as error:
            return error.response()

    return wrapper  # type: ignore[return-value]


def image_request_error(field: str, failures: list[tuple[int, ImageError]]) -> RequestError:
    """One RequestError for all bad images of a request; the status is the first one's."""
    message = "; ".join(f"{field}[{index}]: {error.message}" for index, error in failures)
    detail = [
        {"field": field, "index": index, "kind": error.kind, "message": error.message}
        for index, error in failures
    ]
    return RequestError(IMAGE_ERROR_STATUS.get(failures[0][1].kind, HTTPStatus.BAD_REQUEST), message, detail)


def checked_outcomes(outcomes: list[Any], outcome_type: type[Outcome], field: str) -> list[Outcome]:
    """A model service's per-item outcomes (`result` or `error`), as `outcome_type`;
    raises one RequestError naming every failed item of `field`."""
    typed = [outcome_type.model_validate(o) if isinstance(o, dict) else o for o in outcomes]
    failures = [
        (i, ImageError(o.error.kind, o.error.message))  # type: ignore[attr-defined]
        for i, o in enumerate(typed)
        if o.error  # type: ignore[attr-defined]
    ]
    if failures:
        raise image_request_error(field, failures)
    return typed
