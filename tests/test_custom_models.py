"""Custom classifiers trained with `python -m models.finetune` are served beside the
pretrained one: /classify and /embed take model=NAME[:version], GET /models lists them with
their labels and validation metrics, a newly trained version is served without a restart,
and the SDK, batch jobs and SageMaker's custom attributes pass the name through.

The training data is a small real labelled set (Fashion-MNIST's training split, from
Debian's dataset-fashion-mnist); the store is a scratch BentoML home that shares the
project's stored models and receives the custom ones, so the project's store is untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pais
from pais.batch import run_batch

from . import fashion_mnist
from .client_media import write_cat_video
from .servers import (
    REPO,
    bentoml_home_beside_the_project,
    bentoml_serve,
    free_port,
    running_server,
    service_env,
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed"
    ),
]
# three classes for the first version, a fourth class added for the second
FIRST, SECOND = fashion_mnist.LABELS[:3], fashion_mnist.LABELS[:4]


def train(home: Path, data: Path, name: str) -> dict:
    """The real CLI, head mode (seconds on a CPU); the stored version's tag and labels."""
    env = service_env(BENTOML_HOME=str(home), PAIS_CACHE_DIR=str(home / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "models.finetune", "--data", str(data), "--name", name, "--mode", "head",
         "--no-progress", "--restart", "--min-per-class", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "models", "get", f"{name}:latest", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    stored = json.loads(listing.stdout)
    return {"tag": f"{stored['name']}:{stored['version']}", "labels": stored["metadata"]["labels"]}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A BentoML home with the project's models (linked, read-only use) and room for more."""
    home = bentoml_home_beside_the_project(tmp_path_factory.mktemp("bentoml-home"))
    return home


@pytest.fixture(scope="module")
def first_version(home, tmp_path_factory) -> dict:
    data = fashion_mnist.write_subset(tmp_path_factory.mktemp("fm3"), per_class=15, classes=len(FIRST))
    return train(home, data, "fashion")


@pytest.fixture(scope="module")
def server(home, first_version) -> Iterator[str]:
    port = free_port()
    # video too: its classify operation runs the served classifier beside the custom ones
    env = service_env(BENTOML_HOME=str(home), PAIS_TASKS="classification,detection,video")
    with running_server(bentoml_serve("service.gateway:PAIS", port), port, env) as url:
        yield url


def sample(label: str, tmp_path: Path) -> Path:
    """A training-split image of `label`, as a user would send it."""
    directory = fashion_mnist.write_subset(tmp_path / "one", per_class=1, classes=len(SECOND), offset=500)
    return next((directory / label).iterdir())


def classify(url: str, image: Path, **form: str) -> httpx.Response:
    return httpx.post(
        f"{url}/classify", files=[("images", (image.name, image.read_bytes()))], data=form, timeout=120
    )


def test_models_lists_the_custom_model_with_labels_and_metrics(server, first_version):
    cards = httpx.get(f"{server}/models", timeout=60).json()["models"]
    custom = next(card for card in cards if card["name"] == "fashion")
    assert custom["task"] == "classification" and custom["source"] == "bentoml:fashion"
    assert custom["version"] == first_version["tag"].split(":")[1]
    assert sorted(custom["details"]["labels"]) == sorted(FIRST)  # training sorts its labels
    validation = custom["details"]["evaluation"]["validation"]
    assert validation["accuracy"] > 1 / len(FIRST)  # learned something: above chance
    assert any(card["name"] == "efficientnet-lite0" for card in cards)  # the served model stays


def test_video_classification_uses_the_served_model_beside_custom_ones(server, first_version, tmp_path):
    video = write_cat_video(tmp_path / "cat.mp4")
    with video.open("rb") as handle:
        response = httpx.post(
            f"{server}/analyze_video",
            files={"video": ("cat.mp4", handle, "video/mp4")},
            data={"tasks": "classify", "sample_fps": "1"},
            timeout=300,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["models"] == {"classify": "efficientnet-lite0"}, body["models"]
    assert body["frames"] and all(frame["labels"] for frame in body["frames"])


def test_classify_with_the_custom_model_gives_its_labels_and_the_runtimes_answer(server, home, tmp_path):
    from models.classification import ImageClassifier

    image = sample("trouser", tmp_path)
    answer = classify(server, image, model="fashion", top_k="3")
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()
    assert {p["label"] for p in result["predictions"]} <= set(FIRST)
    version = httpx.get(f"{server}/models").json()["models"]
    stored = next(card for card in version if card["name"] == "fashion")["version"]
    in_process = ImageClassifier.load(str(home / "models" / "fashion" / stored), device="cpu")
    (local,) = in_process.predict([image.read_bytes()], top_k=3)
    top = result["predictions"][0]
    # the same model in process and served; near-ties may order either way
    if abs(local.predictions[0].score - local.predictions[1].score) > 1e-3:
        assert top["label"] == local.predictions[0].label
    assert abs(top["score"] - next(p.score for p in local.predictions if p.label == top["label"])) < 1e-4
    # without model=, the ImageNet classifier answers
    default = classify(server, image).json()[0]
    assert default["model"] == "efficientnet-lite0"


def test_embeddings_from_the_served_and_the_custom_backbone(server, tmp_path):
    image = sample("dress", tmp_path)
    files = [("images", (image.name, image.read_bytes()))]
    served = httpx.post(f"{server}/embed", files=files, timeout=120)
    custom = httpx.post(f"{server}/embed", files=files, data={"model": "fashion"}, timeout=120)
    assert served.status_code == custom.status_code == 200, served.text + custom.text
    (vector,) = served.json()
    (custom_vector,) = custom.json()
    assert vector["model"] == "efficientnet-lite0" and len(vector["embedding"]) == 1280
    assert len(custom_vector["embedding"]) == 1280


def test_unknown_model_is_a_404_naming_the_custom_models(server, tmp_path):
    answer = classify(server, sample("trouser", tmp_path), model="nope")
    assert answer.status_code == 404
    assert "no classification model 'nope'" in answer.json()["error"] and "fashion" in answer.json()["error"]


def test_sdk_batch_and_sagemaker_pass_the_model_through(server, tmp_path):
    image = sample("pullover", tmp_path)
    with pais.Client(server) as client:
        (result,) = client.classify([image], model="fashion")
        assert result.predictions[0].label in FIRST
        (vector,) = client.embed([image], model="fashion")
        assert len(vector.embedding) == 1280
    out = tmp_path / "out.jsonl"
    summary = run_batch("classify", str(image.parent.parent), str(out), url=server, progress=False,
                        options={"model": "fashion"})  # fmt: skip
    assert summary.failed == 0 and summary.done >= 1
    assert all(json.loads(line)["result"]["model"] == "fashion" for line in out.read_text().splitlines())
    invoked = httpx.post(
        f"{server}/invocations",
        content=image.read_bytes(),
        headers={
            "Content-Type": "image/png",
            "X-Amzn-SageMaker-Custom-Attributes": "task=classify;model=fashion",
        },
        timeout=120,
    )
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()[0]["model"] == "fashion"


def test_a_new_version_is_served_without_a_restart(server, home, first_version, tmp_path):
    data = fashion_mnist.write_subset(tmp_path / "fm4", per_class=15, classes=len(SECOND))
    second = train(home, data, "fashion")
    assert second["tag"] != first_version["tag"] and sorted(second["labels"]) == sorted(SECOND)
    image = sample("dress", tmp_path)  # a label only the second version knows
    deadline = time.monotonic() + 60  # the server looks for newer versions every few seconds
    while True:
        labels = {
            p["label"] for p in classify(server, image, model="fashion", top_k="4").json()[0]["predictions"]
        }
        if labels == set(SECOND) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert labels == set(SECOND)
    # the first version stays reachable by its version
    pinned = classify(server, image, model=first_version["tag"], top_k="3").json()[0]
    assert {p["label"] for p in pinned["predictions"]} <= set(FIRST)
    cards = httpx.get(f"{server}/models").json()["models"]
    assert next(card for card in cards if card["name"] == "fashion")["version"] == second["tag"].split(":")[1]
