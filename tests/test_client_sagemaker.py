"""Batch jobs and calls sent to a SageMaker endpoint: boto3's sagemaker-runtime client
(InvokeEndpoint) -> the local runtime shim (tests/sagemaker_shim.py says what it
assumes) -> the real container entrypoint in SageMaker mode (`python -m deploy.entrypoint
serve`), which routes by the custom attribute `task=<name>`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pais
from pais import calls
from pais.batch import run_batch
from pais.sagemaker import SageMakerError, SageMakerTransport

from .images import CAT_LABELS, COFFEE_LABELS, encode, photo
from .sagemaker_shim import SageMakerRuntimeShim
from .servers import BIN, free_port, running_server, service_env

pytestmark = pytest.mark.server
ENDPOINT = "pais-test-endpoint"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def runtime() -> Iterator[str]:
    """The shim's URL, in front of the container entrypoint serving SageMaker's contract."""
    port = free_port()
    command = [sys.executable, "-m", "deploy.entrypoint", "serve", "--host", "127.0.0.1"]
    env = service_env(
        SAGEMAKER_BIND_TO_PORT=str(port), PAIS_CLASSIFICATION_MAX_IMAGES="8", PAIS_DETECTION_MAX_IMAGES="8"
    )
    with (
        running_server(command, port, env, ready_path="/ping") as container,
        SageMakerRuntimeShim(container, ENDPOINT).running() as shim,
    ):
        yield shim.url


@pytest.fixture
def aws(monkeypatch, runtime) -> dict[str, str]:
    """Dummy credentials, and sagemaker-runtime calls sent to the shim (boto3's standard
    per-service endpoint variable, which the CLI honours too)."""
    env = {**AWS_ENV, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_calls_through_invoke_endpoint(aws):
    transport = SageMakerTransport(ENDPOINT)
    cat, coffee = encode(photo("chelsea"), "JPEG"), encode(photo("coffee"), "PNG")
    results = transport.send_sync(calls.classify([cat, coffee], top_k=3))
    assert results[0].top.label in CAT_LABELS
    assert COFFEE_LABELS & {p.label for p in results[1].predictions}
    with pytest.raises(pais.UnsupportedMediaTypeError) as raised:  # the container's 415, unwrapped
        transport.send_sync(calls.classify([cat, b"plain text"]))
    assert raised.value.detail[0]["index"] == 1 and "accepted" in raised.value.message
    with pytest.raises(SageMakerError, match="not found"):
        SageMakerTransport("no-such-endpoint").send_sync(calls.classify([cat]))
    with pytest.raises(pais.PaisError, match="cannot be reached"):
        transport.send_sync(calls.models())  # a GET: InvokeEndpoint only posts


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sm-photos")
    cat, coffee = encode(photo("chelsea"), "JPEG"), encode(photo("coffee"), "JPEG")
    for index in range(10):
        (root / f"cat-{index}.jpg").write_bytes(cat)
        (root / f"coffee-{index}.jpg").write_bytes(coffee)
    (root / "broken.jpg").write_bytes(b"not an image")
    return root


def test_batch_job_to_a_sagemaker_endpoint(aws, folder, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_batch("classify", str(folder), str(out), sagemaker_endpoint=ENDPOINT, progress=False)
    assert (summary.done, summary.failed) == (20, 1)
    entries = {entry["id"]: entry for entry in map(json.loads, out.read_text().splitlines())}
    assert entries["broken.jpg"]["error"]["status"] == 415  # the bad file alone, as over HTTP
    for name, entry in entries.items():
        if entry["ok"]:
            expected = CAT_LABELS if name.startswith("cat") else COFFEE_LABELS
            assert expected & {p["label"] for p in entry["result"]["predictions"]}


def test_cli_to_a_sagemaker_endpoint(aws, folder, tmp_path):
    def pais_batch(out: Path, endpoint: str, *options: str) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "pais"), "batch", "classify", str(folder), "--out", str(out), "--no-progress"]
        return subprocess.run(
            [*command, "--sagemaker-endpoint", endpoint, *options],
            env={**os.environ, **aws},
            capture_output=True,
            text=True,
            timeout=300,
        )

    out = tmp_path / "out.jsonl"
    result = pais_batch(out, ENDPOINT, "-o", "top_k=1")
    assert result.returncode == 2, result.stderr  # finished, with the broken file's failure
    entries = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(entries) == 21 and sum(entry["ok"] for entry in entries) == 20
    assert all(len(entry["result"]["predictions"]) == 1 for entry in entries if entry["ok"])
    unknown = pais_batch(tmp_path / "elsewhere.jsonl", "no-such-endpoint")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
