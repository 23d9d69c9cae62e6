"""Recommendation throughput: raw scoring against the served endpoint in one run, and how
scoring time grows with the size of the catalogue.

    .venv/bin/python -m benchmarks.recommendation [--url http://host:3000] [--seconds 10] [--threads N]

1. Raw runtime (the default model: 943 users, 1,682 items, 64 factors): personal
   recommendations for random known users, seen items excluded, k=10, at batch 1 and 64.
2. The service: POST /recommend, one random user per request, 1 and 16 concurrent clients;
   requests/s as a ratio to raw batch 64, and the batch sizes the server formed.
3. Scoring alone (one matrix product + top-10 on the device, what every request costs)
   over synthetic item tables of 1.7k to 1M items with 64-d embeddings, batch 1 and 64.
Client and server share this machine's cores, so the service figures include the load
generator's own cost. --threads sets torch's intra-op threads of this process (the raw and
scoring figures; the server keeps its own).
"""

from __future__ import annotations

import os
import random

import httpx
import torch

from benchmarks.common import Measurement, http_load, parser, report, served, timed
from models.device import choose_placement
from models.recommendation import Ask, Recommender
from models.recommendation.index import ItemIndex
from service.model_store import resolve_source
from service.settings import get_settings

CATALOGUE_SIZES = (1_682, 10_000, 100_000, 1_000_000)
FACTORS = 64


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--threads", type=int, help="torch intra-op threads here (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_settings()
    runtime = Recommender.load(
        resolve_source("recommendation", settings), device=settings.device, dtype=settings.dtype
    )
    users = list(runtime.state.user_ids)
    pick = random.Random(0)
    print(
        f"model {runtime.name} on {runtime.placement.describe()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads here, load average {os.getloadavg()[0]:.1f}"
    )

    def raw(batch: int) -> Measurement:
        return timed(
            f"raw runtime, batch {batch}",
            batch,
            lambda: runtime.recommend_many([Ask(user_id=pick.choice(users), k=10) for _ in range(batch)]),
            args.seconds,
        )

    raw1, raw64 = raw(1), raw(64)

    async def one_user(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/recommend", json={"user_id": pick.choice(users), "k": 10})

    rows: list[Measurement] = [raw1, raw64]
    with served(args.url) as url:
        stats = [httpx.get(url + "/stats").json()["recommendation"].get("recommend_batch", {})]
        for clients in (1, 16):
            rows.append(
                http_load(f"service, {clients} client(s), 1 user/request", clients, args.seconds, 1, one_user)
            )
            stats.append(httpx.get(url + "/stats").json()["recommendation"]["recommend_batch"])
    report("recommendation (requests/s)", "req", raw64, rows)
    for label, start, end in (("1 client", stats[0], stats[1]), ("16 clients", stats[1], stats[2])):
        formed = {int(k): v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}
        batches = sum(formed.values())
        average = sum(k * v for k, v in formed.items()) / batches if batches else 0
        print(f"batches formed with {label}: {batches}, mean size {average:.1f}")
    scaling(args.seconds, settings.device, settings.dtype)


def scaling(seconds: float, device: str, dtype: str) -> None:
    """Matrix product + top-10 over synthetic catalogues: ms per call and growth."""
    placement = choose_placement(device, dtype, channels_last=False)
    generator = torch.Generator().manual_seed(0)
    print(
        f"\nscoring vs catalogue size ({FACTORS}-d embeddings, top-10, {placement.describe()}, "
        f"{torch.get_num_threads()} threads)"
    )
    print(f"{'items':>10} {'batch 1 ms':>11} {'batch 64 ms':>12} {'req/s at 64':>12} {'growth (64)':>12}")
    first = None
    for size in CATALOGUE_SIZES:
        index = ItemIndex(torch.randn(size, FACTORS, generator=generator), placement)
        per_call = {}
        for batch in (1, 64):
            queries = torch.randn(batch, FACTORS, generator=generator).to(placement.device)

            def score(queries: torch.Tensor = queries, index: ItemIndex = index) -> object:
                hits = index.top_k(queries, 10, scaled=True)  # ends with a copy to the host
                return hits

            measured = timed(f"{size} items, batch {batch}", batch, score, max(1.0, seconds / 4))
            per_call[batch] = measured.latency_ms(0.5)
        first = first or per_call[64]
        print(
            f"{size:>10} {per_call[1]:>11.2f} {per_call[64]:>12.2f} {64000 / per_call[64]:>12.0f} "
            f"{per_call[64] / first:>11.1f}x"
        )
        del index


if __name__ == "__main__":
    main()
