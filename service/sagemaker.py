"""SageMaker's bring-your-own-container contract: a decoder in front of the same operations.

    GET  /ping                  200 once every model is ready (answers within 2 s)
    POST /invocations           one operation's request
    GET  /execution-parameters  Batch Transform's tuning answer

/invocations picks the operation from `X-Amzn-SageMaker-Custom-Attributes:
task=<operation>[;field=value...]` (or PAIS_SAGEMAKER_DEFAULT_TASK) and turns the body
into that operation's request model; the rest is what REST does (service.app.run_operation),
with nothing encoded again or replayed through the HTTP stack:

- the REST body as it is (multipart for file operations, JSON for the others);
- a raw file (`image/jpeg`, `video/mp4`, ...) for an operation with a file field of that
  media type, the custom attributes' other keys being its form fields (`top_k=3`);
- a JSON object whose file field holds base64 (one string or a list).

With SAGEMAKER_BATCH=true a JSON Lines body is split: each line is one such JSON record
(with an optional "task" key) and the answer has exactly one JSON line per input line, in
order: the result, or {"error", "status"} for a record that failed. Lines run
concurrently (a bounded number at a time), so the runners batch them.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import logging
import os
import random
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import Headers

from .app import run_operation
from .context import Served
from .errors import RETRYABLE, RequestError
from .http_io import (
    MULTIPART,
    ClientGone,
    Receive,
    Send,
    form_values,
    json_values,
    media_type,
    parse_form,
    parse_json,
    read_body,
    result_adapter,
    send_bytes,
    send_result,
    validate_request,
)
from .task import Binary, Operation, Streamed, Task

CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
ATTRIBUTE_SEPARATOR = re.compile(r";|,(?=\s*[A-Za-z_][\w.-]*\s*=)")
JSON_LINES_TYPES = {
    "application/jsonlines",
    "application/json-lines",
    "application/x-ndjson",
    "application/json",
    "",
}
PING_TIMEOUT_S = 1.8  # SageMaker wants /ping answered within 2 s
OFF_LOOP_BYTES = 1024 * 1024
log = logging.getLogger("pais.sagemaker")
T = TypeVar("T")
Scope = dict[str, Any]


@dataclass(frozen=True)
class BatchSettings:
    """What SageMaker Batch Transform tells the container through its environment."""

    enabled: bool
    max_payload_bytes: int
    strategy: str
    max_concurrent_transforms: int

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BatchSettings:
        env = os.environ if environ is None else environ
        return cls(
            enabled=env.get("SAGEMAKER_BATCH", "").lower() == "true",
            max_payload_bytes=int(float(env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or "6") * 1024 * 1024),
            strategy=env.get("SAGEMAKER_BATCH_STRATEGY") or "MULTI_RECORD",
            max_concurrent_transforms=int(env.get("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS") or "1"),
        )


class SageMakerRoutes:
    def __init__(self, served: Served, batch: BatchSettings | None = None, max_parallel_records: int = 64):
        self.served = served
        self.operations: dict[str, tuple[Task, Operation]] = {
            op.name: (task, op) for task in served.tasks for op in task.operations
        }
        configured = served.settings.sagemaker_default_task
        if configured and configured not in self.operations:
            raise ValueError(
                f"PAIS_SAGEMAKER_DEFAULT_TASK={configured!r} is not an operation served: "
                f"{', '.join(self.operations)}"
            )
        self.default = configured or (
            "classify" if "classify" in self.operations else next(iter(self.operations), "")
        )
        self.batch = batch or BatchSettings.from_env()
        # Batch Transform never sends more than MaxPayloadInMB (0 means unlimited, chunked);
        # real-time calls obey the REST body limit.
        if self.batch.enabled and self.batch.max_payload_bytes > 0:
            self.max_body, self.limit_name = self.batch.max_payload_bytes, "SAGEMAKER_MAX_PAYLOAD_IN_MB"
        else:
            self.max_body, self.limit_name = served.settings.max_request_bytes, "PAIS_MAX_REQUEST_BYTES"
        self.max_parallel_records = max_parallel_records

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/ping"): self.ping,
            ("GET", "/execution-parameters"): self.execution_parameters,
            ("POST", "/invocations"): self.invocations,
        }

    async def ping(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            healthy = await asyncio.wait_for(self.served.ready(), PING_TIMEOUT_S)
        except TimeoutError:
            healthy = False
        if not healthy:
            raise RequestError(503, "models are still loading")
        await send_bytes(send, 200, b"{}")

    async def execution_parameters(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {
            "MaxConcurrentTransforms": max(1, self.batch.max_concurrent_transforms),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": self.batch.max_payload_bytes // (1024 * 1024),  # 0: unlimited
        }
        await send_bytes(send, 200, json.dumps(body).encode())

    async def invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        attributes = parse_custom_attributes(headers.get(CUSTOM_ATTRIBUTES, ""))
        media = media_type(headers)
        body = await read_body(receive, self.max_body, self.limit_name)
        if self.batch.enabled and media in JSON_LINES_TYPES:
            return await self._batch(send, body, attributes)
        task, op, request = await self.decode(headers, media, body, attributes)
        result = await run_operation(self.served, task, op, request, receive)
        if isinstance(result, Streamed):  # an InvokeEndpoint answer is one body
            result = Binary(
                b"".join([chunk async for chunk in result.chunks]), result.media_type, result.headers
            )
        await send_result(send, op, result)

    async def decode(
        self, headers: Headers, media: str, body: bytes, attributes: dict[str, str]
    ) -> tuple[Task, Operation, Any]:
        """The operation an invocation body is for, and its request."""
        options = dict(attributes)
        named = options.pop("task", None)
        if media == "application/json" or (media == "" and body.lstrip()[:1] == b"{"):
            record = await off_loop_if_large(len(body), parse_json, body, self.served.settings.max_json_depth)
            return await off_loop_if_large(len(body), self.from_record, record, named, options, "body")
        task, op = self.operation(named)
        model = op.request_type
        files = op.file_fields()
        if media == MULTIPART and files:
            values = await parse_form(headers, _once(body), model, max_files=64)
        elif files and (field := _raw_field(files, media)):
            values = {field: [body] if files[field][1] else body}
        else:
            raise RequestError(
                415,
                f"operation {op.name!r} accepts {', '.join(_accepted(op))}; "
                f"got {media or 'no Content-Type'!r}",
            )
        for name, value in form_values(model, list(options.items())).items():
            values.setdefault(name, value)
        return task, op, validate_request(model, values, self.served.settings.section(task.name), task.name)

    def from_record(
        self, record: Any, named: str | None, options: dict[str, str], what: str
    ) -> tuple[Task, Operation, Any]:
        """A JSON object (an invocation body or a batch line) as an operation's request:
        its own "task" key over the custom attributes', file fields as base64."""
        if not isinstance(record, dict):
            raise RequestError(400, f"{what} must be a JSON object")
        record = dict(record)
        own = record.pop("task", None)
        task, op = self.operation(own if isinstance(own, str) else named)
        values = json_values(op.request_type, record, base64_files=True, what=what)
        for name, value in form_values(op.request_type, list(options.items())).items():
            values.setdefault(name, value)
        return (
            task,
            op,
            validate_request(op.request_type, values, self.served.settings.section(task.name), task.name),
        )

    def operation(self, name: str | None) -> tuple[Task, Operation]:
        chosen = name or self.default
        try:
            return self.operations[chosen]
        except KeyError:
            raise RequestError(
                404,
                f"unknown task {chosen!r}; tasks: {', '.join(self.operations)} "
                "(custom attribute task=<name>)",
            ) from None

    async def _batch(self, send: Send, body: bytes, attributes: dict[str, str]) -> None:
        lines = await off_loop_if_large(len(body), split_lines, body)
        outputs: list[Any] = [None] * len(lines)
        pending = iter(range(len(lines)))  # shared by the workers: each index taken once

        async def worker() -> None:
            for index in pending:
                outputs[index] = await self._record(lines[index], attributes)

        # A fixed number of workers, not a task per line: a 100 MB body of small records
        # would otherwise be a million tasks at once.
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.max_parallel_records, len(lines))):
                group.create_task(worker())
        overloaded = sum(1 for out in outputs if isinstance(out, dict) and out.get("status") in RETRYABLE)
        if overloaded:
            # Overload is not an answer: let SageMaker retry the mini-batch rather than
            # write error lines for records that were never refused for their content.
            raise RequestError(503, f"{overloaded} of {len(lines)} records were refused for overload; retry")
        payload = await off_loop_if_large(len(body), json_lines, outputs)
        await send_bytes(send, 200, payload, "application/jsonlines")

    async def _record(self, line: str, attributes: dict[str, str]) -> Any:
        """One batch line -> its output object; failures become {"error", "status"}."""
        options = dict(attributes)
        named = options.pop("task", None)
        try:
            if not line.strip():
                raise RequestError(400, "empty record: each line must be a JSON object")
            record = parse_json(line, self.served.settings.max_json_depth, "record")
            task, op, request = self.from_record(record, named, options, "record")
            return await self._answer(task, op, request)
        except RequestError as error:
            return {**error.body(), "status": error.status}
        except ClientGone:
            raise
        except Exception:  # one record's bug must not fail the mini-batch around it
            log.exception("batch record failed")
            return {
                "error": "internal error while processing this record; the failure is logged",
                "status": 500,
            }

    async def _answer(self, task: Task, op: Operation, request: Any) -> Any:
        """The record's answer as a JSON value; "not now" (429/503) is retried with backoff."""
        for delay in (*RETRY_DELAYS_S, None):
            try:
                result = await run_operation(self.served, task, op, request)
                break
            except RequestError as error:
                if error.status not in RETRYABLE or delay is None:
                    raise
                await asyncio.sleep(delay * (0.5 + random.random()))
        if isinstance(result, Streamed):
            result = Binary(b"".join([chunk async for chunk in result.chunks]), result.media_type)
        if isinstance(result, Binary):
            return {"content_type": result.media_type, "base64": base64.b64encode(result.content).decode()}
        return result_adapter(op.result_type).dump_python(result, mode="json")


def _raw_field(files: dict[str, Any], media: str) -> str | None:
    """The file field a raw body of `media` fills: the one whose media types match."""
    for name, (marker, _) in files.items():
        if any(fnmatch.fnmatch(media, pattern) for pattern in marker.media_types):
            return name
    return None


def _accepted(op: Operation) -> list[str]:
    media = [m for marker, _ in op.file_fields().values() for m in marker.media_types]
    return [*media, MULTIPART, "application/json"] if media else ["application/json"]


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def off_loop_if_large(size: int, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread when it works on a body over OFF_LOOP_BYTES:
    decoding base64 and JSON of tens of MB would hold the event loop that every request,
    /ping included, is answered on."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(function, *args)
    return function(*args)


def split_lines(body: bytes) -> list[str]:
    """A JSON Lines body's records; the newline that ends the last one starts no other."""
    lines = body.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1].strip() == "":
        lines.pop()
    return lines


def json_lines(outputs: list[Any]) -> bytes:
    return "".join(json.dumps(out, separators=(",", ":")) + "\n" for out in outputs).encode()


def parse_custom_attributes(value: str) -> dict[str, str]:
    """`task=detect;top_k=3` -> {"task": "detect", "top_k": "3"} (SageMaker passes the
    header through untouched). `;` separates pairs; so does a `,` that starts another
    `key=`, so a value may be a list: `task=detect;classes=cat,cup`."""
    attributes: dict[str, str] = {}
    for part in ATTRIBUTE_SEPARATOR.split(value):
        key, sep, val = part.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = val.strip()
    return attributes
