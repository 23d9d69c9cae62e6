"""One error shape, one table from error kinds to HTTP statuses.

Every error answer is JSON `{"error": "<what was wrong and what is accepted>",
"detail": [{"field", "index", "kind", "message", ...}]}` (`detail` only when there is
something per field or item to say). Handlers raise `RequestError`; a runtime's per-item
`ItemError`s become one RequestError through `item_errors`, whose status comes from
STATUS, the only place a kind meets a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.errors import ErrorKind, ItemError

STATUS: dict[ErrorKind, HTTPStatus] = {
    ErrorKind.EMPTY: HTTPStatus.BAD_REQUEST,
    ErrorKind.CORRUPT: HTTPStatus.BAD_REQUEST,
    ErrorKind.INVALID: HTTPStatus.BAD_REQUEST,
    ErrorKind.UNKNOWN_LANGUAGE: HTTPStatus.BAD_REQUEST,
    ErrorKind.UNKNOWN_ITEM: HTTPStatus.NOT_FOUND,
    ErrorKind.UNKNOWN_MODEL: HTTPStatus.NOT_FOUND,
    ErrorKind.TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ErrorKind.UNSUPPORTED: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ErrorKind.UNSUPPORTED_PAIR: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorKind.UNDETECTABLE: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorKind.UNSPEAKABLE: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorKind.UNPROCESSABLE: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorKind.TIMEOUT: HTTPStatus.UNPROCESSABLE_ENTITY,  # this input ran past its budget
    ErrorKind.ENGINE: HTTPStatus.SERVICE_UNAVAILABLE,
}
# Answers that mean "not now": the client may send the same request again later.
RETRYABLE = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
RETRY_AFTER_S = 1


class ErrorDetail(BaseModel):
    """What was wrong with one field or one item of a list field."""

    model_config = ConfigDict(extra="allow")

    message: str
    field: str | None = None
    index: int | None = Field(None, description="position in the list field, from 0")
    kind: str | None = Field(None, description="the error kind: " + ", ".join(k.value for k in ErrorKind))


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="what was wrong and what is accepted")
    detail: list[ErrorDetail] | None = Field(None, description="per field or item, when there is more to say")


class RequestError(Exception):
    """An error answer: status, message, and optional per-field details."""

    def __init__(self, status: int, message: str, detail: Sequence[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.detail = [dict(d) for d in detail] if detail else None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.status in RETRYABLE:
            return [(b"retry-after", str(RETRY_AFTER_S).encode())]
        return []


def status_of(kind: ErrorKind | str) -> int:
    return int(STATUS[ErrorKind(kind)])


def from_item_error(error: ItemError, field: str | None = None, index: int | None = None) -> RequestError:
    """One runtime ItemError as the answer of a whole request."""
    prefix = f"{field}[{index}]: " if field is not None and index is not None else ""
    prefix = prefix or (f"{field}: " if field else "")
    detail = {
        "field": field,
        "index": index,
        "kind": error.kind.value,
        "message": error.message,
        **error.detail,
    }
    return RequestError(status_of(error.kind), prefix + error.message, [_compact(detail)])


def single(results: Sequence[Any], field: str | None = None) -> Any:
    """The one result of a one-item batch; its ItemError as the request's error."""
    (result,) = results
    if isinstance(result, ItemError):
        raise from_item_error(result, field)
    return result


def item_errors(results: Sequence[Any], field: str) -> list[Any]:
    """`results` when none is an ItemError; else one RequestError naming every failed item
    of `field` (its status is the first failure's)."""
    failures = [(index, r) for index, r in enumerate(results) if isinstance(r, ItemError)]
    if not failures:
        return list(results)
    message = "; ".join(f"{field}[{index}]: {error.message}" for index, error in failures)
    detail = [
        _compact(
            {
                "field": field,
                "index": index,
                "kind": error.kind.value,
                "message": error.message,
                **error.detail,
            }
        )
        for index, error in failures
    ]
    raise RequestError(status_of(failures[0][1].kind), message, detail)


def _compact(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if value is not None}
