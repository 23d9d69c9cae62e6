"""Shared fixtures: real photos, a real PAIS server, moto's AWS server.

Tests never reach beyond 127.0.0.1: hubs are forced offline here, before anything
imports huggingface_hub or transformers. The BentoML store is the project's (what
`make models` fills), also when pytest is run without make.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("BENTOML_HOME", str(Path(__file__).resolve().parents[1] / ".bentoml"))

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .images import encode, photo
from .servers import bentoml_serve, free_port, running_server, service_env

if TYPE_CHECKING:
    from .inprocess import InProcessPais

# Limits of the shared test server, small enough that a test can cross them cheaply.
TEST_MAX_REQUEST_BYTES = 4 * 1024 * 1024
TEST_MAX_IMAGES = 8
TEST_MAX_VIDEO_BYTES = 2 * 1024 * 1024
TEST_MAX_VIDEO_DURATION_S = 8
TEST_MAX_VIDEO_FRAMES = 40
TEST_MAX_TEXTS = 6
TEST_MAX_TEXT_CHARS = 2000
TEST_MAX_TRANSLATE_CHARS = 5000
TEST_MAX_SPEECH_CHARS = 1000


@pytest.fixture(scope="session")
def cat_jpeg() -> bytes:
    return encode(photo("chelsea"), "JPEG", quality=90)


@pytest.fixture(scope="session")
def coffee_jpeg() -> bytes:
    return encode(photo("coffee"), "JPEG", quality=90)


@pytest.fixture(scope="session")
def pais_server() -> Iterator[str]:
    """`bentoml serve service.gateway:PAIS` on a free port, with small request limits."""
    port = free_port()
    env = service_env(
        PAIS_MAX_REQUEST_BYTES=str(TEST_MAX_REQUEST_BYTES),
        PAIS_CLASSIFICATION_MAX_IMAGES=str(TEST_MAX_IMAGES),
        PAIS_DETECTION_MAX_IMAGES=str(TEST_MAX_IMAGES),
        PAIS_VIDEO_MAX_BYTES=str(TEST_MAX_VIDEO_BYTES),
        PAIS_VIDEO_MAX_DURATION_S=str(TEST_MAX_VIDEO_DURATION_S),
        PAIS_VIDEO_MAX_FRAMES=str(TEST_MAX_VIDEO_FRAMES),
        PAIS_TRANSLATION_MAX_TEXTS=str(TEST_MAX_TEXTS),
        PAIS_TRANSLATION_MAX_TEXT_CHARS=str(TEST_MAX_TEXT_CHARS),
        PAIS_TRANSLATION_MAX_REQUEST_CHARS=str(TEST_MAX_TRANSLATE_CHARS),
        PAIS_SPEECH_MAX_CHARS=str(TEST_MAX_SPEECH_CHARS),
    )
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, env) as url:
        yield url


@pytest.fixture(scope="session")
def pais_app() -> Iterator[InProcessPais]:
    """PAIS's app in this process, with the real runtimes and pais_server's limits, no
    `bentoml serve` (tests/inprocess.py): `pais_app.client.post("/classify", files=...)`.
    Loaded once per session (~10 s for every task); PAIS_TEST_TASKS=translation,speech
    loads only those (with what they require), and tests of other tasks skip."""
    from .inprocess import running_pais

    with running_pais(os.environ.get("PAIS_TEST_TASKS") or "all") as app:
        yield app


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1 (S3, ECR, IAM, SageMaker, ...), with dummy credentials
    in the environment so boto3 clients made by the code under test find it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="session")
def aws_emulator(moto_endpoint: str) -> Iterator:
    """moto behind a proxy that adds the SageMaker and EC2 behaviour moto fakes or lacks
    (tests/aws_emulator.py says what each extension assumes about AWS)."""
    from .aws_emulator import emulator

    with emulator(moto_endpoint) as running:
        yield running


@pytest.fixture(scope="session")
def pushed_release(aws_emulator, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`python -m deploy push` of a real OCI image layout and the project's model store."""
    from .deploy_support import make_oci_layout, push_layout

    layout = make_oci_layout(tmp_path_factory.mktemp("oci"), {"app/VERSION": b"release-1\n"})
    return push_layout(aws_emulator.url, layout, "release-1")


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
