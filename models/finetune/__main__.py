"""Train an image classifier on your own labelled images and store it for serving.

    python -m models.finetune --data photos/ --name my-products [--mode head|finetune|full]
    python -m models.finetune --data photos/ --name my-products --resume   # after a kill

DATA is a folder of <label>/<image> files, an s3:// prefix laid out the same way, or a CSV
manifest with columns path,label. Prints per-label precision, recall and F1, the confusion
matrix and the accuracy of a frozen-feature linear baseline on a stratified validation
split, then stores the model as a new version of NAME in the BentoML model store.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from .config import DEFAULT_BASE, MODE_DEFAULTS, MODES

# BentoML's rule for a model name (checked before training, which can take a while).
STORE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")
# Options that map one to one onto Hyperparameters fields.
HYPERPARAMETERS = (
    "mode",
    "base",
    "epochs",
    "learning_rate",
    "backbone_lr_ratio",
    "weight_decay",
    "batch_size",
    "image_size",
    "finetune_blocks",
    "val_fraction",
    "patience",
    "min_per_class",
    "seed",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.finetune",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="label folders, s3:// prefix, or path,label CSV")
    p.add_argument("--name", required=True, help="model name in the BentoML store (lowercase, digits, . _ -)")
    p.add_argument("--base", default=DEFAULT_BASE, help="pretrained classifier to start from (a source URI)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="head",
        help="head: linear head on frozen features; finetune: also the last blocks; full: everything",
    )
    p.add_argument("--epochs", type=int, help=f"default per mode: {_per_mode('epochs')}")
    p.add_argument("--resume", action="store_true", help="continue the killed or stopped run of NAME")
    p.add_argument("--restart", action="store_true", help="discard an earlier run of NAME and start again")
    p.add_argument(
        "--learning-rate", type=float, help=f"the head's; default per mode: {_per_mode('learning_rate')}"
    )
    p.add_argument("--backbone-lr-ratio", type=float, default=0.1, help="backbone rate / head rate")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, help="training and serving input size (default: from the data)")
    p.add_argument("--finetune-blocks", type=int, default=4, help="finetune: how many last blocks train")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out")
    p.add_argument("--patience", type=int, help=f"early stopping; default per mode: {_per_mode('patience')}")
    p.add_argument("--min-per-class", type=int, default=10, help="fewest usable images a class may have")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--run-dir", type=Path, help="checkpoints (default: PAIS_CACHE_DIR/finetune/runs/NAME)")
    p.add_argument("--output", type=Path, help="snapshot directory (default: RUN_DIR/model)")
    p.add_argument("--no-store", action="store_true", help="only write the snapshot, do not store it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not STORE_NAME.match(args.name):
        return _error(f"--name {args.name!r}: use lowercase letters, digits, '.', '_' or '-' (at most 63)")
    if args.resume and args.restart:
        return _error("--resume and --restart contradict each other: pick one")
    from ..sources import SourceError
    from .config import ConfigError, Hyperparameters
    from .data import DataError
    from .job import RunExists, default_run_dir, train
    from .trainer import CheckpointMismatch

    try:
        hp = Hyperparameters(name=args.name, **{key: getattr(args, key) for key in HYPERPARAMETERS})
    except ConfigError as error:
        return _error(str(error))
    run_dir = args.run_dir or default_run_dir(args.name)
    output = args.output or run_dir / "model"
    if args.restart and run_dir.exists():
        shutil.rmtree(run_dir)
    try:
        result = train(
            args.data,
            output,
            hp,
            run_dir=run_dir,
            resume=args.resume,
            device=args.device,
            progress=not args.no_progress,
        )
    except (DataError, ConfigError, SourceError, RunExists, CheckpointMismatch) as error:
        return _error(str(error))
    except (Exception, KeyboardInterrupt) as error:
        # The checkpoint on disk is the last complete epoch's; say how to continue.
        reason = (
            "interrupted"
            if isinstance(error, KeyboardInterrupt)
            else f"failed: {type(error).__name__}: {error}"
        )
        print(
            f"error: training {reason}\nthe epochs done so far are checkpointed in {run_dir}; "
            f"continue with: python -m models.finetune --data {args.data} --name {args.name} --resume",
            file=sys.stderr,
        )
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    if not args.no_store:
        from .store import store_snapshot

        tag = store_snapshot(args.name, result.snapshot, result.info)
        print(f"stored {tag} in the BentoML model store")
        print(f"serve it with PAIS_CLASSIFICATION_MODEL=bentoml:{args.name}")
    return 0


def _per_mode(key: str) -> str:
    return ", ".join(f"{mode} {MODE_DEFAULTS[mode][key]}" for mode in MODES)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
