"""The first small request after a burst: is it held back?

    .venv/bin/python -m benchmarks.after_burst [--url http://host:3000] [--rounds 3]

Against a speech-only server (started here unless --url is given): the idle p50 of a
one-sentence /synthesize, then, each round, a burst (a 57-sentence text and three short
texts sent at once) followed by six one-sentence requests sent one at a time. It prints
each round's latencies and the slowest as a ratio to the idle p50. A dispatcher that
holds a lone request back to fill a batch (service/batching.py) shows as a first request
of seconds; run it beside a CPU hog (`python3 -c 'while 1: pass' &`, one per core) to see
the machine a busy CI runner is.
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx

from benchmarks.common import parser, served

LONE = {"text": "Good morning."}
LONG = {"text": "λ." * 57}  # 57 one-letter sentences
SHORT = {"text": "One more sentence. And another one here."}


def synthesize(url: str, body: dict) -> float:
    started = time.perf_counter()
    response = httpx.post(f"{url}/synthesize", json=body, timeout=120)
    response.raise_for_status()
    return time.perf_counter() - started


def burst(url: str) -> None:
    threads = [threading.Thread(target=synthesize, args=(url, body)) for body in (LONG, SHORT, SHORT, SHORT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with served(args.url, PAIS_TASKS="speech") as url:
        idle = statistics.median(synthesize(url, LONE) for _ in range(9))
        print(f"idle p50 of a one-sentence /synthesize: {idle * 1000:.0f} ms")
        slowest = 0.0
        for round_ in range(args.rounds):
            burst(url)
            lone = [synthesize(url, LONE) for _ in range(6)]
            slowest = max(slowest, *lone)
            print(f"round {round_}: lone requests after the burst, ms: {[round(t * 1000) for t in lone]}")
        print(f"slowest lone request: {slowest * 1000:.0f} ms, {slowest / idle:.1f} x the idle p50")


if __name__ == "__main__":
    main()
