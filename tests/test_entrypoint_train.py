"""The container entrypoint's `train`: SageMaker's training contract, run for real.

Each test lays out an /opt/ml-like tree in a temporary directory (PAIS_SAGEMAKER_ROOT points
the entrypoint at it): labelled images under input/data/<channel>/, hyperparameters.json
with string values as SageMaker writes them. Then it runs the entrypoint as a process, as
the image does (`python <bento>/src/deploy/entrypoint.py train` from the bento directory,
with BENTO_PATH set), and checks what SageMaker would see: the exit status, the snapshot
in model/, the reason in output/failure, the checkpoints in checkpoints/.

The data are real labelled images (Fashion-MNIST's training split, Debian's
dataset-fashion-mnist); training is real (head mode: seconds on a CPU; one test trains the
network's last blocks and is killed mid-run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import fashion_mnist
from .servers import REPO, service_env

pytestmark = pytest.mark.skipif(
    not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed"
)
LABELS = sorted(fashion_mnist.LABELS[:3])
STORED = REPO / ".bentoml" / "models" / "pais-classification"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """15 training images of each of three classes, as <label>/<index>.png."""
    return fashion_mnist.write_subset(tmp_path_factory.mktemp("fm3"), per_class=15, classes=3)


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Path:
    """A bento directory as the image has it: src/ (this repository) and the stored
    classifier under models/ (the project's store, linked: read only)."""
    if not (STORED / "latest").is_file():
        pytest.skip("no pais-classification in the project's model store (run `make models`)")
    bento = tmp_path_factory.mktemp("bento")
    (bento / "src").symlink_to(REPO)
    (bento / "models").mkdir()
    (bento / "models" / "pais-classification").symlink_to(STORED)
    return bento


def opt_ml(root: Path, channels: dict[str, Path | None], hyperparameters: dict[str, str] | None) -> Path:
    """What SageMaker puts in /opt/ml before it starts the container: each channel's files
    (None: an empty channel), and hyperparameters.json when there are hyperparameters."""
    for channel, source in channels.items():
        target = root / "input" / "data" / channel
        if source is None:
            target.mkdir(parents=True)
        else:
            shutil.copytree(source, target)
    if hyperparameters is not None:
        config = root / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "model").mkdir(parents=True)
    return root


def train_command(bento: Path | None) -> tuple[list[str], Path, dict[str, str]]:
    """The image's `ENTRYPOINT ... train` (from the bento, with BENTO_PATH), or the
    entrypoint as the host runs it (bento None: from the repository)."""
    if bento is None:
        return [sys.executable, str(REPO / "deploy" / "entrypoint.py"), "train"], REPO, {}
    script = bento / "src" / "deploy" / "entrypoint.py"
    return [sys.executable, str(script), "train"], bento, {"BENTO_PATH": str(bento)}


def run_train(root: Path, bento: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    command, cwd, extra = train_command(bento)
    environment = service_env(
        PAIS_SAGEMAKER_ROOT=str(root), PAIS_CACHE_DIR=str(root.parent / "cache"), **extra, **env
    )
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def failure(root: Path) -> str:
    return (root / "output" / "failure").read_text()


def held_out(tmp_path: Path) -> list[tuple[str, bytes]]:
    """Three images of each label that training never saw (another part of the split)."""
    folder = fashion_mnist.write_subset(tmp_path / "held-out", per_class=3, classes=3, offset=500)
    return [(path.parent.name, path.read_bytes()) for path in sorted(folder.glob("*/*.png"))]


def test_train_writes_a_snapshot_that_classifies_with_the_trained_labels(images, bento, tmp_path):
    from models.classification import ImageClassifier

    root = opt_ml(
        tmp_path / "opt-ml",
        {"training": images},
        # SageMaker's strings; `_tuning_objective_metric` is what automatic model tuning adds
        {"mode": "head", "epochs": "20", "min_per_class": "10", "seed": "0", "_tuning_objective_metric": "x"},
    )
    started = time.monotonic()
    done = run_train(root, bento)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 300
    assert not (root / "output" / "failure").exists()
    assert "base model: the image's pais-classification" in done.stdout
    assert "left out SageMaker's own hyperparameters _tuning_objective_metric" in done.stdout

    manifest = json.loads((root / "model" / "pais-model.json").read_text())
    assert manifest["task"] == "classification" and sorted(manifest["labels"]) == LABELS
    training = manifest["info"]["details"]["training"]
    assert training["hyperparameters"]["epochs"] == 20 and training["mode"] == "head"  # parsed
    # the base was the image's stored copy, as the image serves it (no weights package needed)
    base = manifest["info"]["details"]["base_model"]["source"]
    assert Path(base).resolve().parent == STORED.resolve()
    assert (root / "checkpoints" / "checkpoint.pt").is_file()  # for SageMaker to keep in S3

    classifier = ImageClassifier.load(str(root / "model"), device="cpu")
    assert sorted(classifier.labels) == LABELS
    samples = held_out(tmp_path)
    results = classifier.predict([data for _, data in samples], top_k=1)
    right = sum(
        result.predictions[0].label == label for (label, _), result in zip(samples, results, strict=True)
    )
    assert right >= 7, f"{right} of {len(samples)} held-out images right"  # chance: 3


def test_one_class_fails_with_the_reason_in_the_failure_file(images, tmp_path):
    one = tmp_path / "one-class"
    shutil.copytree(images / LABELS[0], one / LABELS[0])
    root = opt_ml(tmp_path / "opt-ml", {"training": one}, {"mode": "head"})
    done = run_train(root)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    reason = failure(root)
    assert f"only one class ('{LABELS[0]}')" in reason and "at least two classes" in reason
    assert reason.count("\n") == 1  # one paragraph
    assert reason.strip() in done.stderr  # and in the job's log
    assert list((root / "model").iterdir()) == []


def test_bad_hyperparameters_fail_before_any_training(images, tmp_path):
    root = opt_ml(tmp_path / "opt-ml", {"training": images}, {"mode": "head", "learning_rat": "0.1"})
    done = run_train(root)
    assert done.returncode == 2
    assert "unknown hyperparameters learning_rat" in failure(root)
    assert "learning_rate" in failure(root)  # the known names are listed
    (root / "input" / "config" / "hyperparameters.json").write_text('{"epochs": "many"}')
    (root / "output" / "failure").unlink()
    done = run_train(root)
    assert done.returncode == 2 and "hyperparameter epochs='many' is not a valid" in failure(root)


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ({}, "holds no channel; give the training job a channel named 'training'"),
        ({"images": None, "labels": None}, "input channels images, labels: none is named 'training'"),
    ],
)
def test_the_channel_must_be_clear(tmp_path, channels, expected):
    root = opt_ml(tmp_path / "opt-ml", channels, None)
    done = run_train(root)
    assert done.returncode == 2 and expected in failure(root)


def test_a_killed_job_resumes_from_its_checkpoints(images, tmp_path):
    """A Spot interruption: the job is killed mid-training; SageMaker restores
    /opt/ml/checkpoints and runs `train` again, which continues from the last epoch. The
    only channel is not called `training` here: with one channel, that one is used."""
    hyperparameters = {"mode": "finetune", "epochs": "6", "patience": "6", "min_per_class": "10"}
    root = opt_ml(tmp_path / "opt-ml", {"images": images}, hyperparameters)
    command, cwd, _ = train_command(None)
    env = service_env(PAIS_SAGEMAKER_ROOT=str(root), PAIS_CACHE_DIR=str(tmp_path / "cache"))
    first = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        seen.append(line)
        if re.match(r"epoch 1/6: .*checkpoint saved", line):  # a pixel epoch, not the baseline's
            break
    os.killpg(first.pid, signal.SIGKILL)  # no chance to clean up, as on a reclaimed instance
    first.wait(30)
    assert first.returncode != 0, "".join(seen[-20:])
    assert list((root / "model").iterdir()) == []

    again = run_train(root)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming from the checkpoints in" in again.stdout
    resumed = re.search(r"resuming after epoch (\d) of 6", again.stdout)
    assert resumed and 1 <= int(resumed.group(1)) < 6, again.stdout[-3000:]
    card = json.loads((root / "model" / "pais-model.json").read_text())["info"]["details"]["training"]
    assert card["resumed_after_epoch"] == int(resumed.group(1))
    assert card["epochs_run"] == 6  # the history holds the epochs of both runs
