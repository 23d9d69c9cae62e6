"""The one error type of an item a runtime could not serve, and the closed list of kinds.

A runtime answers a batch with one result or one `ItemError` per item, in order, so one
bad item never fails the others of its batch. The service maps each kind to an HTTP
status in one table (service/errors.py); nothing else decides a status. Torch-free: the
HTTP layer imports it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """Why an item failed. Client errors first, then the runtime's own faults."""

    EMPTY = "empty"  # no content: an empty file, an empty text
    CORRUPT = "corrupt"  # content that does not decode: a truncated JPEG, a broken video
    INVALID = "invalid"  # an option out of range or unknown (a class the model lacks)
    UNSUPPORTED = "unsupported"  # a media type or format the task does not take
    TOO_LARGE = "too_large"  # over a limit: pixels, duration, frames, characters, digits
    UNKNOWN_LANGUAGE = "unknown_language"  # a language code that is not ISO 639-1
    UNKNOWN_ITEM = "unknown_item"  # an id the model does not know (recommendation)
    UNKNOWN_MODEL = "unknown_model"  # a model name (model=...) that no stored model has
    UNSUPPORTED_PAIR = "unsupported_pair"  # valid languages, but no engine serves the pair
    UNDETECTABLE = "undetectable"  # source=auto and no language could be identified
    UNSPEAKABLE = "unspeakable"  # text with nothing the voice can say
    UNPROCESSABLE = "unprocessable"  # well-formed input the model cannot handle (a native crash on it)
    TIMEOUT = "timeout"  # the item ran past its time budget and was stopped
    ENGINE = "engine"  # the runtime itself failed (not the input's fault): retry later


class ItemError(ValueError):
    """One item that could not be served. `detail` is JSON-able context (which ids were
    unknown, which pairs are served) that the service passes on to the client."""

    def __init__(self, kind: ErrorKind | str, message: str, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.detail = dict(detail or {})

    def __reduce__(self) -> tuple[Any, ...]:
        # Items cross process boundaries pickled (model services, sandboxes); subclasses
        # with other constructor signatures override this.
        return (type(self), (self.kind, self.message, self.detail))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind.value!r}, {self.message!r})"
