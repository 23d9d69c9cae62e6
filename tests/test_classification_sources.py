"""Non-default classifier sources, each exercised through its real loading code with small
local artifacts: a torchvision state_dict in the torch hub cache, a tiny transformers ViT
saved with save_pretrained (as a directory and as a hub-cache entry), and a snapshot
archive on moto's S3."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
import torch

from models.classification import ImageClassifier
from models.sources import SourceError, parse_source

from .artifacts import CARD, hub_cache_entry, offline_torch_hub, place_checkpoint, snapshot_on_s3

TINY_LABELS = {0: "cat", 1: "dog", 2: "cup"}


def _reference_probabilities(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = model(batch)
    return (out.logits if hasattr(out, "logits") else out).softmax(1)


def _probabilities(result) -> dict[int, float]:
    return {p.index: p.score for p in result.predictions}


# --- torchvision -------------------------------------------------------------------


@pytest.fixture
def torch_hub_with_resnet18(tmp_path, monkeypatch) -> torch.nn.Module:
    """resnet18 weights (seeded random init) placed where torchvision's loader looks first.
    Downloads would go to a closed port on 127.0.0.1, never to the internet."""
    from torchvision.models import ResNet18_Weights, resnet18

    checkpoints = offline_torch_hub(monkeypatch, tmp_path / "torch")
    torch.manual_seed(0)
    model = resnet18(weights=None).eval()
    place_checkpoint(checkpoints, ResNet18_Weights.IMAGENET1K_V1, model)
    return model


def test_torchvision_source_matches_torchvision_own_pipeline(torch_hub_with_resnet18, cat_jpeg):
    from torchvision.io import decode_jpeg
    from torchvision.models import ResNet18_Weights

    clf = ImageClassifier.load("torchvision:resnet18", device="cpu", channels_last=False)
    (ours,) = clf.predict([cat_jpeg], top_k=10)
    weights = ResNet18_Weights.IMAGENET1K_V1
    image = decode_jpeg(torch.frombuffer(bytearray(cat_jpeg), dtype=torch.uint8))
    reference = _reference_probabilities(torch_hub_with_resnet18, weights.transforms()(image)[None])[0]
    assert ours.predictions[0].index == int(reference.argmax())
    for index, score in _probabilities(ours).items():
        assert score == pytest.approx(float(reference[index]), abs=1e-4)
    assert clf.labels == weights.meta["categories"]
    assert clf.info.version.endswith(":IMAGENET1K_V1")
    assert "ImageNet" in clf.info.licence


def test_torchvision_errors_say_what_to_do(torch_hub_with_resnet18):
    with pytest.raises(SourceError, match="available: IMAGENET1K_V1"):
        ImageClassifier.load("torchvision:resnet18:NOPE", device="cpu")
    with pytest.raises(SourceError, match="no classification model 'not_a_net'"):
        ImageClassifier.load("torchvision:not_a_net", device="cpu")
    # not in the cache, and the (closed) network refuses: the message names the cache
    with pytest.raises(SourceError, match="torch hub cache"):
        ImageClassifier.load("torchvision:resnet34", device="cpu")


def test_torchvision_snapshot_round_trip(torch_hub_with_resnet18, cat_jpeg, tmp_path):
    clf = ImageClassifier.load("torchvision:resnet18", device="cpu")
    clf.save(tmp_path / "snap")
    reloaded = ImageClassifier.load(str(tmp_path / "snap"), device="cpu")
    (a,), (b,) = clf.predict([cat_jpeg]), reloaded.predict([cat_jpeg])
    assert _probabilities(a) == pytest.approx(_probabilities(b), abs=1e-5)


# --- Hugging Face ------------------------------------------------------------------


def _save_tiny_vit(directory: Path, card: str | None = None) -> torch.nn.Module:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=3,
        id2label=TINY_LABELS,
        label2id={v: k for k, v in TINY_LABELS.items()},
    )
    torch.manual_seed(0)
    model = ViTForImageClassification(config).eval()
    model.save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    if card:
        (directory / "README.md").write_text(card)
    return model


def test_hf_directory_matches_transformers_own_pipeline(tmp_path, cat_jpeg):
    from PIL import Image
    from transformers import AutoImageProcessor

    model = _save_tiny_vit(tmp_path / "tiny-vit")
    clf = ImageClassifier.load(str(tmp_path / "tiny-vit"), device="cpu")
    (ours,) = clf.predict([cat_jpeg], top_k=3)
    processor = AutoImageProcessor.from_pretrained(tmp_path / "tiny-vit")
    pixels = processor(images=Image.open(io.BytesIO(cat_jpeg)), return_tensors="pt")["pixel_values"]
    reference = _reference_probabilities(model, pixels)[0]
    assert {p.label for p in ours.predictions} == set(TINY_LABELS.values())
    # transformers resizes with PIL, PAIS with torch on the device: close, not bit-equal
    for index, score in _probabilities(ours).items():
        assert score == pytest.approx(float(reference[index]), abs=0.02)
    assert clf.info.name == "tiny-vit" and clf.info.licence.startswith("unknown")


def test_model_dir_may_hold_a_transformers_directory(tmp_path, cat_jpeg):
    """SageMaker's /opt/ml/model/<task> takes any local source, not only PAIS snapshots."""
    from service.model_store import load_runtime, resolve_source
    from service.settings import Settings
    from service.tasks import TASKS

    _save_tiny_vit(tmp_path / "model" / "classification")
    settings = Settings.from_env({"PAIS_MODEL_DIR": str(tmp_path / "model")})
    source = resolve_source("classification", settings)
    assert source == str(tmp_path / "model" / "classification")
    (result,) = load_runtime(TASKS.get("classification"), source, device="cpu").predict([cat_jpeg], top_k=3)
    assert {p.label for p in result.predictions} == set(TINY_LABELS.values())
    (tmp_path / "model" / "detection").mkdir()  # empty: the configured source serves it
    assert resolve_source("detection", settings) != str(tmp_path / "model" / "detection")


def test_hf_hub_id_loads_offline_from_the_hub_cache(tmp_path, monkeypatch, cat_jpeg):
    commit = "0123456789abcdef0123456789abcdef01234567"
    _save_tiny_vit(hub_cache_entry(monkeypatch, tmp_path / "hub", "pais-test/tiny-vit", commit), card=CARD)

    clf = ImageClassifier.load("hf:pais-test/tiny-vit", device="cpu")
    assert (clf.info.name, clf.info.version, clf.info.licence) == (
        "pais-test/tiny-vit",
        commit[:12],
        "apache-2.0",
    )
    assert len(clf.predict([cat_jpeg], top_k=2)[0].predictions) == 2
    with pytest.raises(SourceError, match="not in the Hugging Face cache"):
        ImageClassifier.load("hf:pais-test/absent", device="cpu")


def test_hf_snapshot_round_trip(tmp_path, cat_jpeg):
    _save_tiny_vit(tmp_path / "tiny-vit")
    clf = ImageClassifier.load(str(tmp_path / "tiny-vit"), device="cpu")
    clf.save(tmp_path / "snap")
    reloaded = ImageClassifier.load(str(tmp_path / "snap"), device="cpu")
    (a,), (b,) = clf.predict([cat_jpeg]), reloaded.predict([cat_jpeg])
    assert _probabilities(a) == pytest.approx(_probabilities(b), abs=1e-5)


# --- S3 ------------------------------------------------------------------------------


def test_s3_archive_source(moto_endpoint, tmp_path, monkeypatch, cat_jpeg):
    import boto3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    packaged = ImageClassifier.load("default", device="cpu")
    packaged.save(tmp_path / "snap")
    uri = snapshot_on_s3(tmp_path / "snap", "pais-models", "classification/model.tar.gz")

    from_s3 = ImageClassifier.load(uri, device="cpu")
    assert from_s3.info.version == packaged.info.version
    (a,), (b,) = packaged.predict([cat_jpeg]), from_s3.predict([cat_jpeg])
    assert _probabilities(a) == pytest.approx(_probabilities(b), abs=1e-5)
    # the object gone (or S3 unreachable): the copy downloaded before still serves
    boto3.client("s3").delete_object(Bucket="pais-models", Key="classification/model.tar.gz")
    ImageClassifier.load(uri, device="cpu")


def test_s3_archive_with_escaping_paths_is_refused(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../../escape.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pais-evil")
    s3.put_object(Bucket="pais-evil", Key="model.tar.gz", Body=archive.getvalue())
    with pytest.raises(tarfile.OutsideDestinationError):
        ImageClassifier.load("s3://pais-evil/model.tar.gz", device="cpu")
    assert not (tmp_path / "escape.txt").exists()


# --- URI parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "scheme", "name", "variant"),
    [
        ("packaged:efficientnet-lite0", "packaged", "efficientnet-lite0", None),
        ("torchvision:resnet50", "torchvision", "resnet50", None),
        ("torchvision:resnet50:IMAGENET1K_V2", "torchvision", "resnet50", "IMAGENET1K_V2"),
        ("hf:google/vit-base-patch16-224", "hf", "google/vit-base-patch16-224", None),
        ("hf:google/vit-base-patch16-224@main", "hf", "google/vit-base-patch16-224", "main"),
        ("s3://bucket/models/model.tar.gz", "s3", "s3://bucket/models/model.tar.gz", None),
        ("/opt/ml/model", "local", "/opt/ml/model", None),
    ],
)
def test_parse_source(uri, scheme, name, variant):
    source = parse_source(uri)
    assert (source.scheme, source.name, source.variant, str(source)) == (scheme, name, variant, uri)


@pytest.mark.parametrize("uri", ["", "efficientnet", "packaged:", "s3://", "ftp://x/y"])
def test_bad_sources_name_the_accepted_forms(uri):
    with pytest.raises(SourceError, match=r"packaged:|bucket"):
        parse_source(uri)


def test_unknown_packaged_model_lists_the_known_ones():
    with pytest.raises(SourceError, match="efficientnet-lite0"):
        ImageClassifier.load("packaged:mobilenet", device="cpu")


def test_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(SourceError, match="neither a PAIS snapshot"):
        ImageClassifier.load(str(tmp_path), device="cpu")


def test_snapshot_of_another_task_is_refused(tmp_path):
    (tmp_path / "pais-model.json").write_text('{"task": "detection"}')
    with pytest.raises(SourceError, match="for task 'detection'"):
        ImageClassifier.load(str(tmp_path), device="cpu")


def test_torchvision_snapshot_of_a_model_with_auxiliary_heads(tmp_path, monkeypatch, cat_jpeg):
    """googlenet loads with its input transform on and its auxiliary heads dropped; its
    snapshot must come back the same way."""
    from torchvision.models import GoogLeNet_Weights, googlenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    torch.manual_seed(0)
    published = googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=True)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(published.state_dict(), checkpoints / Path(GoogLeNet_Weights.IMAGENET1K_V1.url).name)

    clf = ImageClassifier.load("torchvision:googlenet", device="cpu")
    clf.save(tmp_path / "snap")
    reloaded = ImageClassifier.load(str(tmp_path / "snap"), device="cpu")
    (a,), (b,) = clf.predict([cat_jpeg]), reloaded.predict([cat_jpeg])
    assert _probabilities(a) == pytest.approx(_probabilities(b), abs=1e-5)


def _snapshot_archive(snapshot: Path) -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(snapshot, arcname=".")
    return archive.getvalue()


def test_s3_prefix_source_refetches_when_the_object_changes(moto_endpoint, tmp_path, monkeypatch, cat_jpeg):
    """A prefix of loose files works; replacing the model in S3 changes what is loaded
    (the cache follows ETags); concurrent loads download once and agree."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    from models.sources import fetch_s3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pais-prefix")
    _save_tiny_vit(tmp_path / "v1")
    for path in (tmp_path / "v1").iterdir():
        s3.put_object(Bucket="pais-prefix", Key=f"vit/{path.name}", Body=path.read_bytes())
    first = ImageClassifier.load("s3://pais-prefix/vit/", device="cpu")

    with ThreadPoolExecutor(4) as pool:
        paths = set(pool.map(lambda _: fetch_s3("s3://pais-prefix/vit/"), range(4)))
    assert len(paths) == 1 and (paths.pop() / "config.json").is_file()

    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(tmp_path / "v1")
    with torch.no_grad():
        model.classifier.bias += torch.tensor([5.0, 0.0, 0.0])  # "cat" wins now
    model.save_pretrained(tmp_path / "v2")
    s3.put_object(
        Bucket="pais-prefix",
        Key="vit/model.safetensors",
        Body=(tmp_path / "v2/model.safetensors").read_bytes(),
    )
    second = ImageClassifier.load("s3://pais-prefix/vit/", device="cpu")
    assert second.info.version != first.info.version
    assert second.predict([cat_jpeg], top_k=1)[0].predictions[0].label == "cat"


def test_s3_prefix_keys_cannot_escape_the_cache(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pais-escape")
    s3.put_object(Bucket="pais-escape", Key="m/config.json", Body=b"{}")
    s3.put_object(Bucket="pais-escape", Key="m/../../escaped.txt", Body=b"owned")
    with pytest.raises(SourceError, match="outside the model directory"):
        ImageClassifier.load("s3://pais-escape/m/", device="cpu")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_s3_cache_on_another_filesystem(moto_endpoint, tmp_path, monkeypatch, cat_jpeg):
    """The cache may live on a different filesystem from /tmp (tmpfs, a mounted volume)."""
    import boto3

    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm tmpfs on this machine")
    cache = Path(tempfile.mkdtemp(dir=shm, prefix="pais-cache-"))
    monkeypatch.setenv("PAIS_CACHE_DIR", str(cache))
    try:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="pais-tmpfs")
        ImageClassifier.load("default", device="cpu").save(tmp_path / "snap")
        s3.put_object(Bucket="pais-tmpfs", Key="model.tar.gz", Body=_snapshot_archive(tmp_path / "snap"))
        clf = ImageClassifier.load("s3://pais-tmpfs/model.tar.gz", device="cpu")
        assert clf.predict([cat_jpeg], top_k=1)[0].predictions[0].label
    finally:
        shutil.rmtree(cache, ignore_errors=True)
