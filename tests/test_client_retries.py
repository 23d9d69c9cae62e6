"""Retries, timeouts, error types and the API-key header, sync and async, against a small
real HTTP server on 127.0.0.1 that answers as each test scripts it (503 twice then 200,
a 4xx, Retry-After, a dropped connection, a slow answer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pais

from .scripted_server import Answer, ScriptedServer
from .servers import free_port

CLASSIFIED = [{"model": "m", "predictions": [{"label": "tabby", "score": 0.9, "index": 281}]}]
IMAGE = b"\xff\xd8\xff fake jpeg"
FAST = pais.RetryPolicy(max_retries=3, backoff_s=0.01, max_backoff_s=0.05)


def classify(mode: str, url: str, images: Any = IMAGE, **options: Any) -> Any:
    if mode == "sync":
        with pais.Client(url, **options) as client:
            return client.classify(images, top_k=1)

    async def run() -> Any:
        async with pais.AsyncClient(url, **options) as client:
            return await client.classify(images, top_k=1)

    return asyncio.run(run())


modes = pytest.mark.parametrize("mode", ["sync", "async"])


@modes
def test_503_twice_then_200_is_retried(mode, tmp_path):
    script = [Answer(503, {"error": "busy"}), Answer(503, {"error": "busy"}), Answer(200, CLASSIFIED)]
    path = tmp_path / "image.jpg"
    path.write_bytes(IMAGE)
    with ScriptedServer(script).running() as server:
        (result,) = classify(mode, server.url, [path], retry=FAST)
    assert result.top.label == "tabby"
    assert len(server.seen) == 3
    assert all(IMAGE in seen.body for seen in server.seen)  # the whole file each time


@modes
def test_a_4xx_is_not_retried_and_carries_error_and_detail(mode):
    detail = [{"field": "images", "index": 0, "kind": "corrupt", "message": "truncated"}]
    with (
        ScriptedServer(
            [Answer(400, {"error": "images[0]: truncated", "detail": detail})]
        ).running() as server,
        pytest.raises(pais.BadRequestError) as raised,
    ):
        classify(mode, server.url, retry=FAST)
    assert len(server.seen) == 1
    assert raised.value.status == 400 and raised.value.message == "images[0]: truncated"
    assert raised.value.detail == detail and not raised.value.retryable


@modes
def test_retries_give_up_with_the_last_error(mode):
    server = ScriptedServer([Answer(503, {"error": "still loading"})])
    with server.running(), pytest.raises(pais.ServiceUnavailableError) as raised:
        classify(mode, server.url, retry=FAST)
    assert len(server.seen) == 1 + FAST.max_retries
    assert raised.value.message == "still loading" and raised.value.retryable


@modes
def test_retry_after_is_honoured(mode):
    script = [Answer(429, {"error": "too many requests"}, {"Retry-After": "1"}), Answer(200, CLASSIFIED)]
    with ScriptedServer(script).running() as server:
        classify(mode, server.url, retry=FAST)
    first, second = server.seen
    assert second.at - first.at >= 1.0  # the server asked for a second; backoff alone is 10 ms


@modes
def test_dropped_connection_is_retried(mode):
    with ScriptedServer([Answer(drop=True), Answer(200, CLASSIFIED)]).running() as server:
        (result,) = classify(mode, server.url, retry=FAST)
    assert result.top.label == "tabby" and len(server.seen) == 2


@modes
def test_refused_connection_is_retried_then_raised(mode):
    with pytest.raises(pais.PaisConnectionError):
        classify(mode, f"http://127.0.0.1:{free_port()}", retry=FAST)


@modes
def test_read_timeout_is_raised_not_retried(mode):
    server = ScriptedServer([Answer(200, CLASSIFIED, delay_s=1.0)])
    with server.running(), pytest.raises(pais.PaisTimeoutError):
        classify(mode, server.url, retry=FAST, timeout=0.3)
    assert len(server.seen) == 1


@modes
def test_api_key_header_and_user_agent(mode, monkeypatch):
    with ScriptedServer([Answer(200, CLASSIFIED)]).running() as server:
        classify(mode, server.url, api_key="s3cret")
        monkeypatch.setenv("PAIS_API_KEY", "from-env")
        classify(mode, server.url)
    assert server.seen[0].headers["authorization"] == "Bearer s3cret"
    assert server.seen[1].headers["authorization"] == "Bearer from-env"
    assert server.seen[0].headers["user-agent"].startswith("pais-client/")


def test_url_from_the_environment(monkeypatch):
    with ScriptedServer([Answer(200, CLASSIFIED)]).running() as server:
        monkeypatch.setenv("PAIS_URL", server.url + "/")
        assert pais.Client().url == server.url
        classify("sync", None)  # type: ignore[arg-type]
    assert len(server.seen) == 1


def test_server_errors_without_json_still_raise_typed_errors():
    server = ScriptedServer([Answer(502, b"<html>bad gateway</html>")])
    with server.running(), pytest.raises(pais.ServerError) as raised:
        classify("sync", server.url, retry=pais.RetryPolicy(max_retries=0))
    assert raised.value.status == 502 and "bad gateway" in raised.value.message


def test_retry_policy_waits():
    policy = pais.RetryPolicy(backoff_s=1.0, max_backoff_s=8.0)
    for attempt in range(6):
        assert 0 <= policy.backoff(attempt) <= min(8.0, 2**attempt)
    assert policy.delay_after_status(400, {}, 0) is None
    assert policy.delay_after_status(503, {}, policy.max_retries) is None
    assert 5.0 <= policy.delay_after_status(503, {"retry-after": "5"}, 0) <= 6.0
    assert policy.delay_after_status(429, {"retry-after": "3600"}, 0) is None  # too long: raise now
    assert policy.delay_after_status(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0) <= 1.0


@modes
def test_answers_are_freed_without_the_garbage_collector(mode):
    """httpx ties a response to its stream in a reference cycle; the client cuts it, so a
    batch job's request bodies are freed at once, not at the next cyclic collection."""
    import gc
    import weakref

    from pais import calls

    async def exchange_async(url: str) -> Any:
        async with pais.AsyncClient(url) as client:
            return weakref.ref(await client.exchange(calls.classify([IMAGE])))

    with ScriptedServer([Answer(200, CLASSIFIED)]).running() as server:
        gc.disable()
        try:
            if mode == "sync":
                with pais.Client(server.url) as client:
                    answer = weakref.ref(client.exchange(calls.classify([IMAGE])))
            else:
                answer = asyncio.run(exchange_async(server.url))
            assert answer() is None
        finally:
            gc.enable()
