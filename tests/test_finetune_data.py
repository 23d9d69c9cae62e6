"""Fine-tuning's data handling without training: the bad-data matrix (each problem and
the message it gets), the three data layouts (folder, CSV manifest, S3 prefix), the
stratified split, the data fingerprint and hyperparameters as SageMaker passes them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from models.finetune import data
from models.finetune.config import ConfigError, Hyperparameters
from models.finetune.data import DataError
from models.finetune.images import choose_image_size, scan
from models.finetune.job import train
from models.finetune.split import stratified_split
from models.sources import SourceError

from .finetune_data import add_bad_files, png_bytes
from .servers import REPO


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for label, count in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / label / f"{i}.png").write_bytes(png_bytes(shade=10 * i % 250))
    return root


def refusal(tmp_path: Path, data_location: Path | str, **hyperparameters: str) -> str:
    """The DataError message training gives for this data (before any model is loaded)."""
    with pytest.raises(DataError) as caught:
        train(data_location, tmp_path / "out", {"name": "bad", **hyperparameters}, run_dir=tmp_path / "run")
    assert not (tmp_path / "out").exists()
    return str(caught.value)


# --- the bad-data matrix -------------------------------------------------------------------


def test_one_class_is_refused(tmp_path):
    message = refusal(tmp_path, make_folder(tmp_path / "d", {"shoes": 12}))
    assert message == "only one class ('shoes'): a classifier needs at least two classes with images"


def test_empty_class_folder_is_named(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 12, "bags": 12})
    (root / "hats").mkdir()
    assert refusal(tmp_path, root) == "1 class without usable images: 'hats'"


def test_class_whose_files_are_all_unreadable_is_empty(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 12, "bags": 12})
    add_bad_files(root, "hats")
    assert refusal(tmp_path, root) == "1 class without usable images: 'hats'"
    skipped = (tmp_path / "run" / "skipped-files.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in skipped] == ["hats/cut.png", "hats/empty.png", "hats/notes.jpg"]


def test_classes_under_the_minimum_are_named_with_their_counts(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 12, "bags": 3, "hats": 9})
    assert refusal(tmp_path, root) == (
        "2 classes with fewer than 10 usable images (--min-per-class): 'bags' (3), 'hats' (9)"
    )
    # The minimum is a setting: with 3 allowed, the same data passes the checks and
    # training goes on to load its base model (here one that does not exist).
    with pytest.raises(SourceError, match="no packaged classifier 'no-such-model'"):
        train(
            root,
            tmp_path / "out",
            {"min_per_class": "3", "base": "packaged:no-such-model"},
            run_dir=tmp_path / "r2",
        )


def test_several_problems_are_reported_together(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 4})
    (root / "hats").mkdir()
    assert refusal(tmp_path, root) == (
        "only one class ('shoes'): a classifier needs at least two classes with images; "
        "1 class without usable images: 'hats'; "
        "1 class with fewer than 10 usable images (--min-per-class): 'shoes' (4)"
    )


def test_missing_and_empty_data(tmp_path):
    assert refusal(tmp_path, tmp_path / "nowhere").startswith(
        f"{tmp_path / 'nowhere'}: no such file or folder"
    )
    (tmp_path / "empty").mkdir()
    assert refusal(tmp_path, tmp_path / "empty").startswith(f"{tmp_path / 'empty'}: no labelled images found")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(png_bytes())
    assert "no labelled images found" in refusal(tmp_path, tmp_path / "flat")


def test_manifest_problems_name_the_line(tmp_path):
    bad_header = tmp_path / "a.csv"
    bad_header.write_text("file,class\nx.png,shoes\n")
    assert "the CSV needs a header with columns path and label, got ['file', 'class']" in refusal(
        tmp_path, bad_header
    )
    no_label = tmp_path / "b.csv"
    no_label.write_text("path,label\nx.png,shoes\ny.png,\n")
    assert (
        refusal(tmp_path, no_label) == f"{no_label} line 3: both path and label are needed, got 'y.png', ''"
    )
    other = tmp_path / "c.txt"
    other.write_text("x")
    assert "a file must be a CSV manifest" in refusal(tmp_path, other)


def test_unreadable_files_are_listed_and_skipped(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 3, "bags": 3})
    bad = add_bad_files(root, "bags")
    (root / "README.txt").write_text("my photos")
    listing = data.list_examples(str(root))
    assert listing.ignored == ["README.txt"]
    scanned = scan(listing.examples)
    assert Counter(e.label for e in scanned.examples) == {"shoes": 3, "bags": 3}
    reasons = dict(scanned.skipped)
    assert sorted(reasons) == bad
    assert reasons["bags/empty.png"] == "the file is empty"
    assert "not a recognised image" in reasons["bags/notes.jpg"]


def test_cli_refusal_is_one_line_and_exit_code_2(tmp_path):
    root = make_folder(tmp_path / "d", {"shoes": 12})
    env = {**os.environ, "PYTHONPATH": str(REPO), "PAIS_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "models.finetune", "--data", str(root), "--name", "x", "--no-store"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: only one class ('shoes'): a classifier needs at least two classes with images"
    )
    assert "Traceback" not in result.stderr


# --- layouts -------------------------------------------------------------------------------


def test_manifest_paths_are_relative_to_the_csv(tmp_path):
    make_folder(tmp_path / "imgs", {"shoes": 2, "bags": 1})
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        f"path,label\nimgs/shoes/0.png,shoes\nimgs/shoes/1.png,boots\n{tmp_path}/imgs/bags/0.png,bags\n"
    )
    listing = data.list_examples(str(manifest))
    assert [(e.name, e.label) for e in listing.examples] == [
        ("imgs/shoes/0.png", "shoes"),
        ("imgs/shoes/1.png", "boots"),
        (f"{tmp_path}/imgs/bags/0.png", "bags"),
    ]
    assert all(e.path.is_file() for e in listing.examples)
    assert listing.labels == ["bags", "boots", "shoes"]


def test_s3_prefix_and_manifest(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    for key in ("set/shoes/a.png", "set/shoes/b.png", "set/bags/c.png"):
        s3.put_object(Bucket="photos", Key=key, Body=png_bytes())
    s3.put_object(
        Bucket="photos", Key="set/labels.csv", Body=b"path,label\nshoes/a.png,shoes\nbags/c.png,bags\n"
    )

    folder = data.list_examples("s3://photos/set/")
    assert [(e.name, e.label) for e in folder.examples] == [
        ("bags/c.png", "bags"),
        ("shoes/a.png", "shoes"),
        ("shoes/b.png", "shoes"),
    ]
    assert folder.ignored == ["labels.csv"]
    manifest = data.list_examples("s3://photos/set/labels.csv")
    assert [(e.name, e.label) for e in manifest.examples] == [
        ("shoes/a.png", "shoes"),
        ("bags/c.png", "bags"),
    ]
    assert manifest.examples[0].path.read_bytes() == png_bytes()
    with pytest.raises(DataError, match="no objects under s3://photos/nothing"):
        data.list_examples("s3://photos/nothing/")


# --- split, fingerprint, sizes, hyperparameters --------------------------------------------


def test_stratified_split_keeps_each_class_share_and_is_seeded():
    targets = torch.tensor([0] * 50 + [1] * 20 + [2] * 3)
    train_idx, val_idx = stratified_split(targets, 0.2, seed=7)
    assert Counter(targets[val_idx].tolist()) == {0: 10, 1: 4, 2: 1}
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(len(targets)))
    again = stratified_split(targets, 0.2, seed=7)
    assert torch.equal(again[1], val_idx)
    assert not torch.equal(stratified_split(targets, 0.2, seed=8)[1], val_idx)


def test_fingerprint_follows_content_and_labels_not_location(tmp_path):
    root = make_folder(tmp_path / "a", {"shoes": 2, "bags": 2})

    def fingerprint_of(folder: Path) -> str:
        scanned = scan(data.list_examples(str(folder)).examples)
        return data.fingerprint(
            [(e.name, e.label, d) for e, d in zip(scanned.examples, scanned.digests, strict=True)]
        )

    first = fingerprint_of(root)
    shutil.copytree(root, tmp_path / "b")
    assert fingerprint_of(tmp_path / "b") == first
    (tmp_path / "b" / "bags" / "0.png").write_bytes(png_bytes(shade=3))
    assert fingerprint_of(tmp_path / "b") != first
    shutil.move(tmp_path / "a" / "bags" / "1.png", tmp_path / "a" / "shoes" / "9.png")
    assert fingerprint_of(root) != first


def test_image_size_follows_the_data():
    assert choose_image_size([28] * 5, 224) == 64  # Fashion-MNIST: 2x28 rounded up, floor 64
    assert choose_image_size([60, 70, 80], 224) == 160
    assert choose_image_size([480, 600], 224) == 224  # photos: the base's own size


def test_hyperparameters_from_sagemaker_strings():
    hp = Hyperparameters.from_mapping(
        {"mode": "finetune", "epochs": "3", "learning_rate": "0.0005", "image_size": ""}
    )
    assert (hp.mode, hp.epochs, hp.learning_rate, hp.image_size) == ("finetune", 3, 0.0005, None)
    assert hp.total_patience == 3 and Hyperparameters().total_epochs == 60
    with pytest.raises(ConfigError, match="unknown hyperparameters epoch; known: name, mode"):
        Hyperparameters.from_mapping({"epoch": "3"})
    with pytest.raises(ConfigError, match="hyperparameter epochs='three' is not a valid int"):
        Hyperparameters.from_mapping({"epochs": "three"})
    with pytest.raises(
        ConfigError, match="mode must be one of head, finetune, full, got 'linear'; val_fraction"
    ):
        Hyperparameters(mode="linear", val_fraction=1.5)
