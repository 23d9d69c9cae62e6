"""ASGI middleware of the entry service, outside the routes: load shedding and API keys.

Plain ASGI (no BaseHTTPMiddleware) so the hot path costs a few attribute lookups. Body
limits and the error shape belong to the routes themselves (service.app, service.http_io).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from .http_io import Receive, Send, send_bytes
from .playground import PATHS as PLAYGROUND_PATHS

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Health checks: load balancers and orchestrators call them without credentials, and they
# must answer even when the server is saturated.
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/ping"})
# The playground's static page asks for the key itself; its API calls carry it.
PUBLIC_PATHS = HEALTH_PATHS | PLAYGROUND_PATHS


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()
) -> None:
    await send_bytes(send, status, json.dumps(body).encode(), headers=headers)


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
        if scope["type"] not in ("http", "websocket") or not self.keys or scope["path"] in PUBLIC_PATHS:
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
