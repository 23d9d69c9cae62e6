"""The batch engine: reads records lazily, groups them into requests, keeps a bounded
number of requests in flight, and writes each result the moment it arrives.

Memory stays flat whatever the input's size: records are read 256 at a time as slots
free up, at most `concurrency` requests of at most `batch_size` records are in flight, and
files are streamed from disk when their request is sent. The one thing that grows is the
set of ids seen (needed to skip what earlier runs did and to spot repeated ids), tens of
bytes per record.

A rejected multi-record request does not fail its records together: when the server
names the bad inputs (`detail[].index`), each of them is sent again alone (so its line
carries its own error) and the rest go again as one request; otherwise the group is
halved until the bad record stands alone. A 413 also lowers the batch size for the rest of
the job. Records whose request failed for server or network reasons (after the client's
retries) are written as retryable failures, which a rerun tries again; 401/403 stop the
job (every record would fail the same way) without writing anything for the records
concerned, and so does a run of failed requests in a row (the server is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol, TextIO, TypeVar

from ..calls import Call
from ..errors import APIError, ClientError, PaisConnectionError, PaisError, ResponseFormatError
from ..results import Binary
from .progress import BatchSummary, ProgressLine
from .records import Record, Source
from .sinks import Sink
from .tasks import Task

T = TypeVar("T")
READ_AHEAD = 256  # records read from the input per trip to a worker thread
MAX_OPEN_GROUPS = 64  # distinct option sets being filled at once (records with per-record options)
STOP_STATUSES = (401, 403)


class Transport(Protocol):
    async def send(self, call: Call[T]) -> T: ...


class JobAborted(PaisError):
    pass


class BatchJob:
    def __init__(
        self,
        task: Task,
        source: Source,
        sink: Sink,
        transport: Transport,
        *,
        options: dict[str, Any] | None = None,
        concurrency: int = 8,
        batch_size: int | None = None,
        retry_failed: bool = False,
        progress: bool | TextIO = True,
        count_total: bool = True,
        max_failed_requests_in_a_row: int = 10,
    ):
        self.task = task
        self.source = source
        self.sink = sink
        self.transport = transport
        self.options = dict(options or {})
        task.check_options(self.options)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.batch_size = max(1, batch_size or task.default_batch_size) if task.batchable else 1
        self.retry_failed = retry_failed
        self.progress = progress
        self.count_total = count_total
        self.max_failed_in_a_row = max_failed_requests_in_a_row
        self.failed_in_a_row = 0
        self.summary = BatchSummary(task.name, source.describe(), sink.description)
        self.previous: set[str] = set()
        self.seen: set[str] = set()
        self.crash: BaseException | None = None

    # -- the job --------------------------------------------------------------------

    async def run(self) -> BatchSummary:
        scan = await self.sink.open(self.retry_failed)
        self.previous = scan.done
        self.summary.skipped_failed = scan.failed
        self.summary.started = time.monotonic()
        stop_counting = threading.Event()
        if self.count_total:
            threading.Thread(target=self._count, args=(stop_counting,), daemon=True).start()
        helpers = [asyncio.create_task(self._sync_periodically())]
        if self.progress:
            stream = None if self.progress is True else self.progress
            helpers.append(asyncio.create_task(ProgressLine(self.summary, stream).run()))
        try:
            await self._schedule()
            if self.summary.aborted is None:  # the whole input was read: its exact size
                s = self.summary
                s.total = s.processed + s.skipped + s.duplicates
        finally:
            stop_counting.set()
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            self.summary.elapsed_s = time.monotonic() - self.summary.started
            await self.sink.close(complete=self.summary.aborted is None)
        if self.crash is not None:
            raise self.crash
        return self.summary

    async def _schedule(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        try:
            async for group in self._groups():
                await slots.acquire()
                if self.summary.aborted:
                    slots.release()
                    break
                task = asyncio.create_task(self._run_group(group))
                running.add(task)
                task.add_done_callback(finished)
            await asyncio.gather(*running)
        except BaseException as error:  # cancelled (Ctrl-C) or the input broke: stop what is in flight
            self.abort(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _sync_periodically(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sink.sync_if_due()

    def abort(self, reason: str) -> None:
        if self.summary.aborted is None:
            self.summary.aborted = reason

    def _count(self, stop: threading.Event) -> None:
        """Count the input (in its own thread, beside the job) for the progress line's ETA."""
        total = 0
        with contextlib.suppress(Exception):  # a count is a nicety; the job reports real errors
            for _ in self.source.records():
                if stop.is_set():
                    return
                total += 1
            self.summary.total = total

    # -- reading and grouping -------------------------------------------------------

    async def _records(self) -> AsyncIterator[Record]:
        iterator = self.source.records()
        while True:
            chunk = await asyncio.to_thread(_take, iterator, READ_AHEAD)
            if not chunk:
                return
            for record in chunk:
                yield record

    async def _groups(self) -> AsyncIterator[list[Record]]:
        """Records not done yet, in groups that share their options (one request each)."""
        open_groups: dict[str, list[Record]] = {}
        async for record in self._records():
            if record.id in self.previous:
                self.summary.skipped += 1
                continue
            if record.id in self.seen:
                self.summary.duplicates += 1
                continue
            self.seen.add(record.id)
            if record.error is not None or self.batch_size == 1:
                yield [record]
                continue
            key = self.task.group_key(record, self.options)
            group = open_groups.setdefault(key, [])
            group.append(record)
            if len(group) >= self.batch_size:
                yield open_groups.pop(key)
            elif len(open_groups) > MAX_OPEN_GROUPS:
                yield open_groups.pop(next(iter(open_groups)))
        for group in open_groups.values():
            yield group

    # -- one group ------------------------------------------------------------------

    async def _run_group(self, records: list[Record]) -> None:
        try:
            items: list[tuple[Record, Any]] = []
            for record in records:
                if record.error is not None:
                    await self._fail(record, {"error": record.error}, retryable=False)
                    continue
                try:
                    items.append((record, await self.task.load(record)))
                except Exception as error:  # the record's input: missing file, S3 error, not text
                    retryable = not isinstance(error, ValueError)
                    await self._fail(record, {"error": f"cannot read the input: {error}"}, retryable)
            if items:
                await self._send(items)
        except JobAborted as error:
            self.abort(str(error))
        except Exception as error:  # a bug or a broken output: stop cleanly, then raise it
            self.abort(f"{type(error).__name__}: {error}")
            self.crash = error

    async def _send(self, items: list[tuple[Record, Any]]) -> None:
        options = self.task.options_of(items[0][0], self.options)
        try:
            call = self.task.call([payload for _, payload in items], options)
        except (TypeError, ValueError) as error:  # a missing or unknown option, a bad value
            for record, _ in items:
                await self._fail(record, {"error": f"{self.task.name}: {error}"}, retryable=False)
            return
        self.summary.requests += 1
        try:
            answer = await self.transport.send(call)
            results = self.task.results(answer, len(items))
        except ClientError as error:
            if error.status in STOP_STATUSES:
                raise JobAborted(f"{error.status}: {error.message}") from error
            if error.retryable:  # 429 after the client's retries
                await self._server_trouble(items, error.to_dict())
            else:
                await self._rejected(items, error)
            return
        except APIError as error:
            await self._server_trouble(items, error.to_dict())
            return
        except PaisConnectionError as error:
            await self._server_trouble(items, {"error": str(error)})
            return
        except ResponseFormatError as error:
            raise JobAborted(f"unexpected answer from the server: {error}") from error
        except PaisError as error:  # the target refused the call itself (SageMaker: no such endpoint)
            raise JobAborted(str(error)) from error
        self.failed_in_a_row = 0
        for (record, _), result in zip(items, results, strict=True):
            await self._succeed(record, result)

    async def _rejected(self, items: list[tuple[Record, Any]], error: ClientError) -> None:
        """A 4xx: the bad records fail alone, the others are sent again."""
        if len(items) == 1:
            await self._fail(items[0][0], error.to_dict(), retryable=False)
            return
        if error.status == 413:  # too many or too large: smaller requests from now on
            self.batch_size = max(1, min(self.batch_size, len(items) // 2))
        bad = sorted(set(_named_indices(error.detail)) & set(range(len(items))))
        if bad:
            for index in bad:
                await self._send([items[index]])
            rest = [item for index, item in enumerate(items) if index not in bad]
            if rest:
                await self._send(rest)
        else:
            half = len(items) // 2
            await self._send(items[:half])
            await self._send(items[half:])

    async def _server_trouble(self, items: list[tuple[Record, Any]], error: dict[str, Any]) -> None:
        for record, _ in items:
            await self._fail(record, error, retryable=True)
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= self.max_failed_in_a_row:
            raise JobAborted(
                f"{self.failed_in_a_row} requests in a row failed after retries ({error.get('error')}); "
                "rerun to try their records again"
            )

    async def _succeed(self, record: Record, result: Any) -> None:
        if isinstance(result, Binary):
            result = await self.sink.save_file(record.id, result)
        await self.sink.write({"id": record.id, "ok": True, "result": result})
        self.summary.done += 1

    async def _fail(self, record: Record, error: dict[str, Any], retryable: bool) -> None:
        await self.sink.write({"id": record.id, "ok": False, "error": {**error, "retryable": retryable}})
        self.summary.failed += 1


def _named_indices(detail: Any) -> Iterator[int]:
    """Indices of the inputs a PAIS error names: detail = [{"index": 2, ...}, ...]."""
    if isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                yield item["index"]


def _take(iterator: Iterator[Record], count: int) -> list[Record]:
    return list(itertools.islice(iterator, count))
