"""Batch throughput: the SDK's batch job against a bare concurrent HTTP loop, in one run.

    .venv/bin/python -m benchmarks.batch [--url http://host:3000] [--images 384]
                                         [--concurrency 8] [--batch-size 16] [--records 100000]

1. Real server (`bentoml serve`, or --url): classify a folder of 640x480 JPEGs with
   `pais batch` (files streamed from disk, one JSON line written and fsynced per second,
   resumable) and with a bare loop of the same concurrency and images per request (httpx,
   files read into memory, answers parsed and dropped), at --batch-size images per request
   and at one image per request, in alternating rounds. Ratios against the bare batched
   loop, and SDK / bare loop at equal settings.
2. The SDK's own ceiling: the same comparison against a local server that answers at once
   (translate-shaped echo, 32 texts per request), so that only client-side costs show; and
   the peak RSS of `pais batch` on 10k and --records JSONL records (memory stays flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx

from benchmarks.common import served
from pais.batch import run_batch_async
from tests.images import encode, photo
from tests.scripted_server import Answer, ScriptedServer, Seen


def write_images(folder: Path, count: int) -> list[Path]:
    from PIL import Image

    sources = [Image.fromarray(photo(name)).resize((640, 480)) for name in ("chelsea", "coffee", "astronaut")]
    paths = []
    for index in range(count):
        path = folder / f"{index:05d}.jpg"
        path.write_bytes(encode(sources[index % 3], "JPEG", quality=80 + index % 15))
        paths.append(path)
    return paths


async def bare_loop(
    url: str,
    items: list,
    per_request: int,
    concurrency: int,
    send: Callable[[httpx.AsyncClient, list], Awaitable],
) -> float:
    """Items per second: `concurrency` workers taking `per_request` items at a time."""
    chunks: Iterator[list] = iter([items[i : i + per_request] for i in range(0, len(items), per_request)])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            for chunk in chunks:  # a shared iterator: each chunk goes to one worker
                await send(client, chunk)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(items) / (time.perf_counter() - start)


async def post_images(client: httpx.AsyncClient, paths: list[Path]) -> None:
    files = [("images", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]
    response = await client.post("/classify", files=files)
    response.raise_for_status()
    response.json()


async def post_texts(client: httpx.AsyncClient, texts: list[str]) -> None:
    response = await client.post("/translate", json={"texts": texts, "source": "en", "target": "es"})
    response.raise_for_status()
    response.json()


async def sdk_job(
    task: str, source: str, out: Path, url: str, concurrency: int, batch_size: int, **kw
) -> float:
    summary = await run_batch_async(
        task, source, str(out), url=url, concurrency=concurrency, batch_size=batch_size, progress=False, **kw
    )
    assert summary.failed == 0 and summary.done > 0, summary
    return summary.done / summary.elapsed_s


def table(title: str, unit: str, rows: list[tuple[str, float]], baseline: str) -> None:
    base = dict(rows)[baseline]
    print(f"\n{title}  (ratios against '{baseline}', same run)")
    print(f"{'':58} {unit + '/s':>10} {'ratio':>7}")
    for name, rate in rows:
        print(f"{name:58} {rate:10.1f} {rate / base:7.2f}")


def real_server(args: argparse.Namespace, work: Path) -> None:
    folder = work / "images"
    folder.mkdir()
    paths = write_images(folder, args.images)
    c = args.concurrency
    rates: dict[str, list[float]] = {}
    with served(args.url) as url:
        asyncio.run(bare_loop(url, paths[: c * 16], 16, c, post_images))  # warm-up
        for round_ in range(args.rounds):  # alternating, so that drifting load hits all alike
            for per_request in (args.batch_size, 1):
                bare = f"bare httpx loop, {c} in flight, {per_request} images/request"
                sdk = f"pais batch classify, {c} in flight, {per_request} images/request"
                rates.setdefault(bare, []).append(
                    asyncio.run(bare_loop(url, paths, per_request, c, post_images))
                )
                out = work / f"labels-{round_}-{per_request}.jsonl"
                rate = asyncio.run(sdk_job("classify", str(folder), out, url, c, per_request))
                rates.setdefault(sdk, []).append(rate)
    rows = [(name, statistics.median(values)) for name, values in rates.items()]
    title = f"classify {args.images} images (640x480 JPEG), median of {args.rounds} alternating rounds"
    table(title, "img", rows, rows[0][0])
    for name, values in rates.items():
        print(f"  {name}: rounds {', '.join(f'{value:.1f}' for value in values)}")
    for first in (0, 2):
        (bare, bare_rate), (sdk, sdk_rate) = rows[first], rows[first + 1]
        print(f"SDK / bare loop at the same settings ({sdk.split(', ', 1)[1]}): {sdk_rate / bare_rate:.2f}")


def echo(seen: Seen) -> Answer:
    if seen.path == "/docs.json":
        return Answer(200, {"paths": {"/translate": {}}})
    texts = json.loads(seen.body)["texts"]
    return Answer(200, {"model": "echo", "source": "en", "target": "es", "translations": texts})


def jsonl(path: Path, count: int) -> list[str]:
    texts = [f"sentence number {index} to translate" for index in range(count)]
    with open(path, "w") as handle:
        for index, text in enumerate(texts):
            handle.write(json.dumps({"id": f"t{index:07d}", "text": text}) + "\n")
    return texts


def peak_rss_mb(source: Path, out: Path, url: str) -> float:
    """Peak RSS of a `pais batch translate` process over `source`: VmHWM, the high-water
    mark of the process's own memory (ru_maxrss would also count the parent's pages the
    child held between fork and exec)."""
    code = (
        "import sys\nfrom pais.cli import main\nrc = main(sys.argv[1:])\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "print(int(status['VmHWM'].split()[0]))\nsys.exit(0 if rc == 0 else rc)"
    )
    command = [sys.executable, "-c", code, "batch", "translate", str(source), "--out", str(out)]
    result = subprocess.run(
        [*command, "--url", url, "-o", "target=es", "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.split()[-1]) / 1024


def client_ceiling(args: argparse.Namespace, work: Path) -> None:
    count = 20_000
    texts = jsonl(work / "texts.jsonl", count)
    c, b = args.concurrency, 32
    with ScriptedServer(handler=echo, record=False).running() as server:
        bare = asyncio.run(bare_loop(server.url, texts, b, c, post_texts))
        sdk = asyncio.run(
            sdk_job(
                "translate",
                str(work / "texts.jsonl"),
                work / "t.jsonl",
                server.url,
                c,
                b,
                options={"target": "es"},
            )
        )
        rows = [
            (f"bare httpx loop, {c} in flight, {b} texts/request", bare),
            (f"pais batch translate, {c} in flight, {b} texts/request", sdk),
        ]
        table(
            f"client-side ceiling: {count} texts, a local server that answers at once",
            "rec",
            rows,
            rows[0][0],
        )
        print("\npeak RSS of `pais batch translate` (JSONL records, nothing held but the ids)")
        for records in (10_000, args.records):
            source = work / f"rss-{records}.jsonl"
            jsonl(source, records)
            rss = peak_rss_mb(source, work / f"rss-{records}-out.jsonl", server.url)
            print(f"{records:>10} records  {rss:7.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--records", type=int, default=100_000, help="records for the memory measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the server phases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pais-bench-batch-") as directory:
        work = Path(directory)
        real_server(args, work)
        client_ceiling(args, work)


if __name__ == "__main__":
    main()
