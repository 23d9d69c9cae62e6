"""What each batch task sends and gets back, built on the same `pais.calls` builders as the
clients: how records become one request (several images or texts per request where the
endpoint takes a list) and how the answer splits back into one result per record."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import calls
from ..calls import Call, json_body
from ..errors import ResponseFormatError
from ..operations import Operation
from .records import InlineFile, InputKind, LocalFile, Record, read_file, read_text


@dataclass(frozen=True)
class Task:
    name: str
    path: str  # the REST endpoint (checked against the server's OpenAPI before a job starts)
    kind: InputKind  # what the input holds: image or video files, texts, JSON requests
    build: Callable[..., Call[Any]]
    payload: str | None  # the builder argument a record fills (None: the record is the request)
    batchable: bool  # the endpoint takes a list: several records per request
    default_batch_size: int = 1
    split: Callable[[Any, int], list[Any]] | None = None  # answer -> one result per record
    fields: tuple[str, ...] | None = None  # the request's fields, when `build` takes **fields

    @property
    def option_names(self) -> list[str]:
        names = self.fields if self.fields is not None else inspect.signature(self.build).parameters
        return [name for name in names if name != self.payload]

    def check_options(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            raise ValueError(
                f"{self.name} has no option {', '.join(unknown)}; options: {', '.join(self.option_names)}"
            )

    def options_of(self, record: Record, options: dict[str, Any]) -> dict[str, Any]:
        """The job's options with the record's own fields over them."""
        merged = {**options, **record.fields}
        if self.kind == "text":
            merged.pop("text", None)
        return merged

    def group_key(self, record: Record, options: dict[str, Any]) -> str:
        return json.dumps(self.options_of(record, options), sort_keys=True, default=str)

    async def load(self, record: Record) -> Any:
        """What the record sends: a local path (streamed from disk when the request goes
        out), bytes (S3, inline), a text, or nothing (JSON tasks)."""
        if self.kind == "json":
            return None
        if self.kind == "text":
            if record.file is None:
                text = record.fields.get("text")
                if not isinstance(text, str):
                    raise ValueError('the record has no "text" (a string)')
                return text
            return await asyncio.to_thread(read_text, record.file)
        assert record.file is not None
        if isinstance(record.file, LocalFile):
            if not record.file.path.is_file():
                raise FileNotFoundError(f"no such file: {record.file.path}")
            return record.file.path
        if isinstance(record.file, InlineFile):
            return record.file.data
        return await asyncio.to_thread(read_file, record.file)

    def call(self, payloads: list[Any], options: dict[str, Any]) -> Call[Any]:
        """One request for records with the same options. A TypeError names a missing or
        unknown option."""
        kwargs = dict(options)
        if self.payload is not None:
            kwargs[self.payload] = payloads if self.batchable else payloads[0]
        call = self.build(**kwargs)
        if self.split is None:  # a file answer (Binary) is parsed as the client parses it
            return call
        return dataclasses.replace(call, parse=json_body)

    def results(self, answer: Any, count: int) -> list[Any]:
        if self.split is None:
            return [answer]
        results = self.split(answer, count)
        if len(results) != count:
            raise ResponseFormatError(f"{self.name}: {count} inputs sent, {len(results)} results back")
        return results


def _one_per_input(answer: Any, count: int) -> list[Any]:
    if not isinstance(answer, list):
        raise ResponseFormatError(f"expected a JSON array, got {answer!r:.200}")
    return answer


def _translations(answer: Any, count: int) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("translations"), list):
        raise ResponseFormatError(f"expected {{'translations': [...]}}, got {answer!r:.200}")
    rest = {key: value for key, value in answer.items() if key != "translations"}
    return [{**rest, "translation": text} for text in answer["translations"]]


def _whole(answer: Any, count: int) -> list[Any]:
    return [answer]


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("classify", "/classify", "image", calls.classify, "images", True, 16, _one_per_input),
        Task("embed", "/embed", "image", calls.embed, "images", True, 16, _one_per_input),
        Task("detect", "/detect", "image", calls.detect, "images", True, 16, _one_per_input),
        Task("detect_annotated", "/detect/annotated", "image", calls.detect_annotated, "image", False),
        Task("analyze_video", "/analyze_video", "video", calls.analyze_video, "video", False, split=_whole),
        Task("translate", "/translate", "text", calls.translate, "texts", True, 32, _translations),
        Task("synthesize", "/synthesize", "text", calls.synthesize, "text", False),
        Task("recommend", "/recommend", "json", calls.recommend, None, False, split=_whole),
        Task("similar_items", "/similar_items", "json", calls.similar_items, None, False, split=_whole),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}") from None


def _field(name: str) -> Callable[[Any, int], list[Any]]:
    """An answer whose `name` field is the list of per-record results."""

    def split(answer: Any, count: int) -> list[Any]:
        if not isinstance(answer, dict) or not isinstance(answer.get(name), list):
            raise ResponseFormatError(f"expected {{{name!r}: [...]}}, got {answer!r:.200}")
        rest = {key: value for key, value in answer.items() if key != name}
        return [{**rest, name: value} for value in answer[name]]

    return split


SPLITS: dict[str | None, Callable[[Any, int], list[Any]] | None] = {
    "items": _one_per_input,
    "whole": _whole,
    None: None,
}


def task_from_operation(operation: Operation) -> Task:
    """A batch task for an operation the SDK has no typed method for, from its OpenAPI
    description (x-pais-batch: what a record fills, how many go in one request, how the
    answer splits)."""
    batch = operation.batch
    if batch is None:
        raise ValueError(f"operation {operation.name!r} declares no batch record format (x-pais-batch)")
    split_name = batch.get("split")
    split = (
        _field(split_name.split(":", 1)[1])
        if split_name and split_name.startswith("field:")
        else SPLITS[split_name]
    )
    group = int(batch.get("group") or 1)
    return Task(
        operation.name,
        operation.path,
        batch["kind"],
        operation.call,
        batch.get("payload"),
        group > 1,
        group,
        split,
        fields=operation.fields,
    )
