"""What every model service shares: its BentoML configuration, and the `model_info` and
`batch_stats` APIs that the entry service aggregates into GET /models and GET /stats.

A model service holds one or more runtimes from `models/`, exposes batchable APIs whose
items carry their own options, and is reached only through the entry service.
"""

import threading
from collections import Counter, defaultdict
from typing import Any

import bentoml

from models.catalog import load_runtime

from .model_store import resolve_source
from .settings import Settings


def model_service_options(name: str, workers: int, settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `@bentoml.service` for a model service."""
    return {
        "name": name,
        "workers": workers,
        "traffic": {"timeout": settings.request_timeout_s, "max_concurrency": settings.max_concurrency},
        # BentoML's proxy recycles its connection every 100 requests even with requests in
        # flight, which drops ~10% of calls under concurrency (see DESIGN.md).
        "runner_connection": {"max_requests": 2**31 - 1},
    }


def batchable_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `@bentoml.api` for a model service's batchable API."""
    return {
        "batchable": True,
        "max_batch_size": settings.max_batch_size,
        "max_latency_ms": settings.batch_max_latency_ms,
    }


def load_task_runtime(task: str, settings: Settings) -> Any:
    """The runtime of `task` from its stored copy (or configured source), placed and
    limited as the settings say. Imports torch: call it in a model service's __init__."""
    return load_runtime(
        task,
        resolve_source(task, settings),
        device=worker_device(settings.device),
        dtype=settings.dtype,
        max_pixels=settings.max_image_pixels,
        forward_chunk=settings.max_batch_size,
    )


class ModelService:
    """Mixin for model service classes. Subclasses override `model_cards` when they hold
    more than `self.runtime`, and call `record_batch` from each batchable API."""

    def model_cards(self) -> list[dict[str, Any]]:
        return [self.runtime.info.to_dict()]  # type: ignore[attr-defined]

    # Batches are recorded from the thread a sync API runs in and read on the event loop
    # (batch_stats): the lock keeps a reader from iterating while a new key is added.
    _batch_sizes_lock = threading.Lock()

    def record_batch(self, api: str, size: int) -> None:
        with self._batch_sizes_lock:
            if not hasattr(self, "_batch_sizes"):
                self._batch_sizes: defaultdict[str, Counter[int]] = defaultdict(Counter)
            self._batch_sizes[api][size] += 1

    # async: BentoML runs sync APIs one at a time in one thread, so these would wait
    # behind a running batch.
    @bentoml.api
    async def model_info(self) -> list[dict[str, Any]]:
        return self.model_cards()

    @bentoml.api
    async def batch_stats(self) -> dict[str, dict[str, int]]:
        """Batch sizes this worker formed since start: {api: {size: count}}."""
        with self._batch_sizes_lock:
            sizes = getattr(self, "_batch_sizes", {})
            return {
                api: {str(size): n for size, n in sorted(counts.items())} for api, counts in sizes.items()
            }


def worker_device(setting: str, worker_index: int | None = None, gpu_count: int | None = None) -> str:
    """The device for this model worker: with several GPUs and PAIS_DEVICE auto or cuda,
    workers take them in turn (BentoML would otherwise put every worker on GPU 0)."""
    if setting not in ("auto", "cuda"):
        return setting
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    if gpu_count <= 1:
        return setting
    if worker_index is None:
        worker_index = bentoml.server_context.worker_index or 1
    return f"cuda:{(worker_index - 1) % gpu_count}"
