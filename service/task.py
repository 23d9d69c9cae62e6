"""What a task declares, once: the types every file in service/tasks/ fills in.

A task is a runtime from models/ plus the HTTP operations that reach it:

    TASK = Task(
        name="classification",
        summary="ImageNet-1k image classification",
        runtime="models.classification:ImageClassifier",
        settings=ClassificationSettings,      # its PAIS_CLASSIFICATION_* section
        operations=(Operation("/classify", classify, batch=BatchJob("image", "images", 16)),),
    )

The operation's handler is an `async def (ctx, request) -> result` whose type hints are
the schema: the request model's fields (files marked with `Files`) are what the route
accepts, over multipart or JSON, and also over SageMaker /invocations and Batch Transform
lines; the return type is the 200 answer. From these declarations follow the entry
service's routes, the model services, the settings and their docs, the OpenAPI document,
the SageMaker decoding and what the SDK's batch jobs send.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from .context import Context
    from .settings import TaskSettings

ServeIn = Literal["entry", "model-service"]


@dataclass(frozen=True)
class Files:
    """Marks a request field as uploaded files: `Annotated[list[bytes], Files(...)]` for one
    or more files, `Annotated[bytes, Files(...)]` for exactly one. `media_types` are what
    the field accepts ("image/jpeg"; "video/*"): documented, and the raw SageMaker bodies
    that become this field."""

    media_types: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Limit:
    """A bound that a setting of the task's section sets: the largest number (int), the
    most items (list) or characters (str); with `items`, the characters of each string of
    a list. Checked after the schema (`status` when over: 413 for sizes, 400 for values)
    and written into the OpenAPI document with the configured value."""

    setting: str
    status: int = 413
    items: bool = False
    what: str = ""  # how the message names the quantity ("images", "characters")


@dataclass(frozen=True)
class BinaryAnswer:
    """An operation whose 200 answer is a file (an image, audio), not JSON."""

    media_types: tuple[str, ...]
    description: str
    headers: dict[str, str] = field(default_factory=dict)  # documented response headers
    streamed: bool = False  # sent as it is produced (chunked)


@dataclass
class Binary:
    """What a handler returns for a BinaryAnswer operation."""

    content: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Streamed:
    """What a handler returns for a streamed BinaryAnswer: chunks as they are ready."""

    chunks: AsyncIterator[bytes]
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


InputKind = Literal["image", "video", "text", "json"]


@dataclass(frozen=True)
class BatchJob:
    """How `pais batch` turns input records into this operation's requests.

    kind: what a record holds (image or video files, texts, JSON requests);
    payload: the request field a record fills (None: the record is the whole JSON request);
    group: records per request when the field is a list (1: one request per record);
    split: how a JSON answer splits into one result per record: "items" (a list, one per
      input), "field:<name>" (that field of the answer is the list), "whole" (one record,
      the answer as it is); None for a binary answer."""

    kind: InputKind
    payload: str | None
    group: int = 1
    split: str | None = "whole"


@dataclass(frozen=True)
class Operation:
    """One POST route of a task. `name` defaults to the handler's name; it is the
    operationId, the SageMaker task attribute (`task=classify`), the batch task and the
    SDK method."""

    path: str
    handler: Callable[..., Awaitable[Any]]
    name: str = ""
    answer: BinaryAnswer | None = None  # None: JSON, typed by the handler's return annotation
    statuses: tuple[int, ...] = ()  # error statuses this operation can answer, beyond every route's
    batch: BatchJob | None = None
    max_body_bytes: Callable[[TaskSettings], int] | None = None  # its own body limit (video)
    body_limit_setting: str = ""  # the setting that limit comes from, named in a 413
    # the values some fields accept, known once the model is loaded (a detector's labels,
    # the languages served): {field: values}, written into the OpenAPI document as enums
    choices: Callable[[Context], Awaitable[dict[str, list[str]]]] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.handler.__name__)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        return doc.split("\n\n")[0].replace("\n", " ")

    @property
    def description(self) -> str:
        return inspect.getdoc(self.handler) or ""

    @property
    def request_type(self) -> type[BaseModel]:
        names = list(inspect.signature(self.handler).parameters)
        return type_hints(self.handler)[names[1]]

    @property
    def result_type(self) -> Any:
        return type_hints(self.handler)["return"]

    def file_fields(self) -> dict[str, tuple[Files, bool]]:
        """{field: (Files marker, is a list)} of the request model."""
        return file_fields(self.request_type)


@dataclass(frozen=True)
class Query:
    """One GET route of a task (e.g. /translate/languages): an `async def (ctx) -> result`
    whose return annotation is the 200 answer's schema."""

    path: str
    handler: Callable[[Context], Awaitable[Any]]

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.handler) or "").split("\n\n")[0].replace("\n", " ")

    @property
    def result_type(self) -> Any:
        return type_hints(self.handler)["return"]


@dataclass(frozen=True)
class BatchCost:
    """How an entry-served runtime bounds a batch beyond its item count: `cost(item)`
    summed over a batch stays within the section's setting `limit` (at least one item
    runs). It bounds how long one batch holds the runtime, so a small request sent while
    a large one runs waits for at most one such batch."""

    cost: Callable[[Any], int]
    limit: str


@dataclass(frozen=True)
class Task:
    """A task: its runtime, settings section, routes and the tasks it builds on.

    runtime: "module:Class" of a models/ runtime (imported only where it runs, so the
      entry service never imports torch for a task served by a model service); None for a
      task with no model of its own (video uses detection's and classification's).
    reads: runtime methods without arguments that the entry service may ask through the
      runner (e.g. "languages"); their answers are cached per worker.
    requires: tasks whose runners this task's handlers call (served with it)."""

    name: str
    summary: str
    runtime: str | None
    settings: type[TaskSettings]
    operations: tuple[Operation, ...] = ()
    queries: tuple[Query, ...] = ()
    reads: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # requests may name a custom model of the task (model=NAME[:version]: classifiers
    # trained with models.finetune), served beside the configured one (service.named_models)
    named_models: bool = False
    # entry-served runtimes: batches that may run at once (a runtime that is thread-safe
    # and has parallel engines), and the cost bound of one batch
    lanes: int = 1
    batch_cost: BatchCost | None = None
    # the runtime's load() keyword options (beyond source, device and dtype), from the
    # task's section and the global settings
    runtime_options: Callable[[Any, Any], dict[str, Any]] = field(default=lambda section, settings: {})

    @property
    def default_source(self) -> str | None:
        return getattr(self.settings(), "model", None)


@functools.cache
def type_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    """A handler's resolved type hints (resolving evaluates strings: once per handler)."""
    return typing.get_type_hints(handler, include_extras=True)


@functools.cache
def limits(model: type[BaseModel]) -> list[tuple[str, Limit]]:
    """(field, Limit) of the request model, a field possibly twice (count and length)."""
    return [
        (name, marker)
        for name, info in model.model_fields.items()
        for marker in info.metadata
        if isinstance(marker, Limit)
    ]


@functools.cache
def file_fields(model: type[BaseModel]) -> dict[str, tuple[Files, bool]]:
    found = {}
    for name, info in model.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, Files)), None)
        if marker is not None:
            found[name] = (marker, typing.get_origin(info.annotation) is list)
    return found
