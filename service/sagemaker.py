"""SageMaker's bring-your-own-container contract, served by the same BentoML process.

    GET  /ping                  200 once every model service is ready (answers within 2 s)
    POST /invocations           one inference, routed to a task's REST endpoint
    GET  /execution-parameters  Batch Transform's tuning answer

/invocations picks the task from `X-Amzn-SageMaker-Custom-Attributes: task=<name>[;k=v]`
(or PAIS_SAGEMAKER_DEFAULT_TASK) and turns the body into the task's REST request, which is
then answered by the very same endpoint code (limits, validation, errors, batching):

- the REST body as is (multipart for image tasks, JSON for text tasks);
- a raw media body (`image/jpeg`, `video/mp4`, ...) for tasks that take a file: it becomes
  the file field, and the custom attributes' other keys become form fields (`top_k=3`);
- a JSON object for a file task, whose file field holds base64 (one string or a list).

With SAGEMAKER_BATCH=true a JSON Lines body (SplitType Line) is split: each line is one
such JSON record (with an optional "task" key) and the answer has exactly one JSON line
per input line, in order: the result, or {"error", "status"} for a record that failed.
Lines run concurrently, so the model services batch them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .middleware import ASGIApp, Message, Receive, Scope, Send, send_json

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
RETRYABLE = {429, 503}
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
ATTRIBUTE_SEPARATOR = re.compile(r";|,(?=\s*[A-Za-z_][\w.-]*\s*=)")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
log = logging.getLogger("pais.sagemaker")
T = TypeVar("T")
# Batch bodies in these types are split into line records; anything else (a raw image
# sent with SplitType None) is one record answered like a real-time call.
JSON_LINES_TYPES = {
    "application/jsonlines",
    "application/json-lines",
    "application/x-ndjson",
    "application/json",
    "",
}
PING_TIMEOUT_S = 1.8  # SageMaker wants /ping answered within 2 s
OFF_LOOP_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InvocationRoute:
    """How /invocations reaches one task's REST endpoint."""

    task: str  # the name used in custom attributes and batch records: "classify"
    path: str  # the REST endpoint: "/classify"
    file_field: str | None = None  # multipart file field for raw/base64 bodies; None: JSON endpoint
    raw_types: tuple[str, ...] = ()  # media type prefixes accepted as a raw body ("image/")


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


class InvocationError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SubResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == b"content-type":
                return value.decode("latin-1")
        return "application/octet-stream"


class SageMakerMiddleware:
    """Serves /ping, /invocations and /execution-parameters in front of the app."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[InvocationRoute],
        default_task: str,
        max_request_bytes: int,
        batch: BatchSettings | None = None,
        max_parallel_records: int = 64,
    ):
        self.app = app
        self.routes = {route.task: route for route in routes}
        if default_task not in self.routes:
            raise ValueError(f"default task {default_task!r} is not one of: {', '.join(self.routes)}")
        self.default_task = default_task
        self.batch = batch or BatchSettings.from_env()
        # Batch Transform never sends more than MaxPayloadInMB (0 means unlimited, chunked);
        # real-time calls obey the REST body limit.
        if self.batch.enabled and self.batch.max_payload_bytes > 0:
            self.max_body, self.limit_name = self.batch.max_payload_bytes, "SAGEMAKER_MAX_PAYLOAD_IN_MB"
        else:
            self.max_body, self.limit_name = max_request_bytes, "PAIS_MAX_REQUEST_BYTES"
        self.max_parallel_records = max_parallel_records

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in ("/ping", "/invocations", "/execution-parameters"):
            return await self.app(scope, receive, send)
        method = scope["method"]
        if path == "/ping" and method in ("GET", "HEAD"):
            return await self._ping(scope, send)
        if path == "/execution-parameters" and method == "GET":
            return await send_json(
                send,
                200,
                {
                    "MaxConcurrentTransforms": max(1, self.batch.max_concurrent_transforms),
                    "BatchStrategy": "MULTI_RECORD",
                    "MaxPayloadInMB": self.batch.max_payload_bytes // (1024 * 1024),  # 0: unlimited
                },
            )
        if path == "/invocations" and method == "POST":
            try:
                return await self._invocations(scope, receive, send)
            except InvocationError as error:
                return await send_json(send, error.status, {"error": error.message})
            except Exception:
                log.exception("/invocations failed")
                return await send_json(send, 500, {"error": "internal error; see the server log"})
        await send_json(send, 405, {"error": f"{method} {path} is not allowed"})

    # -- /ping ---------------------------------------------------------------------------

    async def _ping(self, scope: Scope, send: Send) -> None:
        try:
            ready = await asyncio.wait_for(self._subrequest(scope, "GET", "/readyz", [], b""), PING_TIMEOUT_S)
            healthy = ready.status == 200
        except TimeoutError:
            healthy = False
        if healthy:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send_json(send, 503, {"error": "models are still loading"})

    # -- /invocations --------------------------------------------------------------------

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        headers = dict(scope["headers"])
        attributes = parse_custom_attributes(headers.get(CUSTOM_ATTRIBUTES, b"").decode("latin-1"))
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if self.batch.enabled and content_type.split(";")[0].strip().lower() in JSON_LINES_TYPES:
            return await self._batch(scope, send, body, attributes)
        route, sub_headers, sub_body = await off_loop_if_large(
            len(body), self._rest_request, content_type, body, attributes, "body"
        )
        response = await self._subrequest(scope, "POST", route.path, sub_headers, sub_body)
        await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _batch(self, scope: Scope, send: Send, body: bytes, attributes: dict[str, str]) -> None:
        lines = await off_loop_if_large(len(body), split_lines, body)
        outputs: list[Any] = [None] * len(lines)
        pending = iter(range(len(lines)))  # shared by the workers: each index taken once

        async def worker() -> None:
            for index in pending:
                outputs[index] = await self._record(scope, lines[index], attributes)

        # A fixed number of workers, not a task per line: a 100 MB body of small records
        # would otherwise be a million tasks at once.
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.max_parallel_records, len(lines))):
                group.create_task(worker())
        overloaded = sum(1 for out in outputs if isinstance(out, dict) and out.get("status") in RETRYABLE)
        if overloaded:
            # Overload is not an answer: let SageMaker retry the mini-batch rather than
            # write error lines for records that were never refused for their content.
            raise InvocationError(
                503, f"{overloaded} of {len(lines)} records were refused for overload; retry"
            )
        payload = await off_loop_if_large(len(body), json_lines, outputs)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/jsonlines"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _record(self, scope: Scope, line: str, attributes: dict[str, str]) -> Any:
        """One batch line -> its output object; failures become {"error", "status"}."""
        try:
            if not line.strip():
                raise InvocationError(400, "empty record: each line must be a JSON object")
            route, sub_headers, sub_body = self._rest_request("application/json", line, attributes, "record")
            response = await self._subrequest_with_retries(scope, route.path, sub_headers, sub_body)
        except InvocationError as error:
            return {"error": error.message, "status": error.status}
        except Exception:  # one record's bug must not fail the mini-batch around it
            log.exception("batch record failed")
            return {"error": "internal error while processing this record", "status": 500}
        if response.status != 200:
            try:
                message = json.loads(response.body).get("error", "")
            except (ValueError, AttributeError):
                message = response.body.decode(errors="replace")
            return {"error": message or "request failed", "status": response.status}
        if response.content_type.startswith("application/json"):
            return json.loads(response.body)
        return {"content_type": response.content_type, "base64": base64.b64encode(response.body).decode()}

    async def _subrequest_with_retries(
        self, scope: Scope, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> SubResponse:
        """429/503 mean "not now" (concurrency limit, batching latency budget): back off
        and try again before giving up on the record."""
        for delay in (*RETRY_DELAYS_S, None):
            response = await self._subrequest(scope, "POST", path, headers, body)
            if response.status not in RETRYABLE or delay is None:
                return response
            await asyncio.sleep(delay * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _rest_request(
        self, content_type: str, body: bytes | str, attributes: dict[str, str], what: str
    ) -> tuple[InvocationRoute, list[tuple[bytes, bytes]], bytes]:
        """The task and the REST request for an invocation body or batch record. A JSON
        object may name its task (`"task": "detect"`), over the custom attributes'."""
        options = dict(attributes)
        default_task = options.pop("task", None)
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json" or (media == "" and body.lstrip()[:1] in (b"{", "{")):
            record = parse_json_object(body, what)
            route = self._route(record.pop("task", None) or default_task)
            return route, *json_to_rest_request(route, record, options)
        route = self._route(default_task)
        return route, *to_rest_request(route, content_type, body, options)  # type: ignore[arg-type]

    def _route(self, task: str | None) -> InvocationRoute:
        name = task or self.default_task
        try:
            return self.routes[name]
        except KeyError:
            raise InvocationError(
                400, f"unknown task {name!r}; tasks: {', '.join(self.routes)} (custom attribute task=<name>)"
            ) from None

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvocationError(400, "client disconnected before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise InvocationError(413, f"payload over {self.max_body} bytes ({self.limit_name})")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _subrequest(
        self, scope: Scope, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> SubResponse:
        """Run one request through the inner app, in process, and collect its answer."""
        sub_scope = {
            **scope,
            # uvicorn's per-request state: each sub-request needs its own, or BentoML
            # hands them one upload temp directory and each release deletes the others' files
            "state": {k: v for k, v in (scope.get("state") or {}).items() if k != "temp_dir"},
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
        sent = False

        async def sub_receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # like a client that stays connected
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: Message = {}
        chunks: list[bytes] = []

        async def sub_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(sub_scope, sub_receive, sub_send)
        headers_out = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        payload = b"".join(chunks)
        return SubResponse(
            start.get("status", 500), [*headers_out, (b"content-length", str(len(payload)).encode())], payload
        )


async def off_loop_if_large(size: int, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread when it works on a body over OFF_LOOP_BYTES:
    decoding base64 and JSON and copying tens of MB would hold the event loop that every
    request, /ping included, is answered on."""
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


def to_rest_request(
    route: InvocationRoute, content_type: str, body: bytes, options: dict[str, str]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The REST request (headers, body) that serves a non-JSON /invocations body."""
    media = content_type.split(";")[0].strip().lower()
    if route.file_field is None:
        raise InvocationError(
            415, f"task {route.task!r} takes application/json bodies, not {media or 'none'!r}"
        )
    if media == "multipart/form-data":
        return [(b"content-type", content_type.encode("latin-1"))], body
    if any(media.startswith(prefix) for prefix in route.raw_types):
        return multipart(route.file_field, [(body, media)], options)
    accepted = ", ".join([*(f"{p}*" for p in route.raw_types), "multipart/form-data", "application/json"])
    raise InvocationError(415, f"task {route.task!r} accepts {accepted}; got {media or 'no Content-Type'!r}")


def json_to_rest_request(
    route: InvocationRoute, record: dict[str, Any], options: dict[str, str]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A parsed JSON record -> the REST request: as JSON for JSON endpoints; as multipart
    with the base64 file field decoded for file endpoints."""
    if route.file_field is None:
        return [(b"content-type", b"application/json")], json.dumps(record).encode()
    files = _base64_files(route, record.pop(route.file_field, None))
    fields = {**options, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()}}
    return multipart(route.file_field, files, fields)


def parse_json_object(data: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise InvocationError(400, f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvocationError(400, f"{what} must be a JSON object")
    return value


def _base64_files(route: InvocationRoute, value: Any) -> list[tuple[bytes, str]]:
    if value is None:
        raise InvocationError(400, f"JSON body for task {route.task!r} needs {route.file_field!r} (base64)")
    items = value if isinstance(value, list) else [value]
    files = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvocationError(400, f"{route.file_field}[{index}] must be a base64 string")
        try:
            files.append((base64.b64decode(item, validate=True), "application/octet-stream"))
        except (binascii.Error, ValueError):
            raise InvocationError(400, f"{route.file_field}[{index}] is not valid base64") from None
    return files


def multipart(
    file_field: str, files: list[tuple[bytes, str]], fields: dict[str, str]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A multipart/form-data body with `files` under `file_field` plus plain `fields`.
    Names and values come from clients: names must be plain identifiers (nothing to escape
    in a header), values valid UTF-8."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if not FIELD_NAME.match(name):
            raise InvocationError(400, f"field name {name!r} is not accepted (letters, digits, _ . -)")
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvocationError(400, f"field {name!r} is not valid UTF-8 text") from None
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + encoded
            + b"\r\n"
        )
    for index, (data, media) in enumerate(files):
        disposition = f'form-data; name="{file_field}"; filename="input-{index}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {media}\r\n\r\n"
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())], body
