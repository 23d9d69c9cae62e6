"""Counters of a batch job, a progress line on stderr (rate and ETA), and the summary.

No dependency: on a terminal the line is redrawn in place a few times a second; in a log
(not a TTY) a line is printed every `log_interval_s`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO


@dataclass
class BatchSummary:
    """What a batch job did. `done`/`failed` count this run; `skipped` counts records
    already in the output from earlier runs; `throughput` is this run's records per second."""

    task: str
    input: str
    output: str
    total: int | None = None  # records in the input, when counted
    done: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0  # failures kept from earlier runs (4xx): --retry-failed redoes them
    duplicates: int = 0  # ids seen twice in the input: done once
    requests: int = 0
    elapsed_s: float = 0.0
    aborted: str | None = None  # why the job stopped early (bad API key, server down, ...)
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def throughput(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.aborted is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data["throughput"] = round(self.throughput, 2)
        return data

    def render(self) -> str:
        status = f"stopped early: {self.aborted}" if self.aborted else "finished"
        rows = [
            f"pais batch {self.task} {status}",
            f"  input      {self.input}" + (f" ({self.total} records)" if self.total is not None else ""),
            f"  output     {self.output}",
            f"  done       {self.done}",
            f"  failed     {self.failed}" + (" (see their error lines in the output)" if self.failed else ""),
            f"  skipped    {self.skipped} (already in the output)",
        ]
        if self.skipped_failed:
            rows.append(f"  earlier    {self.skipped_failed} failed earlier (--retry-failed redoes them)")
        if self.duplicates:
            rows.append(f"  duplicates {self.duplicates} (ids repeated in the input, done once)")
        rows.append(
            f"  time       {format_duration(self.elapsed_s)}, {self.throughput:.1f} records/s, "
            f"{self.requests} requests"
        )
        return "\n".join(rows)


def format_duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    def __init__(self, summary: BatchSummary, stream: TextIO | None = None, log_interval_s: float = 10.0):
        self.summary = summary
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval_s = 0.25 if self.tty else log_interval_s

    def line(self) -> str:
        s = self.summary
        elapsed = time.monotonic() - s.started
        rate = s.processed / elapsed if elapsed > 0 else 0.0
        seen = s.processed + s.skipped + s.duplicates
        if s.total:
            left = max(0, s.total - seen)
            eta = format_duration(left / rate) if rate > 0 else "?"
            head = f"{seen}/{s.total} {100 * seen / s.total:5.1f}%"
        else:
            head, eta = f"{seen}/?", "?"
        return (
            f"{s.task} {head}  done {s.done}  failed {s.failed}  skipped {s.skipped}  "
            f"{rate:.1f}/s  ETA {eta}  elapsed {format_duration(elapsed)}"
        )

    def draw(self, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    async def run(self) -> None:
        """Redraw until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                self.draw()
        except asyncio.CancelledError:
            self.draw(final=True)
            raise
