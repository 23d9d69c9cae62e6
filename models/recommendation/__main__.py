"""Train a recommender on your own interactions and store it for serving.

    python -m models.recommendation train --interactions ratings.csv [--items items.csv] --name my-recs
    PAIS_RECOMMENDATION_MODEL=bentoml:my-recs make serve

Interactions: CSV, TSV or Parquet (local or s3://) with columns user, item and optionally
rating and timestamp. Items (optional, enables text queries and cold-start items): item
plus any of title, year, genres (separated by |), description. Prints recall@10 and
NDCG@10 of the model and of a popularity baseline on a held-out split, then stores the
model in the BentoML model store (and/or writes a snapshot directory with --output).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

# BentoML's rule for a model name (checked before training, which can take a while).
STORE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")


def parser() -> argparse.ArgumentParser:
    from .recipe import Holdout, IALSConfig

    defaults, holdout = IALSConfig(), Holdout()
    p = argparse.ArgumentParser(prog="python -m models.recommendation", description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    t = commands.add_parser(
        "train",
        help="train, evaluate and store a model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument(
        "--interactions",
        required=True,
        help="CSV/TSV/Parquet path or s3:// URI (user, item[, rating][, timestamp])",
    )
    t.add_argument("--items", help="item table: item plus title/year/genres/description (path or s3:// URI)")
    t.add_argument("--name", required=True, help="model name in the BentoML store (lowercase, digits, . _ -)")
    t.add_argument("--output", type=Path, help="also write the snapshot to this directory")
    t.add_argument(
        "--no-store", action="store_true", help="do not store in the BentoML store (needs --output)"
    )
    t.add_argument(
        "--min-rating", type=float, help="drop interactions rated below this (needs a rating column)"
    )
    t.add_argument("--factors", type=int, default=defaults.factors)
    t.add_argument("--iterations", type=int, default=defaults.iterations)
    t.add_argument("--regularization", type=float, default=defaults.regularization)
    t.add_argument(
        "--alpha", type=float, default=defaults.alpha, help="confidence of an interaction: 1 + alpha"
    )
    t.add_argument("--seed", type=int, default=defaults.seed)
    t.add_argument(
        "--holdout", type=float, default=holdout.fraction, help="share of each user's items held out"
    )
    t.add_argument(
        "--encoder", default="packaged:all-minilm-l6-v2", help="text encoder for item text and queries"
    )
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not STORE_NAME.match(args.name):
        print(
            f"error: --name {args.name!r}: use lowercase letters, digits, '.', '_' or '-' (at most 63)",
            file=sys.stderr,
        )
        return 2
    wrong = [
        message
        for message, bad in (
            ("--factors must be at least 1", args.factors < 1),
            ("--iterations must be at least 1", args.iterations < 1),
            ("--regularization must be above 0", args.regularization <= 0),
            ("--alpha must not be negative", args.alpha < 0),
            ("--holdout must be between 0 and 1", not 0 < args.holdout < 1),
        )
        if bad
    ]
    if wrong:
        print(f"error: {'; '.join(wrong)}", file=sys.stderr)
        return 2
    if args.no_store and args.output is None:
        print("error: --no-store needs --output, or the trained model goes nowhere", file=sys.stderr)
        return 2
    from ..sources import SourceError
    from .data import DataError

    try:
        return train_command(args)
    except (DataError, SourceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def train_command(args: argparse.Namespace) -> int:
    from ..device import choose_placement
    from ..info import ModelInfo
    from .data import read_interactions, read_items
    from .recipe import Holdout, IALSConfig, Recipe
    from .state import TASK
    from .text_encoder import TextEncoder
    from .training import data_digest, train

    recipe = Recipe(
        IALSConfig(args.factors, args.regularization, args.alpha, args.iterations, seed=args.seed),
        Holdout(fraction=args.holdout, seed=args.seed),
    )
    placement = choose_placement(args.device, "fp32", channels_last=False)
    started = time.perf_counter()
    interactions = read_interactions(args.interactions, min_rating=args.min_rating)
    items = read_items(args.items) if args.items else None
    timed = "with timestamps" if interactions.timestamps is not None else "without timestamps"
    print(
        f"read {interactions.rows_read} rows: {len(interactions)} unique interactions of "
        f"{interactions.n_users} users with {interactions.n_items} items ({timed})"
        + (f"; {len(items.item_ids)} items in {args.items}" if items else ""),
        flush=True,
    )
    encoder = TextEncoder.load(args.encoder, placement) if items else None
    parts = [data_digest(interactions, items), recipe.digest(), encoder.info.version if encoder else ""]
    info = ModelInfo(
        task=TASK,
        name=args.name,
        source=str(args.interactions),
        version="ials." + hashlib.sha256("/".join(parts).encode()).hexdigest()[:12],
        licence=f"trained by you on {args.interactions}: the terms of that data apply",
        origin=f"iALS trained with `python -m models.recommendation train` on {args.interactions}"
        + (f" with item text from {args.items}" if args.items else ""),
    )
    state = train(interactions, items, info=info, recipe=recipe, encoder=encoder, device=placement.device)
    evaluation = state.info.details["evaluation"]
    print(f"trained in {time.perf_counter() - started:.1f} s on {placement.device}")
    print(
        f"held out: {evaluation['split']}: {evaluation['held_out_interactions']} interactions, "
        f"{evaluation['users_evaluated']} users evaluated"
    )
    print(f"{'':12}{'recall@10':>10}{'NDCG@10':>10}")
    for label, key in (("iALS", "model"), ("popularity", "popularity")):
        row = evaluation[key]
        print(f"{label:12}{row['recall@10']:10.4f}{row['ndcg@10']:10.4f}")
    if args.output:
        state.save(args.output)
        print(f"snapshot written to {args.output} (PAIS_RECOMMENDATION_MODEL={args.output.resolve()})")
    if not args.no_store:
        # models/ knows nothing of BentoML; the store belongs to the service layer, so the
        # one command that must write into it borrows the service's helper for it.
        from service.model_store import store_runtime

        tag = store_runtime(args.name, TASK, state)
        print(f"stored {tag} in the BentoML model store")
        print(f"serve it with PAIS_RECOMMENDATION_MODEL=bentoml:{args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
