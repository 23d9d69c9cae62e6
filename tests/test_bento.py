"""`bentoml build` of both image variants: the generated Dockerfile (base image, system
packages, entrypoint, environment), what the bento carries, and the bento served through
the image's own entrypoint (no Docker engine here, so the entrypoint runs as a process)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from service.model_store import model_tasks

from .images import CAT_LABELS, encode, photo
from .servers import BIN, REPO, free_port, running_server, service_env

pytestmark = pytest.mark.server
CATALOG = model_tasks()  # the tasks with a model of their own: what the store and the bento hold
VARIANTS = {"gpu": "bentofile.yaml", "cpu": "bentofile.cpu.yaml"}
ENTRYPOINT = '[ "python", "/home/bentoml/bento/src/deploy/entrypoint.py" ]'


def apt_packages() -> list[str]:
    lines = (REPO / "requirements" / "apt.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def bentos(tmp_path_factory) -> dict[str, Path]:
    """Both variants built into a scratch BENTOML_HOME that shares the project's models."""
    store = REPO / ".bentoml" / "models"
    missing = [task for task in CATALOG if not (store / f"pais-{task}").is_dir()]
    if missing:
        pytest.fail(f"models {missing} are not in {store}: run `make models` first")
    home = tmp_path_factory.mktemp("bentoml-home")
    (home / "models").symlink_to(store)
    built = {}
    for variant, bentofile in VARIANTS.items():
        result = subprocess.run(
            [str(BIN / "bentoml"), "build", "-f", bentofile, "--output", "tag"],
            cwd=REPO, env=service_env(BENTOML_HOME=str(home)), capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        tag = re.search(r"pais:(\w+)", result.stdout + result.stderr).group(1)
        built[variant] = home / "bentos" / "pais" / tag
    return built


def dockerfile(bento: Path) -> str:
    return (bento / "env" / "docker" / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("variant", "base"),
    [("gpu", "FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"), ("cpu", "FROM python:3.11-slim")],
)
def test_dockerfile(bentos, variant, base):
    text = dockerfile(bentos[variant])
    assert base in text
    install = next(line for line in text.splitlines() if "ca-certificates" in line)
    for package in apt_packages():
        assert package in install.split(), f"{package} missing from: {install}"
    entrypoints = re.findall(r"^ENTRYPOINT (.*)$", text, re.M)
    assert entrypoints[-1] == ENTRYPOINT
    assert "EXPOSE 8080" in text and "EXPOSE 3000" in text
    assert "ENV BENTOML_DO_NOT_TRACK=" in text
    assert re.search(r"ARG PAIS_DEVICE=(\S+)", text).group(1) == ("cuda" if variant == "gpu" else "cpu")


def test_bento_contents(bentos):
    for bento in bentos.values():
        src = bento / "src"
        assert (src / "deploy" / "entrypoint.py").is_file()
        assert (src / "service" / "gateway.py").is_file() and (
            src / "service" / "tasks" / "video.py"
        ).is_file()
        assert not (src / "tests").exists() and not (src / "benchmarks").exists()
        requirements = (bento / "env" / "python" / "requirements.txt").read_text()
        assert "torch==2.14.1" in requirements and "bentoml==1.4.40" in requirements
        onnxruntime = {line for line in requirements.splitlines() if line.startswith("onnxruntime")}
        variant = yaml.safe_load((bento / "bento.yaml").read_text())["labels"]["variant"]
        assert onnxruntime == (
            {"onnxruntime-gpu[cuda]==1.31.1"} if variant == "gpu" else {"onnxruntime==1.32.0"}
        )
        manifest = yaml.safe_load((bento / "bento.yaml").read_text())
        stored = {model["tag"].split(":")[0] for model in manifest["models"]}
        assert stored == {f"pais-{task}" for task in CATALOG}


def test_bentofiles_differ_only_in_variant_lines():
    def shared(name: str) -> list[str]:
        lines = (REPO / name).read_text().splitlines()
        return [
            line for line in lines if not line.lstrip().startswith("#") and not line.endswith("# variant")
        ]

    assert shared("bentofile.yaml") == shared("bentofile.cpu.yaml")
    config = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert config["docker"]["system_packages"] == apt_packages()
    assert sorted(config["models"]) == sorted(f"pais-{task}:latest" for task in CATALOG)


# Stands in for buildah (no container engine in CI): records its arguments and the build
# context BentoML hands it, which BentoML deletes afterwards.
STAND_IN_BUILDAH = """#!/bin/sh
record="$PAIS_RECORD"
echo "$@" > "$record/argv"
for arg; do context="$arg"; done
cp "$context/env/docker/Dockerfile" "$record/Dockerfile"
ls "$context" "$context/models" > "$record/listing"
"""


def test_make_image_hands_the_engine_the_bentos_dockerfile(bentos, tmp_path):
    """`make image` as a user runs it, up to the engine: BentoML regenerates the Dockerfile
    in a temporary copy of the bento (it refused our template when run from the project
    directory), and the engine gets that Dockerfile with PAIS's entrypoint, and the models."""
    stand_in = tmp_path / "bin" / "buildah"
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN_BUILDAH)
    stand_in.chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    env = service_env(
        BENTOML_HOME=str(bentos["cpu"].parents[2]),  # the cpu bento was built last: pais:latest
        PATH=f"{stand_in.parent}:{BIN}:/usr/bin:/bin",
        PAIS_RECORD=str(record),
    )
    result = subprocess.run(
        ["make", "-o", "bento", "image", "IMAGE_BACKEND=buildah", "VARIANT=cpu"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    argv = (record / "argv").read_text().split()
    assert argv[0] == "build" and "pais:cpu" in argv
    built = (record / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in built
    assert re.findall(r"^ENTRYPOINT (.*)$", built, re.M)[-1] == ENTRYPOINT
    listing = (record / "listing").read_text().split()
    assert all(f"pais-{task}" in listing for task in CATALOG)


@pytest.fixture(scope="module")
def served_bento(bentos) -> Iterator[str]:
    """The GPU bento served by its own entrypoint in SageMaker mode, as `docker run IMAGE
    serve` would start it (here on the CPU, from the bento's copy of the sources)."""
    bento = bentos["gpu"]
    port = free_port()
    env = service_env(
        BENTO_PATH=str(bento),
        SAGEMAKER_BIND_TO_PORT=str(port),
        BENTOML_HOME=str(bento.parents[2]),
        PYTHONPATH="",  # only the bento's own sources
        PAIS_DEVICE="cpu",  # the GPU image says cuda; this machine has no GPU
    )
    command = [
        sys.executable,
        str(bento / "src" / "deploy" / "entrypoint.py"),
        "serve",
        "--host",
        "127.0.0.1",
    ]
    with running_server(command, port, env, ready_path="/ping") as url:
        yield url


def test_bento_serves_through_its_entrypoint(served_bento):
    jpeg = encode(photo("chelsea"), "JPEG", quality=90)
    response = httpx.post(f"{served_bento}/invocations", content=jpeg, headers={"Content-Type": "image/jpeg"},
                          timeout=120)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()[0]["predictions"][0]["label"] in CAT_LABELS
    tasks = {card["task"] for card in httpx.get(f"{served_bento}/models").json()["models"]}
    assert tasks == set(CATALOG)
