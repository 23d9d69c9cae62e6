"""Small local stand-ins for remote model sources: a Hugging Face hub-cache entry and a
snapshot archive on (moto's) S3, built the way the real ones are laid out."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch

CARD = "---\nlicense: apache-2.0\n---\n# tiny\n"


def hub_cache_entry(monkeypatch: pytest.MonkeyPatch, hub: Path, repo_id: str, commit: str) -> Path:
    """Point huggingface_hub at the cache `hub` and make `repo_id`'s main ref `commit`;
    returns the snapshot folder to save the model files into."""
    import huggingface_hub.constants

    repo = hub / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    return repo / "snapshots" / commit


def snapshot_on_s3(snapshot: Path, bucket: str, key: str) -> str:
    """`snapshot` (a saved PAIS model folder) as a .tar.gz object; returns its s3:// URI.
    Needs the `moto_endpoint` fixture (boto3 then talks to moto)."""
    import boto3

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(snapshot, arcname=".")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=archive.getvalue())
    return f"s3://{bucket}/{key}"


def offline_torch_hub(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """An empty torch hub cache under `root` (TORCH_HOME); downloads would go to a closed
    port on 127.0.0.1, never to the internet. Returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(root))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    checkpoints = root / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


def place_checkpoint(checkpoints: Path, weights: object, model: torch.nn.Module) -> None:
    """`model`'s state_dict where torchvision looks for `weights` (a weights enum member)
    before downloading them."""
    torch.save(model.state_dict(), checkpoints / Path(weights.url).name)  # type: ignore[attr-defined]
