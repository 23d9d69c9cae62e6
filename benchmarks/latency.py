"""Per-request cost of every endpoint next to GET /livez, and light-request throughput.

    .venv/bin/python -m benchmarks.latency [--url http://host:3000] [--requests 300] [--seconds 8]

1. One keep-alive client (stdlib http.client: the client's own cost stays small), the
   same request sent again and again: p50 / p90 of each endpoint and its p50 minus /livez's
   p50, the cost the service adds over HTTP itself.
2. 16 concurrent keep-alive clients for `--seconds`: requests/s of GET /livez and of the
   light endpoints (/recommend, /similar_items, one-sentence /translate), each as a ratio
   to /livez measured the same way.
Client and server share this machine's cores, so load generation competes with serving.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from benchmarks.common import parser, served
from tests.images import encode, photo


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    body: bytes = b""
    content_type: str = ""


def multipart(field: str, data: bytes, filename: str, fields: dict[str, str] | None = None) -> Probe:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
    parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return Probe(
        "",
        "POST",
        "",
        b"".join(parts) + f"--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def json_probe(name: str, path: str, body: dict) -> Probe:
    return Probe(name, "POST", path, json.dumps(body).encode(), "application/json")


def probes() -> list[Probe]:
    cat = encode(photo("chelsea"), "JPEG", quality=90)
    classify = multipart("images", cat, "cat.jpg")
    detect = multipart("images", cat, "cat.jpg")
    return [
        Probe("GET /livez", "GET", "/livez"),
        json_probe("POST /recommend (user)", "/recommend", {"user_id": "196", "k": 10}),
        json_probe("POST /similar_items", "/similar_items", {"item_id": "50", "k": 10}),
        json_probe(
            "POST /translate (1 sentence)",
            "/translate",
            {"texts": ["The cat sleeps on the warm window sill."], "source": "en", "target": "es"},
        ),
        json_probe("POST /synthesize (1 sentence)", "/synthesize", {"text": "Good morning."}),
        Probe("POST /classify (1 image)", "POST", "/classify", classify.body, classify.content_type),
        Probe("POST /detect (1 image)", "POST", "/detect", detect.body, detect.content_type),
        Probe("GET /models", "GET", "/models"),
    ]


LIGHT = ("POST /recommend (user)", "POST /similar_items", "POST /translate (1 sentence)")


def send(connection: http.client.HTTPConnection, probe: Probe) -> int:
    headers = {"Content-Type": probe.content_type} if probe.content_type else {}
    connection.request(probe.method, probe.path, body=probe.body or None, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def latencies(url: str, probe: Probe, requests: int) -> list[float]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    for _ in range(5):  # warm-up: connection, caches, first batch
        status = send(connection, probe)
        if status != 200:
            raise RuntimeError(f"{probe.name}: HTTP {status}")
    out = []
    for _ in range(requests):
        t0 = time.perf_counter()
        send(connection, probe)
        out.append(time.perf_counter() - t0)
    connection.close()
    return out


def throughput(url: str, probe: Probe, clients: int, seconds: float) -> tuple[float, int]:
    parts = urlsplit(url)
    counts = [0] * clients
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        send(connection, probe)
        while time.perf_counter() < deadline:
            if send(connection, probe) != 200:
                errors[index] += 1
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start), sum(errors)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str, requests: int, seconds: float, clients: int, only: Callable[[str], bool]) -> dict:
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; one keep-alive client, "
        f"{requests} requests each"
    )
    print(f"{'endpoint':34} {'p50 ms':>8} {'p90 ms':>8} {'p50 - livez':>12}")
    table = {}
    livez = None
    for probe in probes():
        if not only(probe.name):
            continue
        values = latencies(url, probe, requests)
        p50 = statistics.median(values) * 1000
        livez = p50 if livez is None else livez
        table[probe.name] = {"p50_ms": p50, "p90_ms": quantile(values, 0.9), "over_livez_ms": p50 - livez}
        print(f"{probe.name:34} {p50:8.2f} {quantile(values, 0.9):8.2f} {p50 - livez:+12.2f}")
    print(f"\n{clients} concurrent keep-alive clients, {seconds:.0f} s each")
    print(f"{'endpoint':34} {'req/s':>8} {'ratio to livez':>15}")
    base = None
    for probe in probes():
        if probe.name != "GET /livez" and probe.name not in LIGHT:
            continue
        rate, errors = throughput(url, probe, clients, seconds)
        base = rate if base is None else base
        table.setdefault(probe.name, {})["concurrent_rps"] = rate
        note = f"  ({errors} non-200)" if errors else ""
        print(f"{probe.name:34} {rate:8.0f} {rate / base:15.2f}{note}")
    return table


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--requests", type=int, default=300, help="requests per endpoint, one client")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--only", default="", help="comma-separated substrings of endpoint names")
    args = p.parse_args()
    wanted = [part for part in args.only.split(",") if part]

    def only(name: str) -> bool:
        return name == "GET /livez" or not wanted or any(w in name for w in wanted)

    with served(args.url) as url:
        run(url, args.requests, args.seconds, args.clients, only)


if __name__ == "__main__":
    main()
