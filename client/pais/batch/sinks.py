"""Where a batch job's results go: a local JSONL file, or an S3 prefix.

Both write one line per record, `{"id", "ok": true, "result"}` or `{"id", "ok": false,
"error": {"status", "error", "detail", "retryable"}}`, and put answers that are files
(audio, annotated images) beside the lines, each written whole before the line that
names it.

S3 has no append, so "atomic append" is built from what it does have, whole-object PUTs:
lines go to a local journal segment (the same kill-safe journal as a local output); every
`part_records` lines or `part_interval_s` seconds the segment is closed and PUT as one
immutable part, `parts/part-<run>-NNNNNN.jsonl`, then `_manifest.json` is rewritten (parts,
counts, and `complete` once the input is exhausted), then the segment is deleted. The
parts are the committed state: a rerun reads them for the ids already done and drops those
ids from any segment a killed run left behind before uploading the rest, so a record is
never in two parts. What a kill loses is at most the segment of another machine (the
state directory is local), and those records are simply done again.

One job writes an output at a time, across machines: the job holds the output's lease
(`_lease.json`, pais/batch/lease.py) from before it reads the parts until after its last
manifest, and a second job stops with a message naming the holder. Parts are named by run
(a time stamp and a random part) and created with IfNoneMatch="*", so even two writers
that got past the lease could not overwrite each other's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import IO, Any

from ..results import Audio, Binary
from .journal import Journal, ScanResult, fsync_directory, is_final, lock_beside, repair, scan_lines
from .journal import write_file_atomically as write_local_file
from .lease import DEFAULT_TTL_S, Lease, owner_id
from .s3 import S3Location


def file_name(record_id: str, extension: str) -> str:
    """A file name for a record's output: readable, and unique per id (the hash) so two ids
    that slug alike never share a file, and a redone record overwrites its own."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", record_id).strip("._")[:80] or "record"
    digest = hashlib.blake2b(record_id.encode(), digest_size=5).hexdigest()
    return f"{slug}-{digest}.{extension}"


def file_result(reference: str, answer: Binary) -> dict[str, Any]:
    result: dict[str, Any] = {
        "file": reference,
        "content_type": answer.content_type,
        "bytes": len(answer.content),
    }
    if isinstance(answer, Audio):
        result["sample_rate"] = answer.sample_rate
        result["duration_s"] = answer.duration_s
    return result


class Sink:
    """The output of a batch job."""

    description: str
    scan: ScanResult

    async def open(self, retry_failed: bool) -> ScanResult:
        """Read back what earlier runs did (ids to skip) and get ready to write."""
        raise NotImplementedError

    async def write(self, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    async def save_file(self, record_id: str, answer: Binary) -> dict[str, Any]:
        """Store a file answer; the `result` of its line."""
        raise NotImplementedError

    def sync_if_due(self) -> None:
        """fsync the lines written since the last sync, if the interval has passed."""

    async def close(self, complete: bool) -> None:
        raise NotImplementedError


class LocalSink(Sink):
    """`results.jsonl`, with file answers in `results.files/`."""

    def __init__(self, path: str | os.PathLike[str], fsync_interval_s: float = 1.0):
        self.path = Path(path)
        self.description = str(self.path)
        self.files_dir = self.path.with_name(self.path.stem + ".files")
        self.journal = Journal(self.path, fsync_interval_s)

    async def open(self, retry_failed: bool) -> ScanResult:
        self.scan = await asyncio.to_thread(self.journal.open, lambda entry: is_final(entry, retry_failed))
        return self.scan

    async def write(self, entry: dict[str, Any]) -> None:
        self.journal.append(entry)

    def sync_if_due(self) -> None:
        self.journal.sync_if_due()

    async def save_file(self, record_id: str, answer: Binary) -> dict[str, Any]:
        target = self.files_dir / file_name(record_id, answer.extension)
        await asyncio.to_thread(write_local_file, target, answer.content)
        return file_result(os.path.relpath(target, self.path.parent), answer)

    async def close(self, complete: bool) -> None:
        self.journal.close()


def default_state_dir(uri: str) -> Path:
    base = os.environ.get("PAIS_STATE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pais", "batch"
    )
    return Path(base) / hashlib.sha256(uri.encode()).hexdigest()[:16]


# parts/part-<run>-NNNNNN.jsonl (and part-NNNNNN.jsonl, as earlier versions named them)
PART = re.compile(r"part-(?:[0-9]{8}T[0-9]{6}Z-[0-9a-f]+-)?(\d{6,})\.jsonl$")
SEGMENT = re.compile(r"segment-(\d{6,})\.jsonl$")


def sequence(pattern: re.Pattern[str], name: str) -> int | None:
    match = pattern.search(name)
    return int(match.group(1)) if match else None


def run_id() -> str:
    """This run's name in its part names: when it started (so parts sort by run) and a
    random part (so two runs started in the same second still differ)."""
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{started}-{secrets.token_hex(4)}"


class S3Sink(Sink):
    """`s3://bucket/prefix/`: `parts/part-<run>-NNNNNN.jsonl`, `_manifest.json`, `files/`,
    and while a job runs, its `_lease.json`."""

    def __init__(
        self,
        uri: str,
        state_dir: str | os.PathLike[str] | None = None,
        fsync_interval_s: float = 1.0,
        part_records: int = 1000,
        part_interval_s: float = 30.0,
        job: dict[str, Any] | None = None,
        lease_ttl_s: float = DEFAULT_TTL_S,
    ):
        self.root = S3Location.parse(uri.rstrip("/") + "/")
        self.run = run_id()
        self.lease_ttl_s = lease_ttl_s
        self.lease: Lease | None = None
        self.description = self.root.uri
        self.state_dir = Path(state_dir) if state_dir else default_state_dir(self.root.uri)
        self.fsync_interval_s = fsync_interval_s
        self.part_records = part_records
        self.part_interval_s = part_interval_s
        self.job = job or {}
        self.parts: list[str] = []
        self.next_seq = 1
        self.segment: Journal | None = None
        self.segment_seq = 0
        self.segment_started = 0.0
        self._lock: IO[bytes] | None = None
        self._upload: asyncio.Task[None] | None = None
        self._rotating = asyncio.Lock()

    def _part(self, seq: int) -> S3Location:
        return self.root.child(f"parts/part-{self.run}-{seq:06d}.jsonl")

    def _segment_path(self, seq: int) -> Path:
        return self.state_dir / f"segment-{seq:06d}.jsonl"

    async def open(self, retry_failed: bool) -> ScanResult:
        await asyncio.to_thread(self._open, lambda entry: is_final(entry, retry_failed))
        return self.scan

    def _open(self, keep: Any) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = lock_beside(self.state_dir / "job")
        self.lease = Lease(
            self.root.child("_lease.json"), owner_id(self.state_dir), self.run, self.lease_ttl_s
        )
        try:
            self.lease.acquire()
            self._read_back(keep)
        except BaseException:  # give the output back to other jobs: this one will not run
            self.lease.release()
            self._lock.close()
            self._lock = None
            raise

    def _read_back(self, keep: Any) -> None:
        """Read the committed parts (ids done), commit what a killed run left locally, and
        start a segment. Blocking; under the lease."""
        self.scan = ScanResult()
        seqs = [0]
        for key in sorted(self.root.child("parts/").iter_keys()):
            seq = sequence(PART, key)
            if seq is None:
                continue
            seqs.append(seq)
            part = S3Location(self.root.bucket, key)
            lines = list(part.iter_lines())  # a part is at most part_records lines
            kept = list(scan_lines(iter(lines), keep, self.scan))
            if len(kept) == len(lines):
                self.parts.append(key)
            elif kept:  # failures to retry, or a torn line: the part is replaced, whole
                part.write(b"".join(kept), "application/jsonl")
                self.parts.append(key)
            else:
                part.delete()
        leftovers = {}  # segments of a killed run on this machine, by sequence number
        for path in self.state_dir.glob("segment-*.jsonl"):
            seq = sequence(SEGMENT, path.name)
            if seq is not None:
                leftovers[seq] = path
        self.next_seq = max(seqs + list(leftovers)) + 1
        for seq, path in sorted(leftovers.items()):
            repair(path, keep, self.scan)  # drops ids already committed in parts
            self._commit(path, seq)
        self._new_segment()

    def _new_segment(self) -> None:
        self.segment_seq = self.next_seq
        self.segment = Journal(self._segment_path(self.next_seq), self.fsync_interval_s, locked=False)
        self.segment.open(lambda entry: True)
        self.next_seq += 1
        self.segment_started = time.monotonic()

    def _commit(self, path: Path, seq: int) -> None:
        """PUT a closed segment as part `seq` (unless it is empty), rewrite the manifest,
        delete the segment. Blocking."""
        assert self.lease is not None
        self.lease.check()
        data = path.read_bytes()
        if data:
            key = self._part(seq)
            if key.create(data, "application/jsonl") is None:
                raise RuntimeError(f"{key.uri} exists already: another writer used this run's name")
            self.parts.append(key.key)
        self._write_manifest(complete=False)
        path.unlink()
        fsync_directory(path.parent)

    def _write_manifest(self, complete: bool) -> None:
        assert self.lease is not None
        self.lease.check()  # a job that lost its lease must not overwrite the holder's manifest
        manifest = {
            **self.job,
            "parts": [f"s3://{self.root.bucket}/{key}" for key in self.parts],
            "ok": self.scan.ok,
            "failed": self.scan.failed,
            "complete": complete,
            "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        self.root.child("_manifest.json").write(json.dumps(manifest, indent=1).encode(), "application/json")

    async def write(self, entry: dict[str, Any]) -> None:
        assert self.segment is not None
        self.segment.append(entry)
        if entry["ok"]:
            self.scan.ok += 1
        else:
            self.scan.failed += 1
        age = time.monotonic() - self.segment_started
        if self.segment.lines >= self.part_records or age >= self.part_interval_s:
            await self._rotate()

    async def _rotate(self) -> None:
        """Close the segment and upload it in the background (one upload at a time: the
        next rotation waits for the previous upload, which bounds local state)."""
        async with self._rotating:  # writers that meet the limit together rotate once
            assert self.segment is not None
            if self._upload is not None:
                await self._upload
                self._upload = None
            age = time.monotonic() - self.segment_started
            if self.segment.lines < self.part_records and age < self.part_interval_s:
                return  # another writer rotated while this one waited
            if self.segment.lines == 0:
                self.segment_started = time.monotonic()
                return
            closed, seq = self.segment, self.segment_seq
            closed.close()
            self._new_segment()
            self._upload = asyncio.create_task(asyncio.to_thread(self._commit, closed.path, seq))

    def sync_if_due(self) -> None:
        if self.segment is not None:
            self.segment.sync_if_due()

    async def save_file(self, record_id: str, answer: Binary) -> dict[str, Any]:
        target = self.root.child(f"files/{file_name(record_id, answer.extension)}")
        await asyncio.to_thread(target.write, answer.content, answer.content_type)
        return file_result(target.uri, answer)

    async def close(self, complete: bool) -> None:
        try:
            if self._upload is not None:
                await self._upload
            if self.segment is not None:
                closed, self.segment = self.segment, None
                closed.close()
                await asyncio.to_thread(self._commit, closed.path, self.segment_seq)
            await asyncio.to_thread(self._write_manifest, complete)
        finally:
            if self.lease is not None:
                await asyncio.to_thread(self.lease.release)
            if self._lock is not None:
                with contextlib.suppress(OSError):
                    self._lock.close()
                self._lock = None
