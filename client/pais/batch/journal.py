"""An append-only JSONL file that survives kills: the local output of a batch job, and the
local staging area of an S3 output.

Writing. Each entry is one line, written with a single `os.write` on a file opened with
O_APPEND, straight from the event loop (no user-space buffer): once `append` returns, the
line is in the kernel's page cache and survives the process being killed (SIGKILL, OOM,
Ctrl-C). `fsync` is what survives the machine crashing; paying it for every line would cap
a job at the disk's sync rate, so it runs at most every `fsync_interval_s` (1 s by
default; 0 = every line) and at close. A machine crash can then lose the last second of
lines, which is safe: a line that is not in the file is simply done again on resume.

Reading back (resume). A kill can leave the last line torn (a write cut short) and a
machine crash can leave garbage (zeros) at the end; neither parses, so neither counts as
done: torn and corrupt lines are removed, as are failures that are to be retried and
any repeated id, so that after `open()` every id is in the file at most once.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class JournalLocked(RuntimeError):
    """Another process is writing the same output."""


@dataclass
class ScanResult:
    done: set[str] = field(default_factory=set)  # ids of kept entries
    ok: int = 0
    failed: int = 0
    retried: int = 0  # failures removed so that they are tried again
    corrupt: int = 0  # torn or unreadable lines removed


def encode(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(raw: bytes) -> dict[str, Any] | None:
    """An entry from one complete line, or None when the line is torn or corrupt."""
    if not raw.endswith(b"\n"):
        return None
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or "ok" not in entry:
        return None
    return entry


def scan_lines(
    lines: Iterator[bytes], keep: Callable[[dict[str, Any]], bool], result: ScanResult
) -> Iterator[bytes]:
    """The lines to keep, in order; `result` counts what was kept and removed. `keep`
    says whether a readable entry stands (False: it is to be done again)."""
    for raw in lines:
        entry = decode(raw)
        if entry is None:
            result.corrupt += 1
        elif entry["id"] in result.done:
            continue  # a repeated id: the first one stands
        elif not keep(entry):
            result.retried += 1
        else:
            result.done.add(entry["id"])
            if entry["ok"]:
                result.ok += 1
            else:
                result.failed += 1
            yield raw


def is_final(entry: dict[str, Any], retry_failed: bool) -> bool:
    """Whether an entry stands on resume: successes always; failures unless they were
    retryable (server or network trouble) or `retry_failed` asks to try them all again."""
    if entry["ok"]:
        return True
    return not retry_failed and not (entry.get("error") or {}).get("retryable", False)


class Journal:
    """One append-only JSONL file, exclusively held (a lock file beside it) while open,
    unless `locked=False` (a caller that holds a lock covering it)."""

    def __init__(self, path: Path, fsync_interval_s: float = 1.0, locked: bool = True):
        self.path = path
        self.locked = locked
        self.fsync_interval_s = fsync_interval_s
        self.lines = 0  # appended since open
        self._fd: int | None = None
        self._lock: IO[bytes] | None = None
        self._last_sync = time.monotonic()
        self._dirty = False

    def open(self, keep: Callable[[dict[str, Any]], bool], known: ScanResult | None = None) -> ScanResult:
        """Lock, repair and read back the file (creating it), ready to append. Ids already
        in `known.done` (committed elsewhere) are dropped from the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.locked:
            self._lock = lock_beside(self.path)
        result = repair(self.path, keep, known)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return result

    def append(self, entry: dict[str, Any]) -> None:
        assert self._fd is not None, "journal is not open"
        data = memoryview(encode(entry))
        while data:  # a regular file takes it in one write; loop only for a short write
            written = os.write(self._fd, data)
            data = data[written:]
        self.lines += 1
        self._dirty = True
        self.sync_if_due()

    def sync_if_due(self) -> None:
        """fsync when lines are waiting and the interval has passed (also called by the
        job once a second, so lines written just before a quiet spell get synced too)."""
        if self._dirty and time.monotonic() - self._last_sync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None


def repair(path: Path, keep: Callable[[dict[str, Any]], bool], known: ScanResult | None = None) -> ScanResult:
    """Read `path` back; rewrite it (atomically: temp file, fsync, rename) when lines have
    to go, or just cut a torn tail. Memory: the set of ids, never the lines."""
    result = known if known is not None else ScanResult()
    if not path.exists():
        return result
    committed = set(result.done)  # ids known before this file: its lines for them go
    with open(path, "rb") as handle:
        kept_bytes = sum(len(raw) for raw in scan_lines(handle, keep, result))
    size = path.stat().st_size
    if result.retried == 0 and kept_bytes == size:
        return result
    if result.retried == 0 and result.corrupt == 1 and _only_tail_is_bad(path, kept_bytes):
        with open(path, "r+b") as handle:  # a torn last line: cut it off
            handle.truncate(kept_bytes)
            os.fsync(handle.fileno())
        return result
    temporary = path.with_name(f".{path.name}.rewrite")
    again = ScanResult(done=committed)
    with open(path, "rb") as source, open(temporary, "wb") as target:
        for raw in scan_lines(source, keep, again):
            target.write(raw)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
    return result


def _only_tail_is_bad(path: Path, kept_bytes: int) -> bool:
    """Whether the kept lines are exactly the file's first `kept_bytes` bytes."""
    with open(path, "rb") as handle:
        offset = 0
        for raw in handle:
            if decode(raw) is None:
                return offset == kept_bytes
            offset += len(raw)
    return False


def fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def lock_beside(path: Path) -> IO[bytes]:
    """An exclusive lock on `.<name>.lock` next to `path`, held while the handle is open
    (the kernel drops it when the process dies, so a killed job never leaves it stuck)."""
    handle = open(path.with_name(f".{path.name}.lock"), "ab")  # noqa: SIM115 - kept open: it is the lock
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise JournalLocked(f"another batch job is writing {path}") from None
    return handle


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write a whole file or nothing under its name: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
