"""The OpenAPI document is the contract: schemathesis generates requests from GET
/docs.json for every operation and runs all its checks against the real server (no 5xx;
only documented statuses, content types and headers; answers match their schemas;
schema-invalid requests refused; schema-valid ones accepted, with the meanings
tests/schemathesis.toml states). A fixed seed and a bounded number of examples keep it
repeatable here; benchmarks/fuzz_api.py runs the same with more examples and a random seed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from .servers import BIN, REPO

pytestmark = pytest.mark.server
CONFIG = REPO / "tests" / "schemathesis.toml"


def schemathesis(url: str, *options: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` against the server's own document, all checks."""
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/docs.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--request-timeout",
        "120",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *options,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=1500)


def test_every_operation_honours_the_document(pais_server, tmp_path):
    # The document lists its operations once the models are loaded (with their labels and
    # languages as enums): ask for it first, as a client would.
    document = httpx.get(f"{pais_server}/docs.json", timeout=60).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations >= 18
    result = schemathesis(
        pais_server,
        *("--max-examples", "10", "--seed", "20261205"),
        *("--generation-database", "none"),  # the same examples on every machine, CI included
        # /invocations's custom-attributes header is a free string; most strings generated
        # for it cannot be sent as a header value and are dropped before any request, which
        # Hypothesis calls a failed health check. The requests that are sent are checked.
        *("--suppress-health-check", "filter_too_much"),
        report_dir=tmp_path,
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    tested = re.search(r"Tested: (\d+)", summary)
    assert selected and tested, summary
    # every operation of the document ran (schemathesis counts each path and method once)
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= operations - 1, summary
