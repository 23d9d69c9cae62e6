"""Proving that work grows linearly with the input: the same call on inputs of size n and
8n, timed as a ratio (never an absolute time). Linear code gives ~8, quadratic ~64.

The time is the calling thread's CPU time: on a shared machine wall-clock time charges a
long run for the other processes it shares the cores with (8x the input measured up to
30x the wall time, linear code all the same)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

FACTOR = 8
MARGIN = 4  # a ratio above FACTOR * MARGIN (32) is not linear


def best_time(
    call: Callable[[Any], Any], argument: Any, repeats: int = 5, clock: Callable[[], float] = time.thread_time
) -> float:
    """The shortest of `repeats` runs. Work done in other processes (an engine's
    pipeline) needs `clock=time.perf_counter`."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        call(argument)
        best = min(best, clock() - start)
    return best


def growth(call: Callable[[Any], Any], make: Callable[[int], Any], n: int) -> float:
    """time(make(8n)) / time(make(n)), each the best of a few runs."""
    call(make(n))  # warm up: imports, compiled patterns
    return best_time(call, make(FACTOR * n)) / max(best_time(call, make(n)), 1e-6)


def assert_linear(call: Callable[[Any], Any], make: Callable[[int], Any], n: int) -> None:
    ratio = growth(call, make, n)
    assert ratio < FACTOR * MARGIN, f"{FACTOR}x the input took {ratio:.0f}x the time"
