"""Apertium: rule-based translation with the installed Debian language pairs.

Each pair's mode (e.g. `eng-spa`: analyser | tagger | transfer stages | generator, about a
dozen programs) runs as one long-lived pipeline in null-flush mode (`-z` on every stage,
as `apertium-wblank-mode -z` writes it): every NUL-terminated input is answered with one
NUL-terminated output and the processes stay up, so no request pays the ~150 ms start of
a pipeline. Many sentences can be in flight at once (each stage works on a different
one), which is where the throughput comes from. A small pool per pair adds pipelines
when callers overlap. A pipeline that exits is replaced; one that stops answering for
`timeout_s` while work is pending is killed and replaced; a batch caught in either is
retried once on a fresh pipeline. The replacement starts as soon as a pipeline dies, not
when the next request comes, so that request finds it loaded.

Each stage is its own process fed only through the pipe: a stage that crashes or hangs
on some text costs the sentences in flight in that pipeline (retried elsewhere), never the
service; and a stage keeps no state from one NUL-terminated input to the next that its
answer depends on (tests/test_translation_apertium.py checks both).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ErrorKind
from ..info import ModelInfo
from ..sources import SourceError
from . import apertium_format
from .engine import Engine, EngineError, Pair
from .languages import to_iso1

log = logging.getLogger("pais.translation.apertium")

DATA_DIRS = (Path("/usr/share/apertium"), Path("/usr/local/share/apertium"))
ENGINE_PACKAGE = "apertium"
_MODE_NAME = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")  # variants (eng-cat_valencia) are left out
_PACKAGE_DIR = re.compile(r"/(apertium-[a-z]{2,3}-[a-z]{2,3})/")


@dataclass(frozen=True)
class Mode:
    name: str  # apertium's direction name, e.g. "eng-spa"
    path: Path  # its .mode file
    source: str  # ISO 639-1
    target: str
    package: str  # the language-data package, e.g. "apertium-eng-spa"

    @property
    def model(self) -> str:
        return f"apertium:{self.name}"


def data_dirs() -> list[Path]:
    override = os.environ.get("APERTIUM_DATADIR")
    return [Path(override)] if override else [d for d in DATA_DIRS if d.is_dir()]


def discover_modes() -> list[Mode]:
    """Every installed translation direction whose two languages have ISO 639-1 codes."""
    modes: dict[str, Mode] = {}
    for data_dir in data_dirs():
        for path in sorted((data_dir / "modes").glob("*.mode")):
            match = _MODE_NAME.match(path.stem)
            if not match or path.stem in modes:
                continue
            source, target = to_iso1(match.group(1)), to_iso1(match.group(2))
            if not source or not target:
                continue
            package = _PACKAGE_DIR.search(path.read_text())
            name = package.group(1) if package else f"apertium-{path.stem}"
            modes[path.stem] = Mode(path.stem, path, source, target, name)
    return list(modes.values())


def pipeline_command(mode: Mode) -> str:
    """The mode's shell pipeline with null-flush on every stage."""
    if not shutil.which("apertium-wblank-mode"):
        raise SourceError("apertium-wblank-mode not found: install the Debian package `apertium` (>= 3.8)")
    result = subprocess.run(
        ["apertium-wblank-mode", "-z", str(mode.path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise SourceError(f"apertium-wblank-mode could not read {mode.path}: {result.stderr.strip()}")
    return result.stdout.strip()


class PipelineDied(EngineError):
    """A pipeline that died under a batch. `kind` says how, as the ItemError kind of the
    text that did it once a retry has shown it is the text: timeout (no answer), or
    unprocessable (a stage crashed or answered out of step)."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.UNPROCESSABLE):
        super().__init__(message)
        self.kind = kind


def _utf8_environment() -> dict[str, str]:
    # The stages read and write UTF-8 only under a UTF-8 locale.
    return {**os.environ, "LC_ALL": "C.UTF-8"}


class Pipeline:
    """One running pipeline. Thread-safe: callers' sentences are written in order by a
    writer thread and answers matched back in order by a reader thread."""

    def __init__(
        self,
        mode: Mode,
        command: str,
        show_unknown: bool = False,
        on_death: Callable[[], None] | None = None,
    ):
        self.mode = mode
        self._on_death = on_death  # the pool starts a replacement at once
        # $1 is the generator's option: -n drops apertium's unknown-word marks (*, #, @),
        # -g keeps them. $2 (tagger options) stays empty.
        generator = "-g" if show_unknown else "-n"
        self._process = subprocess.Popen(
            ["bash", "-c", command, "apertium", generator, ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_utf8_environment(),
            start_new_session=True,  # one process group: killed together
        )
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, Future[str]]] = deque()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._next_tag = 0
        self._stderr: deque[str] = deque(maxlen=20)
        self.dead_reason: str | None = None
        self.dead_kind = ErrorKind.ENGINE
        self.last_progress = time.monotonic()
        for target in (self._write_loop, self._read_loop, self._stderr_loop):
            threading.Thread(target=target, daemon=True, name=f"apertium-{mode.name}").start()

    @property
    def pid(self) -> int:
        """The process group of the pipeline's programs."""
        return self._process.pid

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def alive(self) -> bool:
        return self.dead_reason is None

    def submit(self, sentences: Sequence[str]) -> list[tuple[int, Future[str]]]:
        """Queue sentences; each future resolves to the raw framed answer."""
        with self._lock:
            if self.dead_reason:
                raise PipelineDied(self.dead_reason, self.dead_kind)
            if not self._pending:
                self.last_progress = time.monotonic()
            jobs = []
            frames = []
            for sentence in sentences:
                tag = self._next_tag
                self._next_tag += 1
                future: Future[str] = Future()
                jobs.append((tag, future))
                frames.append(apertium_format.frame(sentence, tag))
            self._pending.extend(jobs)
            self._outbox.put(b"".join(frames))
        return jobs

    def translate(self, sentences: Sequence[str], timeout_s: float) -> list[str]:
        results = []
        for tag, future in self.submit(sentences):
            raw = self._wait(future, timeout_s)
            try:
                results.append(apertium_format.unframe(raw, tag))
            except apertium_format.FrameError as error:
                self.kill(f"out of step: {error}")
                raise PipelineDied(str(error)) from error
        return results

    def _wait(self, future: Future[str], timeout_s: float) -> str:
        while True:
            try:
                return future.result(timeout=min(1.0, timeout_s))
            except FutureTimeout:
                # Stuck means: work pending and no answer for timeout_s (a long batch that
                # keeps answering is not stuck).
                if time.monotonic() - self.last_progress > timeout_s:
                    self.kill(f"no answer for {timeout_s:g} s", ErrorKind.TIMEOUT)

    def kill(self, reason: str, kind: ErrorKind = ErrorKind.UNPROCESSABLE) -> None:
        with self._lock:
            first = self.dead_reason is None
            if first:
                self.dead_reason = f"apertium {self.mode.name} pipeline {reason}"
                self.dead_kind = kind
                if reason != "closed":
                    log.warning("%s; it will be replaced", self.dead_reason)
            pending = list(self._pending)
            self._pending.clear()
            self._outbox.put(None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        for _, future in pending:
            if not future.done():
                future.set_exception(PipelineDied(self.dead_reason or reason, self.dead_kind))
        if first and reason != "closed" and self._on_death is not None:
            self._on_death()

    def close(self) -> None:
        self.kill("closed")
        self._process.wait()

    def _write_loop(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        while (data := self._outbox.get()) is not None:
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.kill("closed its input")
                return

    def _read_loop(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        buffer = b""
        while chunk := stdout.read1(1 << 16):
            self.last_progress = time.monotonic()
            buffer += chunk
            *answers, buffer = buffer.split(b"\0")
            for answer in answers:
                with self._lock:
                    if not self._pending:
                        continue  # answers of a pipeline being killed
                    _, future = self._pending.popleft()
                future.set_result(answer.decode("utf-8", errors="replace"))
        code = self._process.wait()
        tail = " | ".join(self._stderr)
        self.kill(f"exited with status {code}" + (f": {tail}" if tail else ""))

    def _stderr_loop(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        for line in stderr:
            self._stderr.append(line.decode("utf-8", errors="replace").strip())


class PipelinePool:
    """Up to `size` pipelines of one mode; grows when every pipeline is busy."""

    MIN_CHUNK = 8  # sentences below which splitting a batch across pipelines costs more than it wins

    def __init__(self, mode: Mode, size: int, timeout_s: float, show_unknown: bool):
        self.mode = mode
        self.size = size
        self.timeout_s = timeout_s
        self.show_unknown = show_unknown
        self._command = pipeline_command(mode)
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        self._pipelines: list[Pipeline] = [self._start()]

    @property
    def pipelines(self) -> list[Pipeline]:
        with self._lock:
            return list(self._pipelines)

    def _start(self) -> Pipeline:
        return Pipeline(self.mode, self._command, self.show_unknown, on_death=self._replace_dead)

    def _replace_dead(self) -> None:
        with self._lock:
            if self._closed:
                return
            for i, pipeline in enumerate(self._pipelines):
                if not pipeline.alive:
                    self._pipelines[i] = self._start()
                    self.restarts += 1

    def _pick(self) -> Pipeline:
        self._replace_dead()  # normally done already, when the pipeline died
        with self._lock:
            idle = [p for p in self._pipelines if p.in_flight == 0]
            if not idle and len(self._pipelines) < self.size:
                self._pipelines.append(self._start())
                return self._pipelines[-1]
            return min(self._pipelines, key=lambda p: p.in_flight)

    def translate(self, sentences: Sequence[str]) -> list[str]:
        if not sentences:
            return []
        chunks = max(1, min(self.size, len(sentences) // self.MIN_CHUNK))
        step = -(-len(sentences) // chunks)
        parts = [list(sentences[i : i + step]) for i in range(0, len(sentences), step)]
        if len(parts) == 1:
            return self._translate_chunk(parts[0])
        results: list[list[str] | BaseException] = [[] for _ in parts]

        def run(index: int) -> None:
            try:
                results[index] = self._translate_chunk(parts[index])
            except BaseException as error:  # re-raised in the caller's thread below
                results[index] = error

        threads = [threading.Thread(target=run, args=(i,)) for i in range(1, len(parts))]
        for thread in threads:
            thread.start()
        run(0)
        for thread in threads:
            thread.join()
        out: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            out.extend(result)
        return out

    def _translate_chunk(self, sentences: list[str]) -> list[str]:
        try:
            return self._pick().translate(sentences, self.timeout_s)
        except PipelineDied as first:
            # Possibly another caller's input broke the shared pipeline: one retry on a
            # fresh one. An input that breaks it again fails for its own caller.
            log.warning("retrying %d sentences after: %s", len(sentences), first)
            try:
                return self._pick().translate(sentences, self.timeout_s)
            except PipelineDied as second:
                raise PipelineDied(str(second), second.kind) from second

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pipelines, self._pipelines = self._pipelines, []
        for pipeline in pipelines:
            pipeline.close()


def _dpkg_version(package: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def _debian_licences(package: str) -> str | None:
    """The licences a Debian package's machine-readable copyright file names for its
    upstream files (the packaging's own `debian/*` stanza left out)."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if not copyright_file.is_file():
        return None
    licences: list[str] = []
    for stanza in re.split(r"\n\s*\n", copyright_file.read_text(errors="replace")):
        fields = dict(re.findall(r"^(Files|License):[ \t]*(.*)$", stanza, flags=re.MULTILINE))
        upstream = "Files" in fields and not fields["Files"].startswith("debian/")
        if upstream and fields.get("License") and fields["License"] not in licences:
            licences.append(fields["License"])
    return " AND ".join(licences) or None


class ApertiumEngine(Engine):
    def __init__(
        self,
        modes: Sequence[Mode],
        source_uri: str,
        pipelines_per_pair: int = 2,
        timeout_s: float = 30.0,
        show_unknown: bool = False,
    ):
        if not modes:
            raise SourceError(
                "no apertium language pair installed; install e.g. the Debian packages "
                "apertium-eng-spa and apertium-eng-cat (make system-deps)"
            )
        self.source_uri = source_uri
        self.modes = {(m.source, m.target): m for m in modes}
        self.show_unknown = show_unknown
        self._pools = {
            pair: PipelinePool(mode, pipelines_per_pair, timeout_s, show_unknown)
            for pair, mode in self.modes.items()
        }
        self._engine_version = _dpkg_version(ENGINE_PACKAGE) or "unknown"
        self._cards = self._describe()

    @classmethod
    def load(cls, spec: str, source_uri: str, **options: Any) -> ApertiumEngine:
        """`spec`: "*" (every installed pair), or a comma-free direction: eng-spa or en-es."""
        installed = discover_modes()
        if spec in ("*", ""):
            return cls(installed, source_uri, **options)
        wanted = [m for m in installed if spec in (m.name, f"{m.source}-{m.target}")]
        if not wanted:
            names = ", ".join(f"{m.name} ({m.source}-{m.target})" for m in installed) or "none"
            raise SourceError(f"apertium:{spec}: no such installed pair; installed: {names}")
        return cls(wanted, source_uri, **options)

    @property
    def pairs(self) -> dict[Pair, str]:
        return {pair: mode.model for pair, mode in self.modes.items()}

    def translate(self, sentences: Sequence[str], source: str, target: str) -> list[str]:
        return self._pools[(source, target)].translate(sentences)

    def cards(self) -> list[ModelInfo]:
        return self._cards

    def _describe(self) -> list[ModelInfo]:
        by_package: dict[str, list[Mode]] = {}
        for mode in self.modes.values():
            by_package.setdefault(mode.package, []).append(mode)
        cards = []
        for package, modes in sorted(by_package.items()):
            data_version = _dpkg_version(package) or "unknown (not installed through dpkg)"
            data_licence = _debian_licences(package) or "GPL (see the pair's COPYING file)"
            engine_licence = _debian_licences(ENGINE_PACKAGE) or "GPL-2+"
            cards.append(
                ModelInfo(
                    task="translation",
                    name=package,
                    source=self.source_uri,
                    version=f"{package}={data_version}; apertium={self._engine_version}",
                    licence=f"{data_licence} (language data); {engine_licence} (apertium engine)",
                    origin=(
                        f"Apertium rule-based machine translation, language data from the Debian package "
                        f"{package}; run as separate processes (not linked into PAIS)"
                    ),
                    details={
                        "engine": "apertium",
                        "pairs": [f"{m.source}->{m.target}" for m in modes],
                        "modes": [m.name for m in modes],
                        "pipelines_per_pair": self._pools[(modes[0].source, modes[0].target)].size,
                        "unknown_word_marks": self.show_unknown,
                    },
                )
            )
        return cards

    def manifest(self) -> dict[str, Any]:
        return {"kind": "apertium", "modes": sorted(mode.name for mode in self.modes.values())}

    def pool(self, source: str, target: str) -> PipelinePool:
        return self._pools[(source, target)]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
