"""`Client` (sync) and `AsyncClient`: one typed method per PAIS endpoint.

Each endpoint is declared once, on `_Endpoints`, from its builder in `pais.calls`; a
descriptor turns it into a method that sends the call with the client's transport, so
`Client().classify(...)` returns results and `await AsyncClient().classify(...)` does the
same asynchronously, with identical arguments, types and documentation.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx

from . import calls
from ._version import __version__
from .calls import Call, error_of
from .operations import Operation, operations
from .results import Audio
from .retry import NO_RETRIES, RetryPolicy, transport_error

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:3000"
# Long read timeout: a request waits for its place in a server-side batch (the server's own
# limit is PAIS_REQUEST_TIMEOUT_S, 120 s by default); connecting should be quick.
DEFAULT_TIMEOUT = httpx.Timeout(150.0, connect=10.0)


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("PAIS_URL") or DEFAULT_URL).rstrip("/")


def default_headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = {"User-Agent": f"pais-client/{__version__}"}
    key = api_key if api_key is not None else os.environ.get("PAIS_API_KEY")
    if key:
        out["Authorization"] = f"Bearer {key}"
    out.update(headers or {})
    return out


class Endpoint(Generic[P, T]):
    """A client method built from a `pais.calls` builder: sync on `Client`, a coroutine on
    `AsyncClient`."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> Endpoint[P, T]: ...
    @overload
    def __get__(self, instance: Client, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, instance: AsyncClient, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        build, send = self.build, instance.send

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return send(build(*args, **kwargs))

        return method


class StreamEndpoint(Generic[P]):
    """A streamed endpoint: an `AudioStream` on `Client`, an `AsyncAudioStream` on
    `AsyncClient` (opened by `with`/`async with` or by iterating)."""

    def __init__(self, build: Callable[P, Call[httpx.Response]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> StreamEndpoint[P]: ...
    @overload
    def __get__(self, instance: Client, owner: type) -> Callable[P, AudioStream]: ...
    @overload
    def __get__(self, instance: AsyncClient, owner: type) -> Callable[P, AsyncAudioStream]: ...
    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        build = self.build
        stream_type = AsyncAudioStream if isinstance(instance, AsyncClient) else AudioStream

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return stream_type(instance, build(*args, **kwargs))

        return method


class _Endpoints:
    classify = Endpoint(calls.classify)
    embed = Endpoint(calls.embed)
    detect = Endpoint(calls.detect)
    detect_annotated = Endpoint(calls.detect_annotated)
    analyze_video = Endpoint(calls.analyze_video)
    translate = Endpoint(calls.translate)
    synthesize = Endpoint(calls.synthesize)
    synthesize_stream = StreamEndpoint(calls.synthesize_stream)
    recommend = Endpoint(calls.recommend)
    similar_items = Endpoint(calls.similar_items)
    models = Endpoint(calls.models)
    stats = Endpoint(calls.stats)
    ready = Endpoint(calls.ready)
    openapi = Endpoint(calls.openapi)


def _operation(known: dict[str, Operation], name: str, url: str) -> Operation:
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"{url} has no operation {name!r}; operations: {', '.join(known)}") from None


def _unbound(response: httpx.Response) -> httpx.Response:
    """httpx binds a response's stream back to the response, a reference cycle: every
    response, with its request's body (a batch of images), then waits for the cyclic
    garbage collector, and a long batch job's memory creeps up. Once the body has been
    read the stream is not needed: dropping it frees both as soon as the caller lets go."""
    response.stream = httpx.ByteStream(b"")
    return response


class _ClientBase(_Endpoints):
    _http_type: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 64,
    ) -> None:
        self.url = resolve_url(url)
        self.retry = retry or RetryPolicy()
        self._operations: dict[str, Operation] | None = None
        self._http = self._http_type(
            base_url=self.url,
            headers=default_headers(api_key, headers),
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )


class _Retrying:
    """The retry loop's state, shared by both clients: after each attempt, how long to wait
    before the next one (None: this outcome is final)."""

    def __init__(self, policy: RetryPolicy, url: str) -> None:
        self.policy, self.url, self.attempt = policy, url, 0

    def delay(self, outcome: httpx.Response | httpx.TransportError) -> float | None:
        if isinstance(outcome, httpx.TransportError):
            wait = self.policy.delay_after_error(outcome, self.attempt)
            if wait is None:
                raise transport_error(outcome, self.url) from outcome
        else:
            wait = self.policy.delay_after_status(outcome.status_code, outcome.headers, self.attempt)
        self.attempt += 1
        return wait


class Client(_ClientBase):
    """Synchronous PAIS client.

    >>> with Client("http://127.0.0.1:3000") as client:
    ...     client.classify(["cat.jpg"])[0].top.label

    `url` defaults to $PAIS_URL, then http://127.0.0.1:3000; `api_key` to $PAIS_API_KEY
    (sent as `Authorization: Bearer <key>`). `timeout` is seconds or an `httpx.Timeout`.
    Connection errors, 429, 502, 503 and 504 are retried as `retry` says; 4xx raise at once.
    """

    _http: httpx.Client
    _http_type = httpx.Client

    def send(self, call: Call[T]) -> T:
        """Send a prepared call (see `pais.calls`), with retries, and parse its answer."""
        return call.result(self.exchange(call))

    def exchange(self, call: Call[Any]) -> httpx.Response:
        """The final response to `call` after retries (still open when `call.stream`)."""
        retrying = _Retrying(NO_RETRIES if call.probe else self.retry, self.url)
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                with call.opened_files() as files:
                    outcome = self._http.send(call.build_request(self._http, files), stream=call.stream)
            except httpx.TransportError as error:
                outcome = error
            delay = retrying.delay(outcome)
            if delay is None:  # errors were raised by delay()
                return outcome if call.stream else _unbound(outcome)  # type: ignore[arg-type,return-value]
            if isinstance(outcome, httpx.Response):
                outcome.close()
            time.sleep(delay)

    def operations(self) -> dict[str, Operation]:
        """Every operation the server declares (its GET /docs.json), by name."""
        if self._operations is None:
            self._operations = operations(self.openapi())
        return self._operations

    def call(self, operation: str, /, **fields: Any) -> Any:
        """Any operation of the server by name, typed methods or not:
        `client.call("classify", images=["cat.jpg"], top_k=3)` answers the parsed JSON
        (or a `Binary` for a file answer)."""
        return self.send(_operation(self.operations(), operation, self.url).call(**fields))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """Asynchronous PAIS client: the same methods as `Client`, awaited.

    >>> async with AsyncClient() as client:
    ...     results = await client.classify(["cat.jpg", "coffee.png"], top_k=3)
    """

    _http: httpx.AsyncClient
    _http_type = httpx.AsyncClient

    async def send(self, call: Call[T]) -> T:
        return call.result(await self.exchange(call))

    async def exchange(self, call: Call[Any]) -> httpx.Response:
        retrying = _Retrying(NO_RETRIES if call.probe else self.retry, self.url)
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                with call.opened_files() as files:
                    outcome = await self._http.send(call.build_request(self._http, files), stream=call.stream)
            except httpx.TransportError as error:
                outcome = error
            delay = retrying.delay(outcome)
            if delay is None:
                return outcome if call.stream else _unbound(outcome)  # type: ignore[arg-type,return-value]
            if isinstance(outcome, httpx.Response):
                await outcome.aclose()
            await asyncio.sleep(delay)

    async def operations(self) -> dict[str, Operation]:
        """Every operation the server declares (its GET /docs.json), by name."""
        if self._operations is None:
            self._operations = operations(await self.openapi())
        return self._operations

    async def call(self, operation: str, /, **fields: Any) -> Any:
        """Any operation of the server by name (see `Client.call`)."""
        return await self.send(_operation(await self.operations(), operation, self.url).call(**fields))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _StreamInfo:
    """What both stream types know once the answer has started."""

    response: httpx.Response | None = None

    @property
    def content_type(self) -> str | None:
        return self.response.headers.get("content-type") if self.response else None

    @property
    def sample_rate(self) -> int | None:
        value = self.response.headers.get("x-sample-rate") if self.response else None
        return int(value) if value and value.isdigit() else None

    def _started(self, response: httpx.Response) -> httpx.Response:
        self.response = response
        return response

    def _audio(self, content: bytes) -> Audio:
        assert self.response is not None
        return Audio(content, self.content_type or "application/octet-stream", dict(self.response.headers))


class AudioStream(_StreamInfo):
    """Audio as the server produces it: iterate for byte chunks (the first arrives after the
    first sentence is spoken). Use as a context manager, or iterate to the end."""

    def __init__(self, client: Client, call: Call[httpx.Response]) -> None:
        self._client, self._call = client, call

    def open(self) -> AudioStream:
        if self.response is None:
            response = self._started(self._client.exchange(self._call))
            if response.status_code >= 400:
                response.read()
                response.close()
                raise error_of(response)
        return self

    def __iter__(self) -> Iterator[bytes]:
        self.open()
        assert self.response is not None
        try:
            yield from self.response.iter_bytes()
        finally:
            self.close()

    def read(self) -> Audio:
        """The whole stream as one `Audio`."""
        return self._audio(b"".join(self))

    def close(self) -> None:
        if self.response is not None:
            self.response.close()

    def __enter__(self) -> AudioStream:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAudioStream(_StreamInfo):
    """`AudioStream` for `AsyncClient`: `async with` / `async for`."""

    def __init__(self, client: AsyncClient, call: Call[httpx.Response]) -> None:
        self._client, self._call = client, call

    async def open(self) -> AsyncAudioStream:
        if self.response is None:
            response = self._started(await self._client.exchange(self._call))
            if response.status_code >= 400:
                await response.aread()
                await response.aclose()
                raise error_of(response)
        return self

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await self.open()
        assert self.response is not None
        try:
            async for chunk in self.response.aiter_bytes():
                yield chunk
        finally:
            await self.close()

    async def read(self) -> Audio:
        return self._audio(b"".join([chunk async for chunk in self]))

    async def close(self) -> None:
        if self.response is not None:
            await self.response.aclose()

    async def __aenter__(self) -> AsyncAudioStream:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
