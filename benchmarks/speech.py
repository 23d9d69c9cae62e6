"""Speech synthesis speed: the raw runtime against the served endpoints, in one run.

    .venv/bin/python -m benchmarks.speech [--url http://host:3000] [--seconds 10]

Throughput is audio seconds produced per wall-clock second (the inverse of the real-time
factor, RTF = synthesis time / audio duration; higher is faster), from the audio each call
really returned (the voice's durations vary a little from run to run). Rows: the raw
runtime (normalise, phonemise, ONNX, PCM) one sentence per call and a 16-sentence text per
call (sentences batched); the service with 1 and 8 clients sending one sentence per
request, and 1 client sending the 16-sentence text; all as ratios to the raw 16-sentence
batch. Then the stream's time to its first chunk against the whole answer's latency for
the 16-sentence text. Client and server share this machine's cores.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import httpx

from benchmarks.common import Measurement, http_load, parser, report, served
from models.speech import SpeechSynthesizer
from service.settings import get_settings

SENTENCE = "The quick brown fox jumps over the lazy dog."
TEXT = " ".join(
    [
        "It was a bright cold day in April, and the clocks were striking thirteen.",
        "The station was quiet at that hour.",
        "A few passengers waited on the platform with their coats buttoned up.",
        "Somewhere a door slammed and a dog began to bark.",
        "The train was late again, as it had been every morning that week.",
        "Nobody seemed surprised.",
        "A woman in a red scarf checked her watch for the third time.",
        "Two students argued quietly about a film they had seen.",
        "The clock above the ticket office ticked on.",
        "At last a whistle sounded far down the line.",
        "The rails began to hum.",
        "Heads turned toward the tunnel as the lights appeared.",
        "The train pulled in slowly and the doors slid open.",
        "Everyone stepped aboard without a word.",
        "The platform was empty again.",
        "Only the dog was still barking.",
    ]
)


def timed_audio(name: str, call: Callable[[], float], seconds: float) -> Measurement:
    """Repeat `call` (returns the audio seconds it made) for `seconds`, after a warm-up."""
    call()
    produced, latencies = 0.0, []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        produced += call()
        latencies.append(time.perf_counter() - t0)
    return Measurement(name, produced / (time.perf_counter() - start), latencies)


def served_audio(name: str, url: str, clients: int, seconds: float, text: str) -> Measurement:
    """`clients` concurrent loops of POST /synthesize; audio seconds from each answer."""
    durations: list[float] = []

    async def request(client: httpx.AsyncClient) -> httpx.Response:
        response = await client.post(url + "/synthesize", json={"text": text})
        if response.status_code == 200:
            durations.append(float(response.headers["x-audio-duration"]))
        return response

    requests = http_load(name, clients, seconds, 1, request)
    return Measurement(name, requests.items_per_s * statistics.mean(durations), requests.latencies_s)


def first_chunk_latency(url: str, text: str, runs: int = 5) -> tuple[float, float]:
    """Median seconds to the stream's first body chunk, and to the whole /synthesize answer."""
    first, whole = [], []
    with httpx.Client(timeout=300) as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            with client.stream("POST", url + "/synthesize/stream", json={"text": text}) as response:
                for index, _ in enumerate(response.iter_raw()):
                    if index == 0:
                        first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.post(url + "/synthesize", json={"text": text}).raise_for_status()
            whole.append(time.perf_counter() - t0)
    return statistics.median(first), statistics.median(whole)


def main() -> None:
    args = parser(__doc__).parse_args()
    settings = get_settings()
    runtime = SpeechSynthesizer.load(settings.speech_model, device=settings.device, dtype=settings.dtype)
    print(f"voice {runtime.info.name} on {runtime.info.details['placement']}, {os.cpu_count()} CPUs")
    raw1 = timed_audio(
        "raw runtime, 1 sentence/call", lambda: runtime.synthesize(SENTENCE).duration_s, args.seconds
    )
    raw16 = timed_audio(
        "raw runtime, 16 sentences/call", lambda: runtime.synthesize(TEXT).duration_s, args.seconds
    )
    rows = [raw1, raw16]
    with served(args.url) as url:
        rows.append(served_audio("service, 1 client, 1 sentence/request", url, 1, args.seconds, SENTENCE))
        rows.append(served_audio("service, 8 clients, 1 sentence/request", url, 8, args.seconds, SENTENCE))
        rows.append(served_audio("service, 1 client, 16 sentences/request", url, 1, args.seconds, TEXT))
        first, whole = first_chunk_latency(url, TEXT)
    report("speech synthesis", "audio s", raw16, rows)
    for row in rows:
        print(f"{row.name:44} RTF {1 / row.items_per_s:.3f}")
    print(
        f"16-sentence text: stream's first chunk after {1000 * first:.0f} ms, "
        f"whole /synthesize answer after {1000 * whole:.0f} ms ({first / whole:.2f} of it)"
    )


if __name__ == "__main__":
    main()
