"""Native code that reads untrusted input, run in supervised child processes.

eSpeak NG aborts its process on some texts, FFmpeg can spin on a forged video: run in the
service's own process, either takes the worker (and every request it holds) down. A
`Sandbox` runs such a library in child processes instead, so that a crash or a hang costs
only the call (or the item) that caused it:

- a child is a fresh interpreter (`python -m models.sandbox`, never a fork of a process
  that may hold torch or onnxruntime threads) that imports one worker object from a
  `WorkerSpec` and answers calls on it over two pipes (pickled, length-prefixed);
- a call that runs past its time gets its child killed (`ChildTimeout`); a child that dies
  gives `ChildDied` with the signal and the last lines it wrote to stderr;
- `spares` children are kept started and initialised, so the call after a crash is served
  at once while a replacement starts in the background;
- `map` streams items through a child one result at a time: a crash is pinned on the item
  being processed (after one retry on another child, so that state left by an earlier
  item is not blamed on it) and the other items are answered;
- `stream` drives a generator in the child one item per request (plus one prefetched), so
  the child stops working when the consumer stops reading;
- a worker sets `retire = True` when its native state may be dirty (an eSpeak look-ahead
  left over): its child is replaced after the answer, never reused.

Children watch their parent and exit when it is gone. The protocol is pickle: a child is
our own code, and one that native code has subverted could do anything its user can
anyway.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from .errors import ErrorKind

log = logging.getLogger("pais.sandbox")

_HEADER = struct.Struct("<Q")
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
_STDERR_LINES = 20


class SandboxError(RuntimeError):
    """A child that did not answer. `kind` is the ItemError kind of the item it was on."""

    kind = ErrorKind.ENGINE


class ChildDied(SandboxError):
    """The child process ended while working on a call: a crash, an abort, a kill."""

    kind = ErrorKind.UNPROCESSABLE

    def __init__(self, message: str, returncode: int | None = None):
        super().__init__(message)
        self.returncode = returncode


class ChildTimeout(SandboxError):
    """The call ran past its time; its child was killed."""

    kind = ErrorKind.TIMEOUT


class ChildStartError(SandboxError):
    """A child could not start its worker (a missing library, a bad spec)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a child runs: `target` ("package.module:callable") is imported in the child and
    called with `kwargs` to build the worker object whose methods the parent calls."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # e.g. thread counts of native libraries
    memory_limit_mb: int | None = None  # RLIMIT_AS of the child: a runaway decode fails alone


class Closing:
    """`with obj:` closes obj at the end: for the sandbox and what holds one."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- framing ---------------------------------------------------------------------------


class _Expired(Exception):
    pass


def _wait(fd: int, events: int, deadline: float | None) -> None:
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise _Expired
        if poller.poll(None if remaining is None else max(1, int(remaining * 1000))):
            return


def _write(fd: int, obj: Any, deadline: float | None = None) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    for part in (_HEADER.pack(len(data)), data):
        view = memoryview(part)
        while view:
            _wait(fd, select.POLLOUT, deadline)
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        _wait(fd, select.POLLIN, deadline)
        chunk = os.read(fd, min(size - len(buffer), 1 << 20))
        if not chunk:
            raise EOFError
        buffer += chunk
    return bytes(buffer)


def _read(fd: int, deadline: float | None = None) -> Any:
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


# -- one child process -------------------------------------------------------------------


class _Child:
    """One started child: its process, its two pipes and the tail of its stderr."""

    def __init__(self, spec: WorkerSpec, name: str):
        self.name = name
        self.uses = 0
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        log_r, log_w = os.pipe()
        python_path = os.pathsep.join(p for p in (str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "models.sandbox", str(request_r), str(reply_w)],
                pass_fds=(request_r, reply_w),
                stdin=subprocess.DEVNULL,
                stdout=log_w,  # native libraries print to stdout too; keep the protocol pipes clean
                stderr=log_w,
                env={**os.environ, **spec.env, "PYTHONPATH": python_path},
            )
        finally:
            for fd in (request_r, reply_w, log_w):
                os.close(fd)
        self._request, self._reply = request_w, reply_r
        os.set_blocking(self._request, False)  # a write to a stuck child must time out too
        self.stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._log_thread = threading.Thread(
            target=self._drain, args=(log_r,), daemon=True, name=f"sandbox-{name}-log"
        )
        self._log_thread.start()
        self._closed = False
        _write(self._request, spec)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            for line in stream:
                self.stderr.append(line.decode(errors="replace").rstrip())

    def wait_ready(self, timeout_s: float) -> None:
        try:
            reply = self.receive(timeout_s)
        except SandboxError as error:
            raise ChildStartError(f"{self.name} sandbox did not start: {error}") from None
        if reply[0] != "ready":
            self.kill()
            raise ChildStartError(f"{self.name} sandbox could not start its worker: {reply[1]}")

    def send(self, message: Any, timeout_s: float) -> None:
        try:
            _write(self._request, message, time.monotonic() + timeout_s)
        except _Expired:
            self.kill()
            raise ChildTimeout(f"{self.name} sandbox took no input for {timeout_s:g} s: stopped") from None
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def receive(self, timeout_s: float) -> Any:
        try:
            return _read(self._reply, time.monotonic() + timeout_s)
        except _Expired:
            self.kill()
            raise ChildTimeout(
                f"{self.name} sandbox gave no answer within {timeout_s:g} s: stopped"
            ) from None
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> ChildDied:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        self.close()
        self._log_thread.join(timeout=1.0)  # the child's last words ("stack smashing detected")
        reason = f"was killed by {signal.Signals(-code).name}" if code and code < 0 else f"exited ({code})"
        last = next((line for line in reversed(self.stderr) if line.strip()), "")
        return ChildDied(f"{self.name} sandbox {reason}" + (f": {last}" if last else ""), code)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self._request, self._reply):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def rss_bytes(self) -> int:
        """Resident memory of the child (0 once it is gone)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


# -- the supervisor ----------------------------------------------------------------------


class Sandbox(Closing):
    """Child processes running one kind of worker, kept started: one for the next call and
    `spares` more, so that the call after a crash does not wait for a start.

    Calls from several threads each get their own child (a new one is started when none is
    idle). `max_uses` retires a child after that many calls (1: a fresh process per call,
    taken from the warm ones)."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        name: str,
        spares: int = 1,
        max_uses: int | None = None,
        start_timeout_s: float = 60.0,
    ):
        self.spec = spec
        self.name = name
        self.spares = spares
        self.max_uses = max_uses
        self.start_timeout_s = start_timeout_s
        self.stats: collections.Counter[str] = collections.Counter()
        self._idle: collections.deque[_Child] = collections.deque()
        self._busy: set[_Child] = set()
        self._starting = 0  # children the launcher is starting
        self._leased_starting = 0  # children started for a caller that found none idle
        self._closed = False
        self._start_failures = 0
        self._condition = threading.Condition()
        self._launcher = threading.Thread(target=self._keep_spares, daemon=True, name=f"sandbox-{name}")
        self._launcher.start()
        # close() stops the children; so does interpreter exit without it (and a child
        # exits by itself once this process is gone).
        self._finalizer = weakref.finalize(self, Sandbox._kill_all, self._idle, self._busy)

    # -- children ---------------------------------------------------------------------

    def _start_child(self) -> _Child:
        child = _Child(self.spec, self.name)
        try:
            child.wait_ready(self.start_timeout_s)
        except BaseException:
            child.kill()
            raise
        self.stats["started"] += 1
        return child

    def _keep_spares(self) -> None:
        while True:
            with self._condition:
                while not self._closed and len(self._idle) + self._starting >= self._wanted_idle():
                    self._condition.wait()
                if self._closed:
                    return
                self._starting += 1
                failures = self._start_failures
            if failures:  # a worker that cannot start is not retried in a tight loop
                time.sleep(min(30.0, 0.5 * 2**failures))
            try:
                child: _Child | None = self._start_child()
            except Exception as error:
                log.warning("%s", error)
                child = None
            with self._condition:
                self._starting -= 1
                self._start_failures = 0 if child else self._start_failures + 1
                if child is None:
                    pass
                elif self._closed:
                    child.kill()
                else:
                    self._idle.append(child)
                self._condition.notify_all()

    def _wanted_idle(self) -> int:
        """Idle children to keep: one for the next call plus `spares` while none is busy,
        and `spares` beside the busy ones (so a call that kills its child leaves one ready)."""
        return max(self.spares, self.spares + 1 - len(self._busy) - self._leased_starting)

    def _lease(self) -> _Child:
        with self._condition:
            if self._closed:
                raise SandboxError(f"{self.name} sandbox is closed")
            child = self._idle.popleft() if self._idle else None
            if child is not None:
                self._busy.add(child)
            else:
                self._leased_starting += 1
            self._condition.notify_all()  # the launcher tops the spares up
        if child is None:
            self.stats["cold_starts"] += 1  # no warm child: this caller waits for a start
            try:
                child = self._start_child()
            finally:
                with self._condition:
                    self._leased_starting -= 1
                    if child is not None:
                        self._busy.add(child)
        child.uses += 1
        return child

    def _release(self, child: _Child, healthy: bool) -> None:
        reuse = healthy and (self.max_uses is None or child.uses < self.max_uses)
        with self._condition:
            self._busy.discard(child)
            if reuse and not self._closed:
                self._idle.appendleft(child)  # warmest first
            self._condition.notify_all()
        if not reuse:
            child.kill()

    def _lease_and_send(self, message: Any, timeout_s: float) -> _Child:
        """A child that has taken `message`. A child found dead before it took anything (killed
        while idle) is replaced: the call is not blamed for it."""
        for _ in range(3):
            child = self._lease()
            try:
                child.send(message, timeout_s)
                return child
            except ChildDied as error:
                self._count(error)
                self._release(child, healthy=False)
            except BaseException:
                self._release(child, healthy=False)
                raise
        raise SandboxError(f"{self.name} sandbox: three children in a row died before taking a call")

    def warm_up(self) -> None:
        """Start a child now and check that its worker loads (ChildStartError if not)."""
        child = self._lease()
        self._release(child, healthy=True)

    # -- calls --------------------------------------------------------------------------

    def call(self, method: str, *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        """`worker.method(*args, **kwargs)` in a child. Raises what the worker raised,
        ChildDied when the child ended on it, ChildTimeout when it ran past `timeout_s`."""
        child = self._lease_and_send(("call", method, args, kwargs), timeout_s)
        healthy = False
        try:
            status, value, retire = child.receive(timeout_s)
            healthy = self._healthy(retire)
            if status == "error":
                raise value
            return value
        except SandboxError as error:
            self._count(error)
            raise
        finally:
            self._release(child, healthy)

    def map(self, method: str, items: Sequence[Any], *args: Any, timeout_s: float) -> list[Any]:
        """`worker.method(item, *args)` for each item, in order: the result, the exception
        the worker raised, or a SandboxError for the item a child died or hung on. A child
        that dies on an item that was not its first is not trusted to have been clean: the
        item is tried once more, first on another child, before it is blamed."""
        results: list[Any] = [None] * len(items)
        position = 0
        while position < len(items):
            try:
                child = self._lease_and_send(("map", method, list(items[position:]), args), timeout_s)
            except SandboxError as error:  # no child takes input: fail what is left
                results[position:] = [error] * (len(items) - position)
                break
            first, healthy = position, False
            try:
                while position < len(items):
                    status, value = child.receive(timeout_s)
                    if status == "retire":
                        break
                    results[position] = value
                    position += 1
                else:
                    status, _ = child.receive(timeout_s)
                healthy = self._healthy(status == "retire")
            except ChildTimeout as error:
                self._count(error)
                results[position] = error
                position += 1
            except ChildDied as error:
                self._count(error)
                if position == first:
                    results[position] = error
                    position += 1
            finally:
                self._release(child, healthy)
        return results

    def stream(self, method: str, *args: Any, timeout_s: float, **kwargs: Any) -> Iterator[Any]:
        """Iterate `worker.method(*args, **kwargs)` (a generator) in a child. Each item must
        come within `timeout_s`; the next one is being made while the caller holds this
        one. Closing the iterator early stops the child (it is replaced)."""
        child = self._lease_and_send(("iter", method, args, kwargs), timeout_s)
        healthy = False
        try:
            child.send(("next",), timeout_s)
            while True:
                status, value, retire = child.receive(timeout_s)
                if status in ("end", "error"):
                    healthy = self._healthy(retire)
                if status == "end":
                    return
                if status == "error":
                    raise value
                try:
                    child.send(("next",), timeout_s)  # prefetch: the child works while we yield
                except ChildDied:
                    yield value  # made before it died: still the caller's
                    raise
                yield value
        except SandboxError as error:
            self._count(error)
            raise
        finally:
            self._release(child, healthy)

    def _healthy(self, retire: bool) -> bool:
        """Whether a child that answered may serve again (not if its worker retired it)."""
        if retire:
            self.stats["retired"] += 1
        return not retire

    def _count(self, error: SandboxError) -> None:
        self.stats[type(error).__name__] += 1
        log.warning("%s", error)

    # -- lifecycle ------------------------------------------------------------------------

    def children(self) -> list[int]:
        """Process ids of the started children (idle and busy)."""
        with self._condition:
            return [child.pid for child in (*self._idle, *self._busy)]

    def busy(self) -> list[int]:
        """Process ids of the children working on a call now."""
        with self._condition:
            return [child.pid for child in self._busy]

    def rss_bytes(self) -> int:
        """Resident memory of all children together."""
        with self._condition:
            children = [*self._idle, *self._busy]
        return sum(child.rss_bytes() for child in children)

    def wait_for_spares(self, timeout_s: float = 60.0) -> bool:
        """Block until the children kept warm are started (tests, benchmarks, start-up)."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while len(self._idle) < self._wanted_idle():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._condition.wait(remaining)
            return True

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._finalizer()

    @staticmethod
    def _kill_all(idle: collections.deque[_Child], busy: set[_Child]) -> None:
        for child in [*idle, *busy]:
            child.kill()
        idle.clear()


# -- the child's side ----------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone, even while the main thread is inside native code
    (ctypes and OpenCV release the GIL there)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="sandbox-parent-watch").start()


def _build(spec: WorkerSpec) -> Any:
    if spec.memory_limit_mb:
        import resource

        limit = spec.memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    module_name, _, attribute = spec.target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)(**spec.kwargs)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _serve(requests: int, replies: int) -> None:
    _watch_parent(os.getppid())
    spec: WorkerSpec = _read(requests)
    try:
        worker = _build(spec)
    except BaseException as error:
        _write(replies, ("failed", f"{type(error).__name__}: {error}"))
        return
    _write(replies, ("ready", os.getpid()))
    while True:
        try:
            message = _read(requests)
        except EOFError:
            return
        kind = message[0]
        if kind == "call":
            _, method, args, kwargs = message
            try:
                reply: tuple[Any, ...] = ("ok", getattr(worker, method)(*args, **kwargs))
            except Exception as error:
                reply = ("error", _picklable(error))
            _write(replies, (*reply, bool(getattr(worker, "retire", False))))
        elif kind == "map":
            _, method, items, args = message
            for item in items:
                try:
                    _write(replies, ("ok", getattr(worker, method)(item, *args)))
                except Exception as error:
                    _write(replies, ("error", _picklable(error)))
                if getattr(worker, "retire", False):
                    _write(replies, ("retire", None))
                    return
            _write(replies, ("end", None))
        elif kind == "iter":
            _, method, args, kwargs = message
            _iterate(getattr(worker, method)(*args, **kwargs), worker, requests, replies)
        if getattr(worker, "retire", False):
            return


def _iterate(generator: Iterator[Any], worker: Any, requests: int, replies: int) -> None:
    try:
        while True:
            try:
                message = _read(requests)
            except EOFError:
                return
            if message[0] != "next":
                return
            try:
                reply: tuple[Any, ...] = ("item", next(generator))
            except StopIteration:
                reply = ("end", None)
            except Exception as error:
                reply = ("error", _picklable(error))
            _write(replies, (*reply, bool(getattr(worker, "retire", False))))
            if reply[0] != "item":
                return
    finally:
        with contextlib.suppress(Exception):
            generator.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
