"""Runners: how the entry service reaches a task's runtime, wherever it runs.

Both kinds answer `predict(items) -> [result | ItemError]` in order, plus the runtime's
cards and its declared read-only answers (`read("languages")`):

- `InlineRunner`: the runtime in this process (PAIS_<TASK>_SERVE_IN=entry). A light
  request then costs what its model costs, with no hop between processes. Batches form
  without waiting: when the runtime is idle an item runs at once; items that arrive while
  a batch runs form the next one, taken one item per request in turn, so a request cut
  into many items shares the runtime with small requests sent meanwhile.
- `RemoteRunner`: the task's model service (service.model_service), reached with
  bentoml.depends; its adaptive batching forms batches across requests and workers. A
  large request goes as chunks, at most two at a time, so other requests' items are
  batched in between.

`predict_isolated` is what both run around `runtime.predict_batch`: a runtime that raises
is retried item by item, so only the item that caused it fails.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from models.errors import ErrorKind, ItemError

from .errors import RequestError

log = logging.getLogger("pais.runners")


def close_runtime(runtime: Any) -> None:
    """Stop what a runtime holds besides memory (helper processes), if it says how."""
    close = getattr(runtime, "close", None)
    if close is not None:
        close()


def predict_isolated(runtime: Any, items: Sequence[Any]) -> list[Any]:
    """runtime.predict_batch(items), with an exception confined to the item that caused
    it: the batch is retried one item at a time, and a lone failing item gets an ENGINE
    ItemError (logged with its traceback) instead of failing its neighbours."""
    try:
        results = runtime.predict_batch(list(items))
    except Exception:
        if len(items) == 1:
            log.exception("%s: predict_batch failed on an item", type(runtime).__name__)
            return [ItemError(ErrorKind.ENGINE, "the model failed on this input; the failure is logged")]
        return [result for item in items for result in predict_isolated(runtime, [item])]
    if len(results) != len(items):
        raise RuntimeError(f"{type(runtime).__name__}.predict_batch answered {len(results)} of {len(items)}")
    return results


class Unavailable(RequestError):
    """503: the model is loading, overloaded or its service did not answer; retry."""

    def __init__(self, message: str):
        super().__init__(503, message)


class BatchStats:
    """Batch sizes formed, {size: count}; written from a worker thread, read on the loop."""

    def __init__(self) -> None:
        self._sizes: Counter[int] = Counter()
        self._lock = threading.Lock()

    def record(self, size: int) -> None:
        with self._lock:
            self._sizes[size] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {str(size): count for size, count in sorted(self._sizes.items())}


class InlineRunner:
    """A runtime in this process, loaded in a background thread at start-up.

    Scheduling: up to `lanes` batches run at once, each in its own thread (a runtime with
    parallel engines, such as apertium's pipeline pools, serves several). A batch takes
    one item per waiting request in turn, up to max_batch_size items and `max_cost` (the
    items' `cost` summed), and never items of a request that already has a batch
    running: a large request, cut into many items, then holds one lane, and a small
    request sent meanwhile is served from another at once."""

    where = "entry"

    def __init__(
        self,
        task: str,
        load: Callable[[], Any],
        max_batch_size: int,
        reads: Sequence[str] = (),
        lanes: int = 1,
        cost: Callable[[Any], int] | None = None,
        max_cost: int | None = None,
    ):
        self.task = task
        self._load = load
        self._reads = frozenset(reads)
        self.max_batch_size = max_batch_size
        self.lanes = lanes
        self._cost = cost
        self._max_cost = max_cost
        self.runtime: Any = None
        self._load_error: BaseException | None = None
        # Batches run in these threads: runtimes are not assumed to be thread-safe beyond
        # their lanes, and the event loop stays free for other requests while one runs.
        self._executor = ThreadPoolExecutor(lanes, thread_name_prefix=f"pais-{task}")
        self._pending: OrderedDict[int, deque[tuple[Any, asyncio.Future[Any]]]] = OrderedDict()
        self._running: Counter[int] = Counter()  # ticket -> batches running with its items
        self._busy_lanes = 0
        self._tickets = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = BatchStats()

    def start(self) -> None:
        threading.Thread(target=self._load_now, name=f"pais-load-{self.task}", daemon=True).start()

    def _load_now(self) -> None:
        try:
            self.runtime = self._load()
        except BaseException as error:  # reported by ready() and every call, not lost in a thread
            log.exception("%s: the runtime failed to load", self.task)
            self._load_error = error

    async def ready(self) -> bool:
        return self.runtime is not None

    def _runtime(self) -> Any:
        if self.runtime is not None:
            return self.runtime
        if self._load_error is not None:
            raise Unavailable(f"the {self.task} model failed to load: {self._load_error}")
        raise Unavailable(f"the {self.task} model is still loading; retry shortly")

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        self._runtime()
        if not items:
            return []
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        ticket = next(self._tickets)
        self._pending[ticket] = deque(zip(items, futures, strict=True))
        self._schedule()
        try:
            if len(futures) == 1:  # most light requests: no gather to build
                return [await futures[0]]
            return list(await asyncio.gather(*futures))
        finally:
            # a cancelled request (timeout, client gone) leaves no work behind
            self._pending.pop(ticket, None)

    def _schedule(self) -> None:
        while self._busy_lanes < self.lanes and (batch := self._next_batch()):
            self._busy_lanes += 1
            tickets = {ticket for ticket, _, _ in batch}
            for ticket in tickets:
                self._running[ticket] += 1
            task = asyncio.create_task(self._run(batch, tickets))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[int, Any, asyncio.Future[Any]]], tickets: set[int]) -> None:
        self.stats.record(len(batch))
        items = [item for _, item, _ in batch]
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(self._executor, predict_isolated, self.runtime, items)
        except Exception as error:
            log.exception("%s: a batch failed", self.task)
            results = [ItemError(ErrorKind.ENGINE, f"the {self.task} model failed: {error}")] * len(batch)
        finally:
            self._busy_lanes -= 1
            for ticket in tickets:
                self._running[ticket] -= 1
                if not self._running[ticket]:
                    del self._running[ticket]
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        self._schedule()

    def _next_batch(self) -> list[tuple[int, Any, asyncio.Future[Any]]]:
        """Up to max_batch_size items (and max_cost), one per waiting request in turn,
        from requests with no batch running."""
        batch: list[tuple[int, Any, asyncio.Future[Any]]] = []
        cost = 0
        progressed = True
        while progressed and len(batch) < self.max_batch_size:
            progressed = False
            for ticket in list(self._pending):
                if ticket in self._running:
                    continue
                queue = self._pending[ticket]
                while queue and queue[0][1].done():
                    queue.popleft()
                if not queue:
                    del self._pending[ticket]
                    continue
                item_cost = self._cost(queue[0][0]) if self._cost else 0
                if batch and self._max_cost is not None and cost + item_cost > self._max_cost:
                    return batch
                item, future = queue.popleft()
                batch.append((ticket, item, future))
                cost += item_cost
                progressed = True
                if len(batch) == self.max_batch_size:
                    break
        return batch

    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]:
        return [card.to_dict() for card in self._runtime().cards]

    async def read(self, name: str) -> Any:
        if name not in self._reads:
            raise KeyError(f"{self.task} declares no read {name!r}")
        runtime = self._runtime()
        return await asyncio.get_running_loop().run_in_executor(self._executor, getattr(runtime, name))

    async def batch_stats(self) -> dict[str, Any]:
        return {"predict_batch": self.stats.snapshot(), "served_in": "entry"}

    def close(self) -> None:
        close_runtime(self.runtime)
        self._executor.shutdown(wait=False, cancel_futures=True)


RECONNECT_PAUSE_S = 0.1


def _connection_error(error: BaseException) -> bool:
    """A broken or refused connection (the worker behind it died or is restarting), as
    opposed to an answer: aiohttp's connection errors are OSErrors or carry one."""
    import aiohttp

    if isinstance(error, TimeoutError):  # an OSError too, but an answer that took too long
        return False
    return isinstance(error, aiohttp.ClientConnectionError | ConnectionError | OSError)


class RemoteRunner:
    """A task's model service, through its bentoml.depends proxy (the service's
    `predict_batch`, `cards`, `read` and `batch_stats` APIs). Items cross the hop pickled
    one by one: BentoML's pickle serde would turn dataclass items into dicts."""

    where = "model-service"

    def __init__(
        self, task: str, proxy: Any, max_batch_size: int, chunk: int = 0, ready_timeout_s: float = 5
    ):
        self.task = task
        self._proxy = proxy
        self.max_batch_size = max_batch_size
        # At most two chunks of one request wait at the model service at a time, so items of
        # other requests are batched in between (fairness), while one request alone still
        # keeps the model busy. 0: chosen from the model's device once its card is known.
        self.chunk = chunk
        self.in_flight = 2
        self._ready_timeout_s = ready_timeout_s
        self._answers: dict[str, Any] = {}
        self._was_ready = False

    async def ready(self) -> bool:
        """Whether the model service has loaded. Once it has, the answer stays yes: a slow
        probe under load, or a worker the arbiter is restarting, is busy, not loading, and
        SageMaker replaces an instance whose /ping fails (requests meanwhile get 503s)."""
        if self._was_ready:
            return True
        try:
            self._was_ready = await self._proxy.is_ready(self._ready_timeout_s) is True
        except Exception:  # a timeout or a refused connection while the service loads
            return False
        return self._was_ready

    async def predict(self, items: Sequence[Any]) -> list[Any]:
        payloads = [pickle.dumps(item, protocol=5) for item in items]
        size = self.chunk or await self._auto_chunk()
        chunks = [payloads[i : i + size] for i in range(0, len(payloads), size)]
        in_flight = asyncio.Semaphore(self.in_flight)

        async def send(chunk: list[bytes]) -> list[bytes]:
            async with in_flight:
                return await self._call("predict_batch", chunk)

        answers = await asyncio.gather(*(send(chunk) for chunk in chunks))
        return [pickle.loads(answer) for part in answers for answer in part]

    async def _auto_chunk(self) -> int:
        """On a GPU, quarter batches two at a time: a batch costs little more than one item,
        and the next chunk waits ready while one runs. On a CPU, one item at a time: a batch
        costs in proportion to its items, so whatever is queued ahead of a small request is
        what it waits for, and the hop between chunks costs little next to an item."""
        cards = await self.cards()
        placement = str(cards[0].get("details", {}).get("placement", "")) if cards else ""
        # "cuda:0 float16", "onnxruntime CUDA, fp32", "torch cuda float16": any GPU runtime
        if "cuda" in placement.lower():
            self.chunk, self.in_flight = max(1, self.max_batch_size // 4), 2
        else:
            self.chunk, self.in_flight = 1, 1
        return self.chunk

    async def _call(self, api: str, *args: Any) -> Any:
        """One call to the model service. A connection that breaks is tried once more on a
        fresh one: after a worker died, its pooled keep-alive connections fail at once, and
        the arbiter's new worker takes the retry (every API here is idempotent: inference
        has no side effects). Overload (503 from adaptive batching) is not retried."""
        from bentoml.exceptions import ServiceUnavailable

        for attempt in (1, 2):
            try:
                return await getattr(self._proxy.to_async, api)(*args)
            except ServiceUnavailable:
                raise Unavailable(
                    f"the {self.task} model service is at capacity (PAIS_BATCH_MAX_LATENCY_MS); retry shortly"
                ) from None
            except Exception as error:
                log.warning("%s model service: %s failed (attempt %d): %r", self.task, api, attempt, error)
                if attempt == 2 or not _connection_error(error):
                    raise Unavailable(
                        f"the {self.task} model service did not answer ({type(error).__name__}); retry"
                    ) from None
                await asyncio.sleep(RECONNECT_PAUSE_S)
        raise AssertionError("unreachable")

    async def _once(self, key: str, api: str, *args: Any) -> Any:
        """An answer that does not change while the server runs (cards, labels, languages),
        asked once per worker."""
        if key not in self._answers:
            self._answers[key] = await self._call(api, *args)
        return self._answers[key]

    async def cards(self, fresh: bool = False) -> list[dict[str, Any]]:
        """The model cards; kept per worker unless `fresh` (GET /models: custom models are
        trained while the server runs)."""
        if fresh:
            return await self._call("cards")
        return await self._once("cards", "cards")

    async def read(self, name: str) -> Any:
        return await self._once(f"read:{name}", "read", name)

    async def batch_stats(self) -> dict[str, Any]:
        return {**await self._call("batch_stats"), "served_in": "model-service"}

    def close(self) -> None:
        """The model service stops with BentoML's own shutdown."""
