"""Small local stand-ins for remote model sources: a Hugging Face hub-cache entry and a
snapshot archive on (moto's) S3, built the way the real ones are laid out."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

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
