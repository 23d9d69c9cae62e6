"""HTTP load for benchmarks/gpu.py: keep-alive clients spread over several processes.

One Python process cannot send thousands of requests a second (the GIL), and the targets
the GPU benchmark checks (5k single-image requests a second) would measure the load
generator instead of the service. So `http_load` starts `processes` copies of this module
(`python -m benchmarks.gpu_kit.load`, standard library only), each with a share of the
clients as threads on http.client keep-alive connections, sending one prepared request
again and again:

1. each process reads its spec (one JSON line on stdin), every client sends one request
   (warm-up, not counted) and the process prints `ready`;
2. once all are ready the parent sends `go <start> <stop>` (wall-clock times): clients start
   at `start` and send until `stop`; a request started before `stop` is waited for;
3. each process prints one JSON line: answers, errors and latencies.

Throughput is completed items over the time from `start` until the last answer, so a
window shorter than one request still measures something.
"""

from __future__ import annotations

import http.client
import io
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_LATENCY_SAMPLES = 5000


@dataclass(frozen=True)
class Request:
    """One request the clients repeat; `items` is what a 200 answer counts for."""

    method: str
    path: str
    body: bytes
    content_type: str
    items: int
    # speech: count the seconds of audio in each answer (WAV) instead of items
    audio: bool = False


def multipart(field: str, files: list[bytes], content_type: str = "image/jpeg") -> tuple[bytes, str]:
    """A multipart/form-data body with `files` under one repeated field."""
    boundary = "pais-bench-" + os.urandom(8).hex()
    parts = []
    for index, data in enumerate(files):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{index}.jpg"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def json_request(path: str, body: dict, items: int, audio: bool = False) -> Request:
    return Request("POST", path, json.dumps(body).encode(), "application/json", items, audio)


def http_load(
    url: str, request: Request, clients: int, seconds: float, processes: int, ready_timeout_s: float = 120
) -> dict:
    """`clients` concurrent keep-alive clients in up to `processes` processes for `seconds`
    (after one warm-up request each, which must come back within `ready_timeout_s`)."""
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    parts = urlsplit(url)
    body_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"pais-bench-body-{os.getpid()}-{time.time_ns()}"
    body_file.write_bytes(request.body)
    spec = {
        "host": parts.hostname,
        "port": parts.port,
        "method": request.method,
        "path": request.path,
        "body_file": str(body_file),
        "content_type": request.content_type,
        "audio": request.audio,
    }
    children = []
    try:
        for share in shares:
            child = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.gpu_kit.load"],
                cwd=Path(__file__).resolve().parents[2],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": _pythonpath()},
            )
            assert child.stdin is not None
            child.stdin.write(json.dumps({**spec, "threads": share}) + "\n")
            child.stdin.flush()
            children.append(child)
        for child in children:
            line = _readline(child, ready_timeout_s)
            if line != "ready":
                raise RuntimeError(f"a load process did not get ready in {ready_timeout_s:.0f} s: {line!r}")
        start = time.time() + 0.2
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"go {start} {start + seconds}\n")
            child.stdin.flush()
        answers = []
        for child in children:
            out, _ = child.communicate(timeout=seconds + 600)
            answers.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        body_file.unlink(missing_ok=True)
    ok = sum(a["ok"] for a in answers)
    errors = sum(a["errors"] for a in answers)
    elapsed = max(a["end"] for a in answers) - start
    latencies = sorted(x for a in answers for x in a["latencies_ms"])
    counted = sum(a["audio_s"] for a in answers) if request.audio else ok * request.items
    return {
        "clients": clients,
        "processes": processes,
        "items_per_request": request.items,
        "requests": ok,
        "errors": errors,
        "error_sample": next((a["error_sample"] for a in answers if a["error_sample"]), None),
        "seconds": elapsed,
        "per_s": counted / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _quantile(latencies, 0.5),
        "p95_ms": _quantile(latencies, 0.95),
    }


def _readline(child: subprocess.Popen, timeout_s: float) -> str:
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], timeout_s)
    return child.stdout.readline().strip() if readable else ""


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH", "")
    return f"{root}{os.pathsep}{current}" if current else root


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body)) as audio:
        return audio.getnframes() / audio.getframerate()


class _Client(threading.Thread):
    def __init__(self, spec: dict, body: bytes, ready: threading.Barrier, go: threading.Event, times: list):
        super().__init__(daemon=True)
        self.spec, self.body, self.ready, self.go, self.times = spec, body, ready, go, times
        self.ok = self.errors = 0
        self.audio_s = 0.0
        self.error_sample = ""
        self.latencies: list[float] = []
        self.end = 0.0
        self.connection: http.client.HTTPConnection | None = None

    def _exchange(self) -> tuple[int, bytes]:
        spec = self.spec
        if self.connection is None:
            self.connection = http.client.HTTPConnection(spec["host"], spec["port"], timeout=600)
        headers = {"Content-Type": spec["content_type"]} if spec["content_type"] else {}
        self.connection.request(spec["method"], spec["path"], body=self.body or None, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def send(self) -> None:
        spec = self.spec
        status, data = 0, b""
        # A keep-alive connection the server closed while idle (its keep-alive timeout, while
        # other clients warmed up) fails on first use: one retry on a new one, as browsers do.
        for attempt in (1, 2):
            reused = self.connection is not None
            try:
                status, data = self._exchange()
                break
            except (OSError, http.client.HTTPException) as error:
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                status, data = 0, repr(error).encode()
                if not reused or attempt == 2:
                    break
        if status == 200:
            self.ok += 1
            if spec["audio"]:
                self.audio_s += wav_seconds(data)
        else:
            self.errors += 1
            if not self.error_sample:
                self.error_sample = f"HTTP {status}: {data[:300].decode(errors='replace')}"

    def run(self) -> None:
        self.send()  # warm-up: connection, first batches
        self.ok = self.errors = 0
        self.audio_s = 0.0
        self.ready.wait()
        self.go.wait()
        start, stop = self.times
        time.sleep(max(0.0, start - time.time()))
        while time.time() < stop:
            t0 = time.perf_counter()
            self.send()
            if len(self.latencies) < MAX_LATENCY_SAMPLES:
                self.latencies.append((time.perf_counter() - t0) * 1000)
        self.end = time.time()
        if self.connection is not None:
            self.connection.close()


def _child() -> None:
    spec = json.loads(sys.stdin.readline())
    body = Path(spec["body_file"]).read_bytes()
    ready = threading.Barrier(spec["threads"] + 1)
    go = threading.Event()
    times: list[float] = []
    clients = [_Client(spec, body, ready, go, times) for _ in range(spec["threads"])]
    for client in clients:
        client.start()
    ready.wait()
    print("ready", flush=True)
    _, start, stop = sys.stdin.readline().split()
    times.extend([float(start), float(stop)])
    go.set()
    for client in clients:
        client.join()
    print(
        json.dumps(
            {
                "ok": sum(c.ok for c in clients),
                "errors": sum(c.errors for c in clients),
                "error_sample": next((c.error_sample for c in clients if c.error_sample), ""),
                "audio_s": sum(c.audio_s for c in clients),
                "end": max(c.end for c in clients),
                "latencies_ms": [x for c in clients for x in c.latencies],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    _child()
