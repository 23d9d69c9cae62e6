"""One model service for any task: a BentoML service holding the task's runtime.

`model_service(task, settings)` builds it from the declaration: `predict_batch` (batching
across requests and entry workers, never holding a request back to fill a batch:
service/batching.py; items and results cross the hop pickled, one
by one), `cards`, `read` (the task's declared read-only runtime answers) and
`batch_stats`. Every task is placed the same way: each worker loads its runtime on the
device `worker_device` picks, and no service reserves a GPU for itself, so several model
services share one GPU.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from typing import Any

import bentoml

from .batching import dispatch_without_fill_waits
from .model_store import load_task_runtime
from .runners import BatchStats, close_runtime, predict_isolated
from .settings import Settings
from .task import Task

ENTRY_SERVICE = "pais"  # the entry service's BentoML name (service.gateway)

dispatch_without_fill_waits()  # before BentoML builds any model service's dispatcher


def model_service(task: Task, settings: Settings) -> Any:
    """The BentoML service class serving `task`'s runtime."""
    section = settings.section(task.name)
    reads = frozenset(task.reads)

    class ModelService:
        def __init__(self) -> None:
            index = bentoml.server_context.worker_index or 1
            self.runtime = load_task_runtime(task, settings, device=worker_device(settings.device, index))
            self.stats = BatchStats()
            drain_on_sigterm(ENTRY_SERVICE, settings.request_timeout_s + 5)

        @bentoml.api(
            batchable=True,
            max_batch_size=section.max_batch_size,
            max_latency_ms=settings.batch_max_latency_ms,
        )
        def predict_batch(self, items: list[bytes]) -> list[bytes]:
            self.stats.record(len(items))
            results = predict_isolated(self.runtime, [pickle.loads(item) for item in items])
            return [pickle.dumps(result, protocol=5) for result in results]

        # async: BentoML runs sync APIs one at a time in one thread, so these would wait
        # behind a running batch.
        @bentoml.api
        async def cards(self) -> list[dict[str, Any]]:
            return [card.to_dict() for card in self.runtime.cards]

        @bentoml.api
        def read(self, name: str) -> Any:
            if name not in reads:
                raise ValueError(f"{task.name} declares no read {name!r}")
            return getattr(self.runtime, name)()

        @bentoml.api
        async def batch_stats(self) -> dict[str, Any]:
            return {"predict_batch": self.stats.snapshot()}

        @bentoml.on_shutdown
        def close_runtime(self) -> None:
            close_runtime(self.runtime)

    name = "".join(part.title() for part in task.name.split("_")) + "ModelService"
    ModelService.__name__ = ModelService.__qualname__ = name
    return bentoml.service(
        name=f"pais-{task.name}",
        workers=section.workers,
        traffic={"timeout": settings.request_timeout_s, "max_concurrency": settings.max_concurrency},
        # BentoML's proxy recycles its connection every 100 requests even with requests in
        # flight, which drops ~10% of calls under concurrency (docs/design.md).
        runner_connection={"max_requests": 2**31 - 1},
    )(ModelService)


def drain_on_sigterm(entry_service: str, limit_s: float) -> None:
    """Keep serving after SIGTERM until the entry workers have exited (at most `limit_s`).

    BentoML's arbiter signals every worker at once: the entry workers then finish their
    requests in flight, and those still call this model service (the next chunk of a large
    request, a stream's next sentences). Stopping with them failed those requests (503);
    so this worker stops once no entry worker is left. Called in the worker's main thread,
    after uvicorn installed its own handler, which runs once the entry has gone."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return

    def wait_then_stop(signum: int, frame: Any) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and _entry_workers_alive(entry_service):
            time.sleep(0.2)
        previous(signum, frame)  # uvicorn's: sets its should_exit flag, thread-safe

    def on_sigterm(signum: int, frame: Any) -> None:
        threading.Thread(target=wait_then_stop, args=(signum, frame), name="pais-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)


def _entry_workers_alive(entry_service: str) -> bool:
    """Whether a sibling worker process (same BentoML arbiter) serves `entry_service`."""
    import psutil

    try:
        siblings = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return False
    for process in siblings:
        try:
            arguments = process.cmdline()
        except psutil.Error:
            continue
        if "--service-name" in arguments:
            at = arguments.index("--service-name")
            if at + 1 < len(arguments) and arguments[at + 1] == entry_service:
                return True
    return False


def worker_device(setting: str, worker_index: int, gpu_count: int | None = None) -> str:
    """The device of model worker `worker_index` (from 1): with several GPUs and
    PAIS_DEVICE auto or cuda, workers take them in turn (BentoML would put every worker
    on GPU 0); otherwise the setting as it is."""
    if setting not in ("auto", "cuda"):
        return setting
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    if gpu_count <= 1:
        return setting
    return f"cuda:{(worker_index - 1) % gpu_count}"
