"""Translation throughput: the raw runtime against the served endpoint, in one run.

    .venv/bin/python -m benchmarks.translation [--url http://host:3000] [--seconds 10] [--pair en-es]

Sentences are everyday English (or the pair's source language) of ~40 characters. Prints
sentences/s and characters/s of the raw runtime (one sentence per call, and 64 per call:
for apertium, 64 sentences in flight through the pipeline's stages) and of the service
(1 and 16 concurrent clients with one sentence per request, 16 clients with 16 sentences
per request), each as a ratio to the raw runtime at 64 sentences per call, and the batch
sizes the server formed. Client and server share this machine's cores.
"""

from __future__ import annotations

import os

import httpx

from benchmarks.common import Measurement, http_load, parser, report, served, timed
from models.translation import Translator
from service.settings import get_settings
from tests.test_translation_apertium import EN_CA, ES_EN, WEATHER


def corpus(source: str) -> list[str]:
    """Sentences in the source language: Spanish ones for es, English ones otherwise."""
    return list(ES_EN) if source == "es" else [WEATHER, *EN_CA]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--pair", default="en-es", help="source-target, e.g. en-es")
    args = p.parse_args()
    source, _, target = args.pair.partition("-")
    sentences = corpus(source)
    chars_per_sentence = sum(map(len, sentences)) / len(sentences)
    settings = get_settings()
    runtime = Translator.load(
        settings.translation_model,
        device=settings.device,
        dtype=settings.dtype,
        pipelines_per_pair=settings.translation_pipelines_per_pair,
        generation_batch=settings.translation_generation_batch,
    )
    model = runtime.translate(sentences[:1], source, target).model
    size = f"{len(sentences)} sentences of {chars_per_sentence:.0f} characters"
    print(f"model {model}, {size}, {os.cpu_count()} CPUs")
    batch = (sentences * (64 // len(sentences) + 1))[:64]
    counter = iter(range(1 << 62))

    def one_sentence() -> None:
        runtime.translate([sentences[next(counter) % len(sentences)]], source, target)

    raw1 = timed("raw runtime, 1 sentence/call", 1, one_sentence, args.seconds)
    raw64 = timed(
        "raw runtime, 64 sentences/call", 64, lambda: runtime.translate(batch, source, target), args.seconds
    )
    runtime.close()

    def request(texts_per_request: int):
        async def send(client: httpx.AsyncClient) -> httpx.Response:
            start = next(counter) % len(sentences)
            texts = [sentences[(start + i) % len(sentences)] for i in range(texts_per_request)]
            return await client.post(
                url + "/translate", json={"texts": texts, "source": source, "target": target}
            )

        return send

    rows: list[Measurement] = [raw1, raw64]
    phases = []
    with served(args.url) as url:
        for name, clients, per_request in (
            ("service, 1 client, 1 sentence/request", 1, 1),
            ("service, 16 clients, 1 sentence/request", 16, 1),
            ("service, 16 clients, 16 sentences/request", 16, 16),
        ):
            before = httpx.get(url + "/stats").json()["translation"].get("translate_batch", {})
            rows.append(http_load(name, clients, args.seconds, per_request, request(per_request)))
            after = httpx.get(url + "/stats").json()["translation"].get("translate_batch", {})
            phases.append((name, before, after))
    report(f"translation {args.pair}", "sent", raw64, rows)
    print(f"\n{'':44} {'chars/s':>10}")
    for row in rows:
        print(f"{row.name:44} {row.items_per_s * chars_per_sentence:10.0f}")
    for name, start, end in phases:
        formed = {int(k): v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}
        batches = sum(formed.values())
        average = sum(k * v for k, v in formed.items()) / batches if batches else 0
        print(f"batches formed, {name}: {batches}, mean size {average:.1f} requests")


if __name__ == "__main__":
    main()
