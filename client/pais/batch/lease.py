"""One writer per S3 output: a lease object, `<prefix>/_lease.json`.

Two batch jobs on one S3 prefix, on two machines, cannot see each other's local lock, and
each would rewrite `_manifest.json` with its own parts only: one job's records would be
lost from the manifest while it says complete. So a job takes the lease before it reads
or writes anything, with S3's conditional writes: created only if absent (IfNoneMatch),
renewed and released only while it is the version this job wrote (IfMatch). A second job
stops at once with a message saying who holds the lease and until when.

A lease is the job's until it has not been renewed for `ttl_s` (by S3's clock: the age of
the object, taken from S3's own Date and Last-Modified). The holder renews it in a thread
every `ttl_s / 4`; a job that was killed leaves its lease behind, which the same state
directory (the same machine and output, rerun) takes over at once, and anyone else once it
expired. A holder that finds its lease taken (it was paused beyond the TTL, say) stops
writing: `lost` says why, and the sink refuses further commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .journal import JournalLocked
from .s3 import S3Location, http_status

DEFAULT_TTL_S = 120.0


class OutputLeased(JournalLocked):
    """Another batch job holds the output's lease."""


class LeaseLost(JournalLocked):
    """This job's lease was taken over: it must not write any more."""


def owner_id(state_dir: Path) -> str:
    """Who this state directory is: made once, kept in the directory."""
    path = state_dir / "owner"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    mine = secrets.token_hex(8)
    try:
        with open(path, "x") as handle:  # another process of this directory may race: its id wins
            handle.write(mine)
        return mine
    except FileExistsError:
        return path.read_text().strip()


class Lease:
    """The lease on `location` for the job `run` of `owner`."""

    def __init__(self, location: S3Location, owner: str, run: str, ttl_s: float = DEFAULT_TTL_S):
        self.location = location
        self.owner = owner
        self.run = run
        self.ttl_s = ttl_s
        self.etag: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    def _body(self) -> bytes:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return json.dumps(
            {
                "owner": self.owner,
                "run": self.run,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": now,
                "ttl_s": self.ttl_s,
            }
        ).encode()

    def acquire(self) -> None:
        """Take the lease (create it, or take over ours or an expired one); OutputLeased
        when another live job holds it. Blocking."""
        for _ in range(3):  # lose a race for the object at most twice, then report it
            self.etag = self.location.create(self._body(), "application/json")
            if self.etag is not None:
                break
            found = self.location.read_versioned()
            if found is None:
                continue  # released meanwhile
            data, etag, age_s = found
            holder = _parse(data)
            if holder.get("owner") != self.owner and age_s < float(holder.get("ttl_s", self.ttl_s)):
                raise OutputLeased(_held_message(self.location, holder, age_s))
            try:  # ours (a killed run on this machine) or expired: take it over
                self.etag = self.location.write(self._body(), "application/json", if_match=etag)
                break
            except Exception:  # someone else took it over first: look again
                continue
        else:
            raise OutputLeased(f"{self.location.uri} is contended by other jobs; try again later")
        self._heartbeat = threading.Thread(target=self._renew_periodically, daemon=True)
        self._heartbeat.start()

    def renew(self) -> None:
        """Write the lease again over our own version; LeaseLost if it is not ours any more."""
        with self._lock:
            if self.lost:
                raise LeaseLost(self.lost)
            try:
                self.etag = self.location.write(self._body(), "application/json", if_match=self.etag)
            except Exception as error:
                if http_status(error) != 412:
                    raise  # a network error: the next renewal tries again
                found = self.location.read_versioned()
                holder = _parse(found[0]) if found else {}
                self.lost = (
                    f"this job's lease on {self.location.uri} was taken over by run {holder.get('run', '?')} "
                    f"on {holder.get('host', '?')} (this one was not renewed for over {self.ttl_s:g} s): it "
                    "stops without writing more; rerun it once the other job is done"
                )
                raise LeaseLost(self.lost) from None

    def check(self) -> None:
        """LeaseLost if the lease was found taken over."""
        if self.lost:
            raise LeaseLost(self.lost)

    def _renew_periodically(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.renew()
            except LeaseLost:
                return
            except Exception:  # S3 unreachable for a moment: the next beat tries again
                continue

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still this version (ours)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._lock:
            if self.lost or self.etag is None:
                return
            # Left behind, it expires, or this state directory's next run takes it over.
            with contextlib.suppress(Exception):
                self.location.delete(if_match=self.etag)


def _parse(data: bytes) -> dict[str, Any]:
    try:
        found = json.loads(data)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _held_message(location: S3Location, holder: dict[str, Any], age_s: float) -> str:
    ttl = float(holder.get("ttl_s", DEFAULT_TTL_S))
    output = location.uri.rsplit("/", 1)[0]
    return (
        f"another batch job is writing {output}/ (run {holder.get('run', '?')} on host "
        f"{holder.get('host', '?')}, pid {holder.get('pid', '?')}; its lease {location.uri} "
        f"was renewed {age_s:.0f} s ago): two jobs on one output would lose records. Wait for it to "
        f"finish; if it died, rerun from its machine at once, or from here in {max(0.0, ttl - age_s):.0f} s, "
        "when its lease expires"
    )
