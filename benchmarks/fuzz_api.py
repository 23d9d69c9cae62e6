"""A longer schemathesis run than the suite's: every operation of GET /docs.json, all
checks, more examples, a random seed (printed, so a failure can be replayed).

    .venv/bin/python -m benchmarks.fuzz_api [--url http://host:3000] [--examples 200] [--seed N]

Starts `bentoml serve` with the test suite's small limits unless --url is given. The
meanings of statuses the checks' defaults do not know are in tests/schemathesis.toml.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys

from benchmarks.common import served
from tests.servers import BIN, REPO

SMALL_LIMITS = {
    "PAIS_CLASSIFICATION_MAX_IMAGES": "8",
    "PAIS_DETECTION_MAX_IMAGES": "8",
    "PAIS_TRANSLATION_MAX_TEXTS": "6",
    "PAIS_TRANSLATION_MAX_TEXT_CHARS": "2000",
    "PAIS_SPEECH_MAX_CHARS": "1000",
    "PAIS_VIDEO_MAX_BYTES": "2097152",
}


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--url", help="fuzz this running server instead of starting one")
    parser.add_argument("--examples", type=int, default=200, help="examples per operation (default 200)")
    parser.add_argument("--seed", type=int, default=random.randrange(2**31), help="hypothesis seed")
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.examples} examples per operation", flush=True)
    with served(args.url, **SMALL_LIMITS) as url:
        command = [
            str(BIN / "schemathesis"), "--config-file", str(REPO / "tests" / "schemathesis.toml"),
            "run", f"{url}/docs.json", "--checks", "all", "--workers", "2", "--request-timeout", "120",
            "--max-examples", str(args.examples), "--seed", str(args.seed),
            # header strings that cannot be sent are dropped (tests/test_openapi_contract.py)
            "--suppress-health-check", "filter_too_much",
        ]  # fmt: skip
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
