"""The public HTTP surface of the entry service, built from the task declarations.

A plain ASGI app, installed as the entry service's innermost middleware so that BentoML
still serves its own routes (/livez, /readyz, /metrics, the Swagger page). A request
reads top to bottom:

    route (one dict lookup) -> body into the operation's request model (http_io)
    -> the task's handler (its items, the runner's batch, its result)
    -> the answer, typed by the handler's return annotation

with a deadline (PAIS_REQUEST_TIMEOUT_S) and the client's disconnect both stopping the
work. SageMaker's routes decode their bodies into the same request models and call the
same `run_operation` (service/sagemaker.py). Measured on this project's 2-core machine:
BentoML's own API handler cost ~0.3 ms a request over this path, and a mounted Starlette
router ~0.15 ms; light requests are why this path is plain (docs/design.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers

from .context import Served
from .errors import RequestError
from .http_io import (
    JSON_TYPES,
    MULTIPART,
    URLENCODED,
    ClientGone,
    Message,
    Receive,
    Send,
    body_chunks,
    json_body,
    json_values,
    media_type,
    parse_form,
    parse_json,
    read_body,
    send_bytes,
    send_error,
    send_result,
    too_large,
    validate_request,
)
from .task import Operation, Streamed, Task

log = logging.getLogger("pais.app")
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

# BentoML's own routes, passed through to it; any other unknown path is a JSON 404 here.
BENTOML_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/"})
BENTOML_PREFIXES = ("/static_content/", "/assets/")
WATCH_AFTER_S = 0.05


async def run_operation(
    served: Served, task: Task, op: Operation, request: Any, receive: Receive | None = None
) -> Any:
    """The handler on a parsed request, within the request's deadline; stopped early when
    the client goes away (`receive` yields http.disconnect) or the deadline passes."""
    ctx = served.context(task)
    work = asyncio.ensure_future(op.handler(ctx, request))
    # Most requests finish within a few milliseconds: only those still running after
    # WATCH_AFTER_S get a watcher on the client's connection (a task of its own).
    done, _ = await asyncio.wait({work}, timeout=min(WATCH_AFTER_S, ctx.remaining_s()))
    if work in done:
        return work.result()
    gone = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
    try:
        watched = {work, gone} if gone is not None else {work}
        done, _ = await asyncio.wait(watched, timeout=ctx.remaining_s(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if gone is not None:
            gone.cancel()
    if work in done:
        return work.result()
    work.cancel()
    if gone is not None and gone in done:
        raise ClientGone()
    raise RequestError(
        504,
        f"the request did not finish within {served.settings.request_timeout_s} s "
        "(PAIS_REQUEST_TIMEOUT_S); send less per request",
    )


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class OperationRoute:
    """POST <path> of one operation."""

    def __init__(self, served: Served, task: Task, op: Operation):
        self.served, self.task, self.op = served, task, op
        self.model = op.request_type
        self.takes_files = bool(op.file_fields())
        settings = served.settings
        self.section = settings.section(task.name)
        if op.max_body_bytes is not None:
            self.limit = op.max_body_bytes(self.section)
            self.limit_name = op.body_limit_setting
        else:
            self.limit, self.limit_name = settings.max_request_bytes, "PAIS_MAX_REQUEST_BYTES"
        self.accepted = MULTIPART if self.takes_files else "application/json"
        # one more file than a request may hold, so that "too many" is said by the handler
        self.max_files = getattr(self.section, "max_images", 1) + 1

    async def decode(self, scope: Scope, receive: Receive) -> Any:
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise too_large(self.limit, self.limit_name, int(declared))
        media = media_type(headers)
        if self.takes_files and media in (MULTIPART, URLENCODED):
            chunks = body_chunks(receive, self.limit, self.limit_name)
            values = await parse_form(headers, chunks, self.model, max_files=self.max_files)
        elif not self.takes_files and (media in JSON_TYPES or media == ""):
            body = await read_body(receive, self.limit, self.limit_name)
            values = json_values(self.model, parse_json(body, self.served.settings.max_json_depth), False)
        else:
            raise RequestError(
                415, f"{self.op.path} takes {self.accepted} bodies, not {media or 'no Content-Type'!r}"
            )
        return validate_request(self.model, values, self.section, self.task.name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await self.decode(scope, receive)
        result = await run_operation(self.served, self.task, self.op, request, receive)
        if isinstance(result, Streamed):
            # the stream is produced while it is sent: stop producing when the client leaves
            sending = asyncio.ensure_future(send_result(send, self.op, result))
            gone = asyncio.ensure_future(_disconnected(receive))
            try:
                await asyncio.wait({sending, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                if not sending.done():
                    sending.cancel()
                    await asyncio.gather(sending, return_exceptions=True)
                    await result.chunks.aclose()  # type: ignore[attr-defined]
            if sending.done() and not sending.cancelled():
                sending.result()
            return
        await send_result(send, self.op, result)


class GetRoute:
    """GET <path>: a task's query, /models or /stats."""

    def __init__(self, answer: Callable[[], Any], result_type: Any = None):
        self.answer = answer
        self.result_type = result_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        result = await self.answer()
        body = (
            json_body(None, result, self.result_type)
            if self.result_type is not None
            else json.dumps(result).encode()
        )
        await send_bytes(send, 200, body)


class PaisApp:
    """Routes of the served tasks (plus GET /models, /stats, /docs.json and SageMaker's),
    in front of BentoML's app."""

    def __init__(self, app: ASGIApp, served: Served, extra_routes: dict[tuple[str, str], Any] | None = None):
        self.app = app
        self.served = served
        self.routes: dict[tuple[str, str], Any] = {}
        for task in served.tasks:
            for op in task.operations:
                self.routes[("POST", op.path)] = OperationRoute(served, task, op)
            for query in task.queries:
                self.routes[("GET", query.path)] = GetRoute(
                    _bind(query.handler, served, task), query.result_type
                )
        self.routes.update(extra_routes or {})
        self.paths = {path for _, path in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        route = self.routes.get((method, path)) or (
            self.routes.get(("GET", path)) if method == "HEAD" else None
        )
        if route is None:
            if path in BENTOML_PATHS or path.startswith(BENTOML_PREFIXES):
                return await self.app(scope, receive, send)
            return await self._not_found(scope, send)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await route(scope, receive, tracking_send)
        except RequestError as error:
            if not started:
                await send_error(send, error)
        except ClientGone:
            return
        except Exception:
            log.exception("%s %s failed", method, path)
            if not started:
                await send_error(send, RequestError(500, "internal error; the failure is logged"))

    async def _not_found(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path in self.paths:
            allowed = sorted(m for m, p in self.routes if p == path)
            error = RequestError(405, f"{scope['method']} {path} is not accepted; use {', '.join(allowed)}")
            await send_bytes(
                send,
                405,
                json.dumps(error.body()).encode(),
                headers=[(b"allow", ", ".join(allowed).encode())],
            )
            return
        await send_error(
            send,
            RequestError(
                404, f"{scope['method']} {path} is not an endpoint of this service; see GET /docs.json"
            ),
        )


def _bind(handler: Callable[..., Any], served: Served, task: Task) -> Callable[[], Any]:
    async def answer() -> Any:
        return await handler(served.context(task))

    return answer
