"""Workers that tests/test_sandbox.py runs in sandbox children: each method misbehaves the
way a native library can (abort, segfault, hang, dirty state) on request."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator
from pathlib import Path

from models.errors import ItemError


class Probe:
    def __init__(self, greeting: str = "hello"):
        self.greeting = greeting
        self.calls = 0
        self.retire = False

    def echo(self, value: object) -> object:
        self.calls += 1
        return value

    def pid(self) -> int:
        return os.getpid()

    def calls_so_far(self) -> int:
        self.calls += 1
        return self.calls

    def greet(self, name: str) -> str:
        return f"{self.greeting} {name}"

    def item(self, value: str) -> str:
        """One item of a batch: "abort" aborts the process (as eSpeak does), "segfault"
        reads address 0, "hang" never returns, "refuse" is refused as bad input, "dirty"
        leaves state that must not be reused."""
        self.calls += 1
        if value == "abort":
            os.abort()
        if value == "segfault":
            ctypes.string_at(0)
        if value == "hang":
            time.sleep(3600)
        if value == "refuse":
            raise ItemError("invalid", f"{value!r} is refused")
        if value == "dirty":
            self.retire = True
        return value.upper()

    def count(self, limit: int, progress: str) -> Iterator[int]:
        """0, 1, 2, ... with the number made so far written to `progress` (how far the
        child went while the consumer read)."""
        for index in range(limit):
            Path(progress + ".new").write_text(str(index + 1))
            os.replace(progress + ".new", progress)  # whole, even when killed mid-write
            yield index

    def allocate(self, megabytes: int) -> int:
        block = bytearray(megabytes * 1024 * 1024)
        return len(block)


def broken_factory() -> Probe:
    raise ImportError("libexample.so.1: cannot open shared object file")
