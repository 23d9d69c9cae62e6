"""The runners' scheduling and failure handling (service/runners.py), on fakes.

These are unit tests of the scheduler, not of any model: `Runtime` below is a fake
runtime (pure Python, the runtime interface `predict_batch(items)` + `cards`) whose
batches can be held open, so a test decides exactly what is running when the next
request arrives and every assertion is on which items formed which batch, never on
time. `FakeProxy` stands for the proxy `bentoml.depends` gives the entry service (its
`to_async.<api>` calls and `is_ready`). Real runtimes behind real runners are what the
in-process app tests (tests/test_app_*.py) and the server tests exercise.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from bentoml.exceptions import ServiceUnavailable

from models.errors import ErrorKind, ItemError
from models.info import ModelInfo
from service.runners import InlineRunner, RemoteRunner, Unavailable, predict_isolated

CARD = ModelInfo("fake", "fake-model", "fake:source", "1", "MIT", "made up for the scheduler tests")


class Runtime:
    """A fake runtime: answers `done:<item>`, raises for a batch holding "boom", and
    keeps any batch holding an item of `held` running until `release(item)`."""

    cards = (CARD,)

    def __init__(self, held: Sequence[Any] = ()):
        self.batches: list[list[Any]] = []
        self._gates = {item: threading.Event() for item in held}
        self._entered = {item: threading.Event() for item in held}
        self._lock = threading.Lock()

    def predict_batch(self, items: list[Any]) -> list[Any]:
        with self._lock:
            self.batches.append(list(items))
        for item in items:
            if item in self._gates:
                self._entered[item].set()
                self._gates[item].wait(30)
        if "boom" in items:
            raise RuntimeError("the engine fell over")
        return [f"done:{item}" for item in items]

    async def entered(self, item: Any) -> None:
        """Until the batch holding `item` runs (waited for off the loop)."""
        assert await asyncio.to_thread(self._entered[item].wait, 30), f"{item!r} never ran"

    def release(self, item: Any) -> None:
        self._gates[item].set()


def inline(runtime: Any, max_batch_size: int = 8, **options: Any) -> InlineRunner:
    runner = InlineRunner("fake", lambda: runtime, max_batch_size, **options)
    runner._load_now()  # the start-up thread's work, done here so the test knows it is done
    return runner


async def settle() -> None:
    """Let every task that can run on the loop run (submitted requests get queued)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_results_come_back_in_order_with_item_errors_in_place():
    class Mixed(Runtime):
        def predict_batch(self, items: list[Any]) -> list[Any]:
            super().predict_batch(items)
            return [ItemError("empty", "nothing") if item == "" else f"done:{item}" for item in items]

    async def scenario() -> list[Any]:
        return await inline(Mixed(), max_batch_size=2).predict(["a", "", "c", "d", "e"])

    results = asyncio.run(scenario())
    assert results[0] == "done:a" and results[2:] == ["done:c", "done:d", "done:e"]
    assert isinstance(results[1], ItemError) and results[1].kind is ErrorKind.EMPTY


def test_an_idle_runner_runs_at_once_and_batches_form_while_one_runs():
    """Deterministic form of "no waiting when idle": the first request's batch is entered
    before any other request exists, so it can only have run alone; requests that arrive
    while it is held form the next batch together."""
    runtime = Runtime(held=["first"])

    async def scenario() -> list[str]:
        runner = inline(runtime)
        first = asyncio.create_task(runner.predict(["first"]))
        await runtime.entered("first")
        later = [asyncio.create_task(runner.predict([name])) for name in ("b", "c", "d")]
        await settle()
        runtime.release("first")
        answers = await asyncio.gather(first, *later)
        last = await runner.predict(["alone"])  # idle again: runs alone, at once
        return [answer for group in [*answers, last] for answer in group]

    assert asyncio.run(scenario()) == ["done:first", "done:b", "done:c", "done:d", "done:alone"]
    assert runtime.batches == [["first"], ["b", "c", "d"], ["alone"]]


def test_batches_take_one_item_per_request_in_turn():
    runtime = Runtime(held=["hold"])

    async def scenario() -> tuple[list[str], list[str]]:
        runner = inline(runtime, max_batch_size=3)
        holding = asyncio.create_task(runner.predict(["hold"]))
        await runtime.entered("hold")
        big = asyncio.create_task(runner.predict(["x1", "x2", "x3", "x4"]))
        small = asyncio.create_task(runner.predict(["y1", "y2"]))
        await settle()
        runtime.release("hold")
        await holding
        return await big, await small

    big, small = asyncio.run(scenario())
    assert big == ["done:x1", "done:x2", "done:x3", "done:x4"] and small == ["done:y1", "done:y2"]
    # round robin over the waiting requests, not the first request's items first
    assert runtime.batches == [["hold"], ["x1", "y1", "x2"], ["x3", "y2", "x4"]]


def test_a_request_with_a_running_batch_leaves_the_free_lane_to_others():
    """Two lanes: a large request holds one; its remaining items are not taken into the
    other lane, which serves a small request sent meanwhile at once."""
    runtime = Runtime(held=["x1"])

    async def scenario() -> list[str]:
        runner = inline(runtime, max_batch_size=2, lanes=2)
        big = asyncio.create_task(runner.predict(["x1", "x2", "x3", "x4"]))
        await runtime.entered("x1")
        await settle()
        small = await runner.predict(["y1"])  # answered while x1's batch still runs
        assert runtime.batches == [["x1", "x2"], ["y1"]]
        runtime.release("x1")
        return [*small, *await big]

    assert asyncio.run(scenario()) == ["done:y1", "done:x1", "done:x2", "done:x3", "done:x4"]
    assert runtime.batches[2:] == [["x3", "x4"]]


def test_lanes_run_batches_at_the_same_time():
    runtime = Runtime(held=["a", "b"])

    async def scenario() -> list[list[str]]:
        runner = inline(runtime, lanes=2)
        first = asyncio.create_task(runner.predict(["a"]))
        await runtime.entered("a")
        second = asyncio.create_task(runner.predict(["b"]))
        await runtime.entered("b")  # would never happen with one lane: "a" is still held
        runtime.release("a")
        runtime.release("b")
        return [await first, await second]

    assert asyncio.run(scenario()) == [["done:a"], ["done:b"]]


def test_the_cost_bound_splits_a_batch_but_always_runs_one_item():
    runtime = Runtime(held=["hold"])

    async def scenario() -> None:
        runner = inline(runtime, cost=len, max_cost=10)
        holding = asyncio.create_task(runner.predict(["hold"]))
        await runtime.entered("hold")
        requests = [
            asyncio.create_task(runner.predict([text]))
            for text in ("aaaa", "bbbbbb", "cc", "an item longer than the bound")
        ]
        await settle()
        runtime.release("hold")
        await asyncio.gather(holding, *requests)

    asyncio.run(scenario())
    assert runtime.batches[1:] == [["aaaa", "bbbbbb"], ["cc"], ["an item longer than the bound"]]


def test_max_batch_size_bounds_a_batch():
    runtime = Runtime()
    results = asyncio.run(inline(runtime, max_batch_size=3).predict(list(range(7))))
    assert results == [f"done:{i}" for i in range(7)]
    assert [len(batch) for batch in runtime.batches] == [3, 3, 1]


def test_a_cancelled_request_leaves_no_work_behind():
    """A request stopped by its deadline or its client's disconnect: items not yet taken
    into a batch never run."""
    runtime = Runtime(held=["hold"])

    async def scenario() -> list[str]:
        runner = inline(runtime)
        holding = asyncio.create_task(runner.predict(["hold"]))
        await runtime.entered("hold")
        gone = asyncio.create_task(runner.predict(["gone1", "gone2"]))
        await settle()
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        runtime.release("hold")
        await holding
        return await runner.predict(["next"])

    assert asyncio.run(scenario()) == ["done:next"]
    assert runtime.batches == [["hold"], ["next"]]


def test_an_item_that_breaks_the_runtime_fails_alone():
    runtime = Runtime()
    results = predict_isolated(runtime, ["a", "boom", "c"])
    assert results[0] == "done:a" and results[2] == "done:c"
    assert isinstance(results[1], ItemError) and results[1].kind is ErrorKind.ENGINE
    # the batch, then each item on its own
    assert runtime.batches == [["a", "boom", "c"], ["a"], ["boom"], ["c"]]

    async def through_the_runner() -> list[Any]:
        return await inline(Runtime()).predict(["a", "boom", "c"])

    results = asyncio.run(through_the_runner())
    assert results[0] == "done:a" and results[2] == "done:c" and isinstance(results[1], ItemError)


def test_a_runtime_answering_the_wrong_number_of_results_fails_its_batch_not_the_runner():
    class Short(Runtime):
        def predict_batch(self, items: list[Any]) -> list[Any]:
            return super().predict_batch(items)[:-1]

    with pytest.raises(RuntimeError, match="answered 1 of 2"):
        predict_isolated(Short(), ["a", "b"])

    async def scenario() -> list[Any]:
        runner = inline(Short())
        return await runner.predict(["a", "b"])

    results = asyncio.run(scenario())
    assert all(isinstance(r, ItemError) and r.kind is ErrorKind.ENGINE for r in results)


def test_loading_and_a_failed_load_are_503():
    def broken() -> Any:
        raise OSError("weights not found at /nowhere")

    async def scenario() -> None:
        loading = InlineRunner("fake", Runtime, 8)  # not started: still loading
        assert await loading.ready() is False
        with pytest.raises(Unavailable, match="still loading") as caught:
            await loading.predict(["a"])
        assert caught.value.status == 503 and caught.value.headers() == [(b"retry-after", b"1")]

        failed = InlineRunner("fake", broken, 8, reads=("languages",))
        failed._load_now()  # what start()'s thread runs
        assert await failed.ready() is False
        for call in (failed.predict(["a"]), failed.cards(), failed.read("languages")):
            with pytest.raises(Unavailable, match="failed to load: weights not found") as caught:
                await call
            assert caught.value.status == 503

        loaded = inline(Runtime(), reads=("labels",))
        assert await loaded.ready() is True
        assert await loaded.cards() == [CARD.to_dict()]
        with pytest.raises(KeyError, match="declares no read 'languages'"):
            await loaded.read("languages")

    asyncio.run(scenario())


def test_batch_stats_count_batch_sizes():
    runtime = Runtime()

    async def scenario() -> dict[str, Any]:
        runner = inline(runtime, max_batch_size=2)
        await runner.predict(["a", "b", "c"])
        return await runner.batch_stats()

    assert asyncio.run(scenario()) == {"predict_batch": {"1": 1, "2": 1}, "served_in": "entry"}


class FakeProxy:
    """Stands for bentoml.depends' proxy of a model service: `to_async.predict_batch`
    takes pickled items and answers pickled results (as service.model_service does);
    `fail` makes every call raise that exception instead."""

    def __init__(self, fail: BaseException | None = None, ready: Any = True, placement: str = "cpu float32"):
        self.placement = placement
        self.chunks: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls: list[str] = []
        self.fail = fail
        self._ready = ready
        self.to_async = self

    async def is_ready(self, timeout: float) -> Any:
        if isinstance(self._ready, BaseException):
            raise self._ready
        return self._ready

    async def predict_batch(self, items: list[bytes]) -> list[bytes]:
        self.calls.append("predict_batch")
        if self.fail is not None:
            raise self.fail
        self.chunks.append(len(items))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # let the other chunks of the request come in
            return [pickle.dumps(f"done:{pickle.loads(item)}") for item in items]
        finally:
            self.in_flight -= 1

    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]:
        self.calls.append("cards")
        if self.fail is not None:
            raise self.fail
        return [CARD.with_details(placement=self.placement).to_dict()]


def test_remote_runner_chunks_a_request_by_the_models_device():
    # on a CPU one item at a time, so a small request waits behind one item at most
    cpu = FakeProxy()
    results = asyncio.run(RemoteRunner("fake", cpu, max_batch_size=16).predict([f"i{n}" for n in range(9)]))
    assert results == [f"done:i{n}" for n in range(9)]
    assert cpu.chunks == [1] * 9 and cpu.most_in_flight == 1
    # on a GPU quarter batches, two in flight (the next one waits ready while one runs)
    gpu = FakeProxy(placement="cuda float16, channels_last")
    asyncio.run(RemoteRunner("fake", gpu, max_batch_size=16).predict([f"i{n}" for n in range(9)]))
    assert gpu.chunks == [4, 4, 1] and gpu.most_in_flight == 2
    # PAIS_<TASK>_REQUEST_CHUNK sets the size itself, two in flight
    explicit = FakeProxy()
    asyncio.run(
        RemoteRunner("fake", explicit, max_batch_size=16, chunk=2).predict([f"i{n}" for n in range(9)])
    )
    assert explicit.chunks == [2, 2, 2, 2, 1] and explicit.most_in_flight == 2
    tiny = FakeProxy(placement="cuda float16")
    asyncio.run(RemoteRunner("fake", tiny, max_batch_size=2).predict(["a", "b", "c"]))
    assert tiny.chunks == [1, 1, 1]  # never a chunk of 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ServiceUnavailable("busy"), "at capacity (PAIS_BATCH_MAX_LATENCY_MS)"),
        (ConnectionResetError("connection closed"), "did not answer (ConnectionResetError)"),
        (TimeoutError(), "did not answer (TimeoutError)"),
    ],
    ids=["overloaded", "connection-reset", "timeout"],
)
def test_remote_failures_are_a_503_naming_the_model_service(error, message):
    runner = RemoteRunner("speech", FakeProxy(fail=error), max_batch_size=8)
    with pytest.raises(Unavailable) as caught:
        asyncio.run(runner.predict(["a"]))
    assert caught.value.status == 503 and "the speech model service" in caught.value.message
    assert message in caught.value.message


def test_remote_answers_that_do_not_change_are_asked_once_and_retried_once():
    proxy = FakeProxy()
    runner = RemoteRunner("fake", proxy, max_batch_size=8)

    async def twice() -> list[Any]:
        return [await runner.cards(), await runner.cards()]

    card = CARD.with_details(placement="cpu float32").to_dict()
    assert asyncio.run(twice()) == [[card]] * 2
    assert proxy.calls == ["cards"]
    failing = FakeProxy(fail=ConnectionResetError("closing"))
    with pytest.raises(Unavailable):
        asyncio.run(RemoteRunner("fake", failing, max_batch_size=8).cards())
    assert failing.calls == ["cards", "cards"]  # a connection that was closing gets a second try


@pytest.mark.parametrize(
    ("answer", "ready"),
    [(True, True), (False, False), (ConnectionRefusedError(), False), (TimeoutError(), False)],
    ids=["ready", "not-ready", "refused", "timeout"],
)
def test_remote_readiness_is_false_while_the_service_cannot_answer(answer, ready):
    assert asyncio.run(RemoteRunner("fake", FakeProxy(ready=answer), 8).ready()) is ready
