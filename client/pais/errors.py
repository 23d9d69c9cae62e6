"""Exceptions raised by the SDK.

Every error answer of a PAIS server is JSON `{"error": "<what was wrong>", "detail": ...}`;
`APIError` carries both. 4xx answers are the caller's to fix and are never retried (429 is
the exception: it means "later"); 5xx answers and lost connections are retried first and
raised only when the retries are spent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PaisError(Exception):
    """Base of every exception the SDK raises."""


class APIError(PaisError):
    """The server answered with an error status."""

    def __init__(
        self, status: int, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message  # the server's "error" text
        self.detail = detail  # the server's "detail" (e.g. which images were bad), or None
        self.headers = dict(headers or {})

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (server trouble, not bad input)."""
        return self.status in (408, 429) or self.status >= 500

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "error": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class ClientError(APIError):
    """4xx: the request was wrong; sending it again will not help."""


class BadRequestError(ClientError):
    """400: malformed input (corrupt image, bad option value, unknown field...)."""


class AuthenticationError(ClientError):
    """401: missing or wrong API key (`api_key=` or PAIS_API_KEY)."""


class PermissionDeniedError(ClientError):
    """403."""


class NotFoundError(ClientError):
    """404: an unknown route, or an unknown item (e.g. `similar_items` of an unknown id)."""


class PayloadTooLargeError(ClientError):
    """413: body, image or batch over a server limit; `message` names the limit."""


class UnsupportedMediaTypeError(ClientError):
    """415: a file in a format the endpoint does not take."""


class RateLimitError(ClientError):
    """429: the server's concurrency limit; raised only after the retries are spent."""


class ServerError(APIError):
    """5xx: raised only after the retries are spent (for 502, 503, 504)."""


class ServiceUnavailableError(ServerError):
    """503: overloaded or still loading models."""


class PaisConnectionError(PaisError):
    """The server could not be reached, or dropped the connection (after the retries)."""


class PaisTimeoutError(PaisConnectionError):
    """No answer within the client's timeout. Not retried: the server may still be working."""


class ResponseFormatError(PaisError):
    """The server's answer did not have the shape this SDK expects (version mismatch?)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def api_error(status: int, body: Any, headers: Mapping[str, str] | None = None) -> APIError:
    """The typed exception for an error answer; `body` is its parsed JSON (or text)."""
    if isinstance(body, dict) and "error" in body:
        message, detail = str(body["error"]), body.get("detail")
    elif isinstance(body, str) and body.strip():
        message, detail = body.strip()[:2000], None
    else:
        message, detail = f"HTTP {status}", body or None
    cls = _BY_STATUS.get(status) or (ClientError if status < 500 else ServerError)
    return cls(status, message, detail, headers)
