"""PAIS's ASGI app in this process, with the real runtimes and no `bentoml serve`.

What `bentoml serve service.gateway:PAIS` runs in an entry worker, minus BentoML itself:
the settings, one runner per served task, `Served`, `service.gateway.build_app` and the
entry service's middleware in production order (load shedding outermost, then API keys,
then PAIS's routes). The differences, and why they do not matter to the fast tests:

- every runtime runs in an `InlineRunner`, as if PAIS_<TASK>_SERVE_IN were entry for
  every task, so classification and detection skip the hop to their model services: the routes,
  decoding, validation and error answers are the same code; the hop itself (RemoteRunner,
  pickled items, BentoML's batching) is what the `server`-marked tests cover;
- BentoML's own routes are a tiny stand-in answering /livez and /readyz (the latter from
  `Served.ready()`, as `Entry.__is_ready__` does); anything else PaisApp passes through
  to it is a 404 it would not give, which no test relies on.

Requests reach the app through httpx with a transport that runs it on ONE event loop in
a thread of its own: an InlineRunner's futures and batch tasks belong to the loop that
made them, so every request, from any test thread and for any app built on the same
`Served`, must be served on that loop (a fresh loop per request would mix futures of
several loops in one batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from .conftest import (
    TEST_MAX_IMAGES,
    TEST_MAX_REQUEST_BYTES,
    TEST_MAX_SPEECH_CHARS,
    TEST_MAX_TEXT_CHARS,
    TEST_MAX_TEXTS,
    TEST_MAX_TRANSLATE_CHARS,
    TEST_MAX_VIDEO_BYTES,
    TEST_MAX_VIDEO_DURATION_S,
    TEST_MAX_VIDEO_FRAMES,
)

T = TypeVar("T")
BASE_URL = "http://pais.test"
LOAD_TIMEOUT_S = 600  # every runtime loading at once on 2 shared cores

# The limits of the shared `bentoml serve` test server (tests/conftest.py: pais_server),
# so a fast test and a server test cross the same bounds.
TEST_ENV = {
    "PAIS_MAX_REQUEST_BYTES": str(TEST_MAX_REQUEST_BYTES),
    "PAIS_CLASSIFICATION_MAX_IMAGES": str(TEST_MAX_IMAGES),
    "PAIS_DETECTION_MAX_IMAGES": str(TEST_MAX_IMAGES),
    "PAIS_VIDEO_MAX_BYTES": str(TEST_MAX_VIDEO_BYTES),
    "PAIS_VIDEO_MAX_DURATION_S": str(TEST_MAX_VIDEO_DURATION_S),
    "PAIS_VIDEO_MAX_FRAMES": str(TEST_MAX_VIDEO_FRAMES),
    "PAIS_TRANSLATION_MAX_TEXTS": str(TEST_MAX_TEXTS),
    "PAIS_TRANSLATION_MAX_TEXT_CHARS": str(TEST_MAX_TEXT_CHARS),
    "PAIS_TRANSLATION_MAX_REQUEST_CHARS": str(TEST_MAX_TRANSLATE_CHARS),
    "PAIS_SPEECH_MAX_CHARS": str(TEST_MAX_SPEECH_CHARS),
    # one apertium pipeline per pair: fewer processes to start on a small machine
    "PAIS_TRANSLATION_PIPELINES_PER_PAIR": "1",
}


class LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pais-test-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result from this thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]):
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class LoopTransport(httpx.BaseTransport):
    """A sync httpx transport serving an ASGI app on a LoopThread (httpx.ASGITransport
    underneath). A request body given as an iterator arrives at the app in its chunks,
    without a Content-Length, as a chunked upload would."""

    def __init__(self, app: Any, loop: LoopThread, timeout_s: float = 300):
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = loop
        self._timeout_s = timeout_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        chunks = list(request.stream)  # type: ignore[arg-type]  # sync streams: read in the caller's thread
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, stream=_Chunks(chunks)
        )

        async def serve() -> httpx.Response:
            response = await self._asgi.handle_async_request(forwarded)
            # the raw bytes: the outer client decodes a Content-Encoding (gzip) itself
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self._loop.run(serve(), self._timeout_s)


async def _readyz_app(served: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """BentoML's part, reduced to what PAIS's app hands it here: /livez and /readyz."""
    assert scope["type"] == "http", scope["type"]  # the transport sends no lifespan nor websockets
    if scope["path"] == "/livez":
        status = 200
    elif scope["path"] == "/readyz":
        status = 200 if await served.ready() else 503
    else:
        status = 404
    body = json.dumps({"status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class InProcessPais:
    """A running in-process PAIS.

    client: a sync httpx.Client on the whole app (middleware + routes), base URL
      http://pais.test; safe to use from several threads at once (concurrency tests);
    settings, served: what the app was built with (served.runners: the InlineRunners);
    pais: the PaisApp under the middleware; tasks: the tasks served;
    with_routes(routes): a client on a PaisApp of the same runners with `routes` added
      or replaced (SageMakerRoutes with Batch Transform settings), on the same loop;
    run(coroutine): a coroutine on the app's loop (to call a runner directly)."""

    settings: Any
    served: Any
    pais: Any
    app: Any
    loop: LoopThread
    client: httpx.Client
    tasks: tuple[str, ...]
    _clients: list[httpx.Client] = field(default_factory=list)

    def client_for(self, app: Any) -> httpx.Client:
        client = httpx.Client(transport=LoopTransport(app, self.loop), base_url=BASE_URL)
        self._clients.append(client)
        return client

    def with_routes(self, routes: dict[tuple[str, str], Any]) -> httpx.Client:
        from service.app import PaisApp

        return self.client_for(PaisApp(self.pais.app, self.served, {**self.pais.routes, **routes}))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine, 300)

    def serves(self, *tasks: str) -> bool:
        return all(task in self.tasks for task in tasks)

    def require(self, *tasks: str) -> None:
        """Skip the calling test unless every task named is served (PAIS_TEST_TASKS)."""
        import pytest

        missing = [task for task in tasks if task not in self.tasks]
        if missing:
            pytest.skip(f"PAIS_TEST_TASKS leaves out {', '.join(missing)}")


def settings_for(tasks: str = "all", registry: Any = None, **env: str) -> Any:
    """Settings as the shared test server has them (TEST_ENV), serving PAIS_TASKS=`tasks`
    of `registry` (default: the built-in tasks), with `env`'s overrides."""
    from service.settings import Settings

    return Settings.from_env({**TEST_ENV, "PAIS_TASKS": tasks, **env}, registry)


@contextlib.contextmanager
def serving(settings: Any, runners: dict[str, Any], registry: Any = None) -> Iterator[InProcessPais]:
    """The app on `runners` (real InlineRunners, or a unit test's fakes) for the tasks of
    `registry` (default: the built-in ones) that `settings` serve, with a client; the
    runners are not waited for."""
    from service.context import Served
    from service.gateway import build_app, guards
    from service.tasks import TASKS

    served = Served(settings, registry or TASKS, runners)
    loop = LoopThread()
    pais = build_app(served, lambda scope, receive, send: _readyz_app(served, scope, receive, send))
    app = pais
    for guard, options in reversed(guards(settings)):  # the first is outermost
        app = guard(app, **options)
    running = InProcessPais(
        settings=settings,
        served=served,
        pais=pais,
        app=app,
        loop=loop,
        client=httpx.Client(transport=LoopTransport(app, loop), base_url=BASE_URL),
        tasks=tuple(task.name for task in served.tasks),
    )
    try:
        yield running
    finally:
        for client in [running.client, *running._clients]:
            client.close()
        loop.close()


def inline_runners(settings: Any) -> dict[str, Any]:
    """An InlineRunner per served task with a runtime, as service.gateway.Entry makes one
    for a task served in the entry process (not started)."""
    from service.gateway import inline_runner
    from service.model_store import load_task_runtime
    from service.tasks import TASKS

    runners: dict[str, Any] = {}
    for name in settings.served_tasks():
        task = TASKS.get(name)
        if task.runtime is None:
            continue
        # load_task_runtime, not gateway.load_inline: the latter sets torch's threads to
        # one for the whole process, which would slow every later test of the session
        runners[name] = inline_runner(
            task, settings.section(name), lambda task=task: load_task_runtime(task, settings)
        )
    return runners


@contextlib.contextmanager
def running_pais(tasks: str = "all", **env: str) -> Iterator[InProcessPais]:
    """PAIS in this process serving PAIS_TASKS=`tasks` (with the tasks they require),
    TEST_ENV's limits and `env`'s overrides, on the real runtimes; every runtime loaded
    when yielded."""
    settings = settings_for(tasks, **env)
    runners = inline_runners(settings)
    for runner in runners.values():
        runner.start()  # loads in parallel threads
    try:
        with serving(settings, runners) as running:
            _wait_loaded(running, runners)
            yield running
    finally:
        for runner in runners.values():
            close = getattr(runner.runtime, "close", None)
            if close is not None:
                close()  # translation's apertium pipelines are processes


def _wait_loaded(running: InProcessPais, runners: dict[str, Any]) -> None:
    """Until every runner is ready; a runtime that failed to load fails at once, with its
    error (what its calls answer: a 503 naming the failure)."""
    from service.runners import Unavailable

    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while True:
        waiting = [name for name, runner in runners.items() if not running.run(runner.ready())]
        if not waiting:
            return
        for name in waiting:
            try:
                running.run(runners[name].cards())
            except Unavailable as error:
                if "failed to load" in error.message:
                    raise RuntimeError(error.message) from None
        if time.monotonic() > deadline:
            raise RuntimeError(f"runtimes not loaded after {LOAD_TIMEOUT_S} s: {', '.join(waiting)}")
        time.sleep(0.2)
