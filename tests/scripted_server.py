"""A small real HTTP server on 127.0.0.1 whose answers a test scripts in advance (503
twice, then 200; a 4xx; a slow answer...), recording what each request carried. For the
client's retry and error behaviour, which a healthy PAIS server cannot be made to show
on demand."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class LocalServer:
    """A threaded HTTP server on a free 127.0.0.1 port, serving while `running()`."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def closed(self) -> None:
        """Called once the server has stopped."""

    @contextlib.contextmanager
    def running(self) -> Iterator[Any]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
            self.closed()


def reply(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
    handler.send_response(status)
    for name, value in {**headers, "Content-Length": str(len(payload))}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


class ScriptedServer(LocalServer):
    """Answers requests with the scripted answers in order (the last one again once they
    run out), or with `handler(seen)` when given."""

    def __init__(
        self,
        answers: list[Answer] | None = None,
        handler: Callable[[Seen], Answer] | None = None,
        record: bool = True,
    ):
        self.answers = list(answers or [])
        self.handler = handler
        self.record = record  # keep every request in `seen` (off for long runs)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            if self.record:
                self.seen.append(seen)
            if self.handler is not None:
                return self.handler(seen)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                answer = server._next(seen)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if answer.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return
                if isinstance(answer.body, bytes):
                    payload, media = answer.body, "application/octet-stream"
                else:
                    payload, media = json.dumps(answer.body).encode(), "application/json"
                reply(self, answer.status, {"Content-Type": media, **answer.headers}, payload)

            do_GET = do_POST = _serve

        return Handler
