"""ASGI middleware of the entry service: body limit, API keys, one error shape.

Plain ASGI (no BaseHTTPMiddleware) so the hot path costs a few attribute lookups.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Health checks: load balancers and orchestrators call them without credentials, and they
# must answer even when the server is saturated.
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/ping"})


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`: at once from Content-Length, or as soon as a
    chunked body crosses the limit (the app sees a disconnect; its answer is replaced).
    `path_limits` gives some paths their own limit: {path: (bytes, setting name)}."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, tuple[int, str]] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    def _error(self, limit: tuple[int, str], received: int | None = None) -> dict[str, Any]:
        size = f" ({received} bytes)" if received is not None else ""
        return {"error": f"request body too large{size}; the limit is {limit[0]} bytes ({limit[1]})"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.path_limits.get(scope["path"], (self.max_bytes, "PAIS_MAX_REQUEST_BYTES"))
        max_bytes = limit[0]
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await send_json(send, 400, {"error": "invalid Content-Length header"})
                if declared > max_bytes:
                    return await send_json(send, 413, self._error(limit, declared))
                break
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        replaced = False

        async def refuse() -> None:
            nonlocal replaced
            if not replaced and not started:
                replaced = True
                await send_json(send, 413, self._error(limit))

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return await refuse()  # the app's answer to the cut-off body is replaced
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:  # the app let the disconnect escape (BentoML answers 500 instead)
                raise
        if exceeded:
            await refuse()  # also when the app swallowed the disconnect and sent nothing


class ConcurrencyLimitMiddleware:
    """429 (with Retry-After) beyond `limit` requests in flight in this worker. Health
    checks are never counted nor refused: a saturated server is busy, not dead, and
    SageMaker replaces instances whose /ping fails."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            busy = f"server busy: {self.limit} requests in flight (PAIS_MAX_CONCURRENCY); retry shortly"
            return await send_json(send, 429, {"error": busy}, [(b"retry-after", b"1")])
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class ApiKeyMiddleware:
    """Requires `Authorization: Bearer <key>` or `X-API-Key: <key>` when keys are set."""

    def __init__(self, app: ASGIApp, keys: frozenset[str]):
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                candidate = value[7:].strip()
            elif name == b"x-api-key":
                candidate = value.strip()
            else:
                continue
            # compare against every key without short-circuiting, to leak no timing
            if any([hmac.compare_digest(candidate, key) for key in self.keys]):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys or scope["path"] in HEALTH_PATHS:
            return await self.app(scope, receive, send)
        if not self._authorised(scope):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await send_json(
                send,
                401,
                {
                    "error": "missing or invalid API key; "
                    "send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
                },
                [(b"www-authenticate", b"Bearer")],
            )
        await self.app(scope, receive, send)


class ErrorShapeMiddleware:
    """Gives BentoML's and Starlette's own 4xx answers the project's shape
    `{"error": "...", "detail": ...}`:

    - BentoML wraps exception messages in a one-element list: `[{"error": ...}]`;
    - its input validation says only "1 validation error for Input", the field and the
      reason are in `detail`: they are lifted into the message;
    - unknown routes and methods answer plain text.
    Only 4xx bodies are buffered; successful answers stream through untouched.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: Message | None = None
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if 400 <= message["status"] < 500:
                    start = message
                    return
                return await send(message)
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = _reshape(start["status"], b"".join(chunks), scope)
            headers = [(k, v) for k, v in start["headers"] if k not in (b"content-length", b"content-type")]
            await send_json(send, start["status"], body, headers)

        await self.app(scope, receive, reshaping_send)


def _reshape(status: int, raw: bytes, scope: Scope) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict) and "error" in body[0]:
        body = body[0]
    if isinstance(body, dict) and "error" in body:
        detail = body.get("detail")
        if isinstance(detail, list) and detail and all(isinstance(d, dict) and "loc" in d for d in detail):
            body["error"] = "invalid input: " + "; ".join(
                f"{'.'.join(str(p) for p in d['loc']) or 'body'}: {d.get('msg', 'invalid')}" for d in detail
            )
        return body
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # a non-standard code
        reason = f"HTTP {status}"
    text = raw.decode(errors="replace").strip()
    if status in (404, 405):
        text = f"{scope['method']} {scope['path']} is not an endpoint of this service; see GET /docs.json"
    return {"error": f"{reason}: {text}" if text and text != reason else reason}
