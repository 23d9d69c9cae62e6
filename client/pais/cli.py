"""The `pais` command.

    pais batch TASK INPUT --out OUTPUT [--url URL | --sagemaker-endpoint NAME] [-o key=value ...]
    pais models [--url URL]
    pais ready [--url URL]

Exit status of `pais batch`: 0 every record done, 2 finished but the output holds failed
records (their error lines say why), 1 stopped early (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .batch import TASKS, InputError, JobAborted, run_batch_async
from .batch.journal import JournalLocked
from .client import Client
from .errors import PaisError

EPILOG = """\
examples:
  pais batch classify photos/ --out labels.jsonl --url http://gpu-box:3000
  pais batch detect 's3://bucket/frames/' --out s3://bucket/detections/ -o score_threshold=0.4
  pais batch translate texts.jsonl --out es.jsonl -o target=es
  pais batch synthesize lines.jsonl --out speech.jsonl          # WAVs in speech.files/
  pais batch classify photos/ --out labels.jsonl --sagemaker-endpoint pais-prod

INPUT: a folder (recursive), a glob ('photos/**/*.jpg'), a JSONL file (one object per line
with an "id"; "image"/"video" paths or s3:// URIs, or "text", or the request's fields), an
s3://bucket/prefix/ or an s3://bucket/records.jsonl. Rerun the same command to resume: ids
already in the output are skipped.
"""


def parse_option(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pais", description="PAIS client: batch jobs and quick checks.")
    commands = parser.add_subparsers(dest="command", required=True)

    def server_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--url", help="server URL (default: $PAIS_URL, else http://127.0.0.1:3000)")
        command.add_argument("--api-key", help="API key (default: $PAIS_API_KEY)")

    batch = commands.add_parser(
        "batch",
        help="run a task over many inputs, resumably",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument(
        "task",
        help=f"{', '.join(sorted(TASKS))}, or any operation the server declares with a batch format",
    )
    batch.add_argument("input", help="folder, glob, JSONL file, s3:// prefix or s3://...jsonl")
    batch.add_argument("--out", required=True, help="JSONL file or s3://bucket/prefix/")
    server_options(batch)
    batch.add_argument("--sagemaker-endpoint", metavar="NAME", help="send to this SageMaker endpoint instead")
    batch.add_argument("--region", help="AWS region of the SageMaker endpoint")
    batch.add_argument(
        "-o", "--option", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
        help="a task option, e.g. top_k=3, target=es, score_threshold=0.4 (repeatable)",
    )  # fmt: skip
    batch.add_argument(
        "--model",
        metavar="NAME[:VERSION]",
        help="a custom classifier (classify, embed): the same as -o model=NAME",
    )
    batch.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    batch.add_argument(
        "--batch-size", type=int, help="records per request for classify/detect/translate (16/16/32)"
    )
    batch.add_argument("--retry-failed", action="store_true", help="also redo records that failed with a 4xx")
    batch.add_argument("--timeout", type=float, help="seconds to wait for one answer (default 150)")
    batch.add_argument(
        "--fsync-interval",
        type=float,
        default=1.0,
        help="seconds between fsyncs of the output (0: every line)",
    )
    batch.add_argument("--state-dir", help="local journal of an S3 output (default ~/.cache/pais/batch/...)")
    batch.add_argument("--part-records", type=int, default=1000, help="lines per S3 part (default 1000)")
    batch.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    batch.add_argument("--no-count", action="store_true", help="do not count the input first (no ETA)")
    batch.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")

    models = commands.add_parser("models", help="list the server's models (task, source, licence)")
    server_options(models)
    ready = commands.add_parser("ready", help="exit 0 when every model is loaded")
    server_options(ready)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "batch":
            return _batch(args)
        with Client(args.url, api_key=args.api_key) as client:
            if args.command == "models":
                for card in client.models():
                    print(f"{card.task:16} {card.name:24} {card.source:40} {card.licence}")
                return 0
            ready = client.ready()
            print("ready" if ready else "not ready")
            return 0 if ready else 1
    except (PaisError, InputError, JournalLocked, ValueError, RuntimeError) as error:
        print(f"pais: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pais: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _batch(args: argparse.Namespace) -> int:
    try:
        summary = asyncio.run(
            run_batch_async(
                args.task,
                args.input,
                args.out,
                url=args.url,
                api_key=args.api_key,
                sagemaker_endpoint=args.sagemaker_endpoint,
                region=args.region,
                options={**dict(args.option), **({"model": args.model} if args.model else {})},
                concurrency=args.concurrency,
                batch_size=args.batch_size,
                retry_failed=args.retry_failed,
                timeout_s=args.timeout,
                progress=not args.no_progress,
                count_total=not args.no_count,
                fsync_interval_s=args.fsync_interval,
                state_dir=args.state_dir,
                part_records=args.part_records,
            )
        )
    except JobAborted as error:
        print(f"pais: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary.to_dict()))
    print(summary.render(), file=sys.stderr)
    if summary.aborted:
        return 1
    return 2 if summary.failed or summary.skipped_failed else 0


if __name__ == "__main__":  # python -m pais.cli
    sys.exit(main())
