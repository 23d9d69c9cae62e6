"""Shared benchmark plumbing: a served PAIS (started here or given by --url), a
concurrent HTTP load generator, and the ratio table every benchmark prints."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx

from tests.servers import bentoml_serve, free_port, running_server, service_env


@dataclass
class Measurement:
    name: str
    items_per_s: float
    latencies_s: list[float]

    def latency_ms(self, quantile: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", help="benchmark this running server instead of starting one")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each load phase")
    return p


@contextlib.contextmanager
def served(url: str | None, **env: str) -> Iterator[str]:
    """The given server, or `bentoml serve service.gateway:PAIS` started for the run."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, service_env(**env)) as started:
        yield started


def timed(name: str, items_per_call: int, call: Callable[[], object], seconds: float) -> Measurement:
    """Repeat a synchronous call for `seconds` (after one warm-up call)."""
    call()
    latencies: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return Measurement(name, items_per_call * len(latencies) / elapsed, latencies)


async def _load(
    clients: int, seconds: float, request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
) -> tuple[int, list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        await request(client)  # warm-up
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await request(client)
                if response.status_code != 200:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return len(latencies), latencies, elapsed, errors


def http_load(
    name: str,
    clients: int,
    seconds: float,
    items_per_request: int,
    request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
) -> Measurement:
    """`clients` concurrent loops sending `request` for `seconds`; non-200 answers abort."""
    count, latencies, elapsed, errors = asyncio.run(_load(clients, seconds, request))
    if errors:
        raise RuntimeError(f"{name}: {errors} of {count} requests failed")
    return Measurement(name, items_per_request * count / elapsed, latencies)


def report(title: str, unit: str, baseline: Measurement, rows: list[Measurement]) -> None:
    print(f"\n{title}  (ratios against '{baseline.name}', same run)")
    print(f"{'':44} {unit + '/s':>10} {'ratio':>7} {'p50 ms':>9} {'p95 ms':>9}")
    for row in rows:
        print(
            f"{row.name:44} {row.items_per_s:10.1f} {row.items_per_s / baseline.items_per_s:7.2f} "
            f"{row.latency_ms(0.5):9.1f} {row.latency_ms(0.95):9.1f}"
        )
