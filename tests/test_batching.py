"""BentoML's dispatcher as PAIS's model services build it: no request is held back to fill
a batch (service/batching.py says what BentoML does otherwise). The end-to-end effect, a
small request answered at its usual speed right after a large one, is checked over HTTP
in tests/test_hostile_http.py."""

from __future__ import annotations

import asyncio

from bentoml._internal.marshal.dispatcher import CorkDispatcher

import service.model_service  # noqa: F401  (what a model-service worker imports first)
from service import batching
from service.batching import NoFillWaitOptimizer


def dispatcher() -> CorkDispatcher:
    return CorkDispatcher(
        max_latency_in_ms=30_000, max_batch_size=64, fallback=lambda: None, get_batch_size=lambda item: 1
    )


def test_model_service_dispatchers_never_wait_for_a_fuller_batch():
    optimizer = dispatcher().optimizer
    assert isinstance(optimizer, NoFillWaitOptimizer)
    for _ in range(10):  # batches whose first request queued 3 s behind a running one
        optimizer.log_outbound(n=1, wait=3.0, duration=0.2)
    optimizer.trigger_refresh()
    assert optimizer.wait == 0.0
    assert 0.1 < optimizer.o_a + optimizer.o_b < 0.3  # the latency fit still learns


def held_ticks(monkeypatch, train) -> int:
    """Ticks (BentoML's 1 ms polls) a dispatcher training with `train` spends holding a
    request while the model is free, over 14 requests sent one at a time."""
    monkeypatch.setattr(CorkDispatcher, "train_optimizer", train)
    built = dispatcher()
    held = 0
    sleep = asyncio.sleep

    async def counting_sleep(delay: float, *args):
        nonlocal held
        if delay == CorkDispatcher.TICKET_INTERVAL and not built._sema.is_locked():
            held += 1
        return await sleep(delay, *args)

    async def predict(items):
        await sleep(0.05)  # a batch takes time: BentoML's latency fit is not zero
        return list(items)

    async def run() -> None:
        call = built(predict)
        for index in range(14):  # one at a time: each request is alone in the queue
            assert await asyncio.wait_for(call(index), timeout=60) == index

    monkeypatch.setattr(asyncio, "sleep", counting_sleep)
    asyncio.run(run())
    monkeypatch.setattr(asyncio, "sleep", sleep)
    return held


def test_training_never_holds_a_request_for_a_fuller_batch(monkeypatch):
    """BentoML's own training holds a lone request for a second and third one (the
    control); PAIS's dispatches it at once."""
    assert held_ticks(monkeypatch, batching._train_optimizer) > 0
    assert held_ticks(monkeypatch, batching._train_on_single_requests) == 0
