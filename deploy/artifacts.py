"""Model artifacts: the BentoML model store packed as `model.tar.gz` and put in S3.

The archive holds one PAIS snapshot directory per task, `<task>/pais-model.json` and the
weights beside it (the latest stored version of each `pais-<task>` model, or the stored
model named for a task with `<task>=<name>[:<version>]`), which is what
the container loads from /opt/ml/model/<task>/ after SageMaker (or the EC2 user data)
extracts it (PAIS_MODEL_DIR); custom classifiers (`--custom-model NAME[:<version>]`, trained
with `python -m models.finetune` or `sagemaker train`) as `custom/<NAME>/`, which the server
serves as `model=NAME` beside the task's model; and at its root a digest manifest
(`pais-artifacts.sha256`, every file's sha256, custom models' too) whose own sha256 the
deploy tool hands the container, which checks the files against it before serving
(deploy/entrypoint.py). It is packed deterministically (sorted entries, fixed times and
owners, gzip without a time stamp), so the same models give the same bytes and the same
sha256, and a second push uploads nothing.

`push` stores it as `<repository>/<tag>/model.tar.gz` (release_key) in the tool's artifacts
bucket: `pais-artifacts-<account>-<region>-<random>`, found again by listing the account's
own buckets (ListBuckets shows no one else's) for one tagged as the tool's, so that no one
can make the bucket first under a name the tool would guess. Every S3 call passes
ExpectedBucketOwner (deploy/aws.py), so a bucket of another account is refused, not used.

The upload is a multipart upload with a SHA-256 checksum on every part (S3 refuses a part
whose bytes do not match) and is verified afterwards: the object's composite checksum, as
S3 reports it, must equal the one computed here from the same parts.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import secrets
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from .aws import Aws, error_code, is_not_found
from .entrypoint import MANIFEST_NAME, SNAPSHOT_MANIFEST, file_digest, manifest_text
from .errors import DeployError
from .naming import key_value_tags
from .ownership import S3_BUCKET, Ownership, made_by_tool

MIB = 1024 * 1024
MIN_PART = 5 * MIB
MAX_PARTS = 10_000
STORE_PREFIX = "pais-"
RELEASE_FILE = "model.tar.gz"
# Where custom models go in the artifacts: the server reads PAIS_MODEL_DIR/custom/<NAME>/.
CUSTOM_FOLDER = "custom"
CUSTOM_TASKS = ("classification",)
BUCKET_PREFIX = "pais-artifacts-"
_BUCKET_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
BUCKET_RANDOM_CHARS = 10  # 36^10 names: not worth guessing
# The object metadata `push` records: the archive's sha256 (checked by EC2 user data) and
# its digest manifest's (checked by the container at start-up).
SHA256_METADATA = "sha256"
MANIFEST_METADATA = "manifest-sha256"


@dataclass(frozen=True)
class PackedModels:
    path: Path
    sha256: str
    size: int
    models: dict[str, str]  # store name (custom/<NAME> for a custom model) -> version
    manifest_sha256: str  # of the digest manifest inside, which the container checks


def default_store() -> Path:
    return Path(os.environ.get("BENTOML_HOME") or Path.cwd() / ".bentoml")


def parse_model_spec(spec: str) -> tuple[str, str, str | None]:
    """`pais-<task>` or `<task>=<store name>[:<version>]` -> (task, store name, version):
    the second form ships any stored model as a task's artifacts, e.g. a recommender
    trained with `python -m models.recommendation train --name my-recs`."""
    task, sep, reference = spec.partition("=")
    if not sep:
        if not spec.startswith(STORE_PREFIX):
            raise DeployError(f"model {spec!r}: give pais-<task>, or <task>=<store name>[:<version>]")
        return spec.removeprefix(STORE_PREFIX), spec, None
    name, _, version = reference.partition(":")
    if not task or not name:
        raise DeployError(f"model {spec!r}: give <task>=<store name>[:<version>]")
    return task, name, version or None


def pack_model_store(
    store: Path, out_dir: Path, names: list[str] | None = None, custom: list[str] | None = None
) -> PackedModels:
    """Pack the chosen models (default: every `pais-*` model, latest version) as
    `<task>/...`, see parse_model_spec for how a model is named and given its task, and the
    `custom` classifiers (`NAME[:<version>]`) as `custom/<NAME>/...`."""
    models_dir = store / "models"
    if not models_dir.is_dir():
        raise DeployError(f"no BentoML model store at {store} (run `make models`, or pass --model-store)")
    chosen = names or sorted(p.name for p in models_dir.iterdir() if p.name.startswith(STORE_PREFIX))
    if not chosen:
        raise DeployError(f"the model store {store} holds no pais-* models: run `make models` first")
    versions: dict[str, str] = {}
    tasks: dict[str, str] = {}  # task -> the spec that supplies it
    entries: list[tuple[Path, str]] = []  # (file, name in the archive)
    for spec in chosen:
        task, name, version = parse_model_spec(spec)
        if task in tasks:
            raise DeployError(f"task {task!r} is given twice: {tasks[task]!r} and {spec!r}")
        tasks[task] = spec
        versions[name], version_dir = _stored_version(store, name, version)
        entries += _files(version_dir, task)
    for spec in custom or []:
        name, _, version = spec.partition(":")
        folder = f"{CUSTOM_FOLDER}/{name}"
        if not name or folder in versions:
            raise DeployError(f"--custom-model {spec!r}: give NAME[:<version>], each name once")
        versions[folder], version_dir = _stored_version(store, name, version or None)
        _check_custom(version_dir, f"{name}:{versions[folder]}")
        entries += _files(version_dir, folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RELEASE_FILE
    manifest = manifest_text({arcname: file_digest(file) for file, arcname in entries}).encode()
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for file, arcname in entries:
            info = tar.gettarinfo(str(file), arcname=arcname)
            with file.open("rb") as handle:
                tar.addfile(_fixed(info), handle)
        tar.addfile(_fixed(tarfile.TarInfo(MANIFEST_NAME), len(manifest)), io.BytesIO(manifest))
    return PackedModels(
        path, file_digest(path), path.stat().st_size, versions, hashlib.sha256(manifest).hexdigest()
    )


def _stored_version(store: Path, name: str, version: str | None) -> tuple[str, Path]:
    """(version, its directory) of a stored model; `version` None: the latest."""
    latest = store / "models" / name / "latest"
    if version is None and not latest.is_file():
        raise DeployError(f"model {name!r} is not in the store {store} (`bentoml models list` shows it)")
    version = version or latest.read_text().strip()
    version_dir = store / "models" / name / version
    if not version_dir.is_dir():
        raise DeployError(f"model {name}:{version} is not in the store {store}")
    return version, version_dir


def _files(version_dir: Path, folder: str) -> list[tuple[Path, str]]:
    """Every file of a stored version, as (file, its name in the archive under `folder`)."""
    return [
        (file, f"{folder}/{file.relative_to(version_dir).as_posix()}")
        for file in sorted(version_dir.rglob("*"))
        if file.is_file()
    ]


def _check_custom(version_dir: Path, tag: str) -> None:
    """A custom model must be what the server reads from custom/<NAME>/: a PAIS snapshot of
    a task that serves custom models (classification: the server's ModelShelf)."""
    manifest = version_dir / SNAPSHOT_MANIFEST
    task = json.loads(manifest.read_text()).get("task") if manifest.is_file() else None
    if task not in CUSTOM_TASKS:
        raise DeployError(
            f"--custom-model {tag}: not a custom classifier (a PAIS snapshot of task "
            f"{' or '.join(CUSTOM_TASKS)}; this one's task: {task or 'none, no ' + SNAPSHOT_MANIFEST}); "
            "train one with `python -m models.finetune` or `python -m deploy sagemaker train`"
        )


def _fixed(info: tarfile.TarInfo, size: int | None = None) -> tarfile.TarInfo:
    """An entry without times, owners or modes of this machine: the same bytes each time."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode = 0o644
    if size is not None:
        info.size = size
    return info


def release_key(repository: str, tag: str) -> str:
    return f"{repository}/{tag}/{RELEASE_FILE}"


def is_release_key(key: str) -> bool:
    """Whether `key` has the layout `push` writes: <repository>/<tag>/model.tar.gz."""
    parts = key.split("/")
    return len(parts) == 3 and all(parts) and parts[2] == RELEASE_FILE


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise DeployError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def artifact_prefix(uri: str, repository: str) -> str:
    """What a role may read for these artifacts: every release `push` stores for the
    repository (`s3://bucket/<repository>/`), so the role outlives one release; for
    artifacts stored elsewhere, their own folder."""
    bucket, key = split_s3_uri(uri)
    if is_release_key(key) and key.startswith(f"{repository}/"):
        return f"s3://{bucket}/{repository}/"
    return f"s3://{bucket}/{key.rsplit('/', 1)[0]}/" if "/" in key else uri


def bucket_prefix(aws: Aws) -> str:
    return f"{BUCKET_PREFIX}{aws.account_id}-{aws.region}-"


def find_default_bucket(aws: Aws, owner: Ownership | None = None) -> str | None:
    """The tool's artifacts bucket in this account and region, or None: among the buckets
    ListBuckets shows (the caller's own), the oldest one named `bucket_prefix` and tagged
    as made by the tool. One named so but untagged is left alone (and named in `owner`)."""
    prefix = bucket_prefix(aws)
    listed = aws.read("s3", "ListBuckets", Prefix=prefix).get("Buckets", [])
    mine = []
    for bucket in sorted(listed, key=lambda b: (b["CreationDate"], b["Name"])):
        if not bucket["Name"].startswith(prefix):
            continue
        if made_by_tool(S3_BUCKET.read(aws, bucket["Name"]) or {}):
            mine.append(bucket["Name"])
        elif owner is not None:
            owner.left_alone.append(
                {
                    "kind": S3_BUCKET.label,
                    "name": bucket["Name"],
                    "reason": "named like the tool's artifacts bucket but not tagged as made by it: not used",
                }
            )
    return mine[0] if mine else None


def new_bucket_name(aws: Aws) -> str:
    """`pais-artifacts-<account>-<region>-<10 random characters>` (at most 54 characters)."""
    return bucket_prefix(aws) + "".join(secrets.choice(_BUCKET_ALPHABET) for _ in range(BUCKET_RANDOM_CHARS))


def ensure_bucket(aws: Aws, bucket: str | None, tags: dict[str, str], owner: Ownership) -> str:
    """The bucket to push to: `bucket` (one of this account's, or created), else the tool's
    own (found, or created with a name no one can guess). Returns its name."""
    if bucket is None:
        found = find_default_bucket(aws, owner)
        if found is not None:
            return found
        bucket = new_bucket_name(aws)
    else:
        try:
            aws.read("s3", "HeadBucket", Bucket=bucket)
            return bucket
        except ClientError as error:
            if error_code(error) in ("403", "AccessDenied"):
                raise DeployError(
                    f"bucket {bucket} belongs to another account, or this one may not read it (S3 "
                    f"answered 403 to ExpectedBucketOwner={aws.account_id}): pass --bucket a bucket of "
                    "this account, or leave --bucket out to use the tool's own"
                ) from None
            if not is_not_found(error):
                raise
    params: dict[str, Any] = {"Bucket": bucket}
    if aws.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    aws.write("s3", "CreateBucket", **params)
    aws.write(
        "s3",
        "PutPublicAccessBlock",
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws.write("s3", "PutBucketTagging", Bucket=bucket, Tagging={"TagSet": key_value_tags(tags)})
    return bucket


def part_size_for(size: int, wanted: int) -> int:
    """`wanted` (at least S3's 5 MiB minimum), raised when the file would need >10,000 parts."""
    part = max(wanted, MIN_PART)
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return part


def composite_sha256(path: Path, part_size: int) -> str:
    """S3's checksum of a multipart object: sha256 over the parts' sha256 digests, base64."""
    size = path.stat().st_size
    digests = b"".join(
        hashlib.sha256(_read(path, offset, length)).digest()
        for _, offset, length in part_ranges(size, part_size)
    )
    return base64.b64encode(hashlib.sha256(digests).digest()).decode()


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) for each part; one empty part for an empty file."""
    return [
        (n, offset, min(part_size, size - offset)) for n, offset in enumerate(range(0, size, part_size), 1)
    ] or [(1, 0, 0)]


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def existing_sha256(aws: Aws, bucket: str, key: str) -> str | None:
    try:
        return aws.read("s3", "HeadObject", Bucket=bucket, Key=key)["Metadata"].get(SHA256_METADATA)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def upload_verified(
    aws: Aws, packed: PackedModels, bucket: str, key: str, part_size: int, tags: dict[str, str]
) -> dict[str, Any]:
    """Upload unless an object with the same sha256 is there; verify what S3 stored."""
    uri = f"s3://{bucket}/{key}"
    if existing_sha256(aws, bucket, key) == packed.sha256:
        return {"uri": uri, "uploaded": False, "sha256": packed.sha256, "size": packed.size}
    part_size = part_size_for(packed.size, part_size)
    upload = aws.write(
        "s3",
        "CreateMultipartUpload",
        Bucket=bucket,
        Key=key,
        ContentType="application/gzip",
        ChecksumAlgorithm="SHA256",
        Metadata={SHA256_METADATA: packed.sha256, MANIFEST_METADATA: packed.manifest_sha256},
        Tagging=urlencode(tags),
    )
    try:
        parts = _upload_parts(aws, packed.path, bucket, key, upload["UploadId"], part_size)
        aws.write(
            "s3",
            "CompleteMultipartUpload",
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        if not aws.dry_run:
            aws.write("s3", "AbortMultipartUpload", Bucket=bucket, Key=key, UploadId=upload["UploadId"])
        raise
    if not aws.dry_run:
        verify_upload(aws, packed, bucket, key, part_size)
    return {
        "uri": uri,
        "uploaded": True,
        "sha256": packed.sha256,
        "size": packed.size,
        "part_size": part_size,
    }


def _upload_parts(
    aws: Aws, path: Path, bucket: str, key: str, upload_id: Any, part_size: int
) -> list[dict[str, Any]]:
    def send(number: int, offset: int, length: int) -> dict[str, Any]:
        chunk = _read(path, offset, length)
        checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        answer = aws.write(
            "s3",
            "UploadPart",
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=io.BytesIO(chunk) if not aws.dry_run else chunk,
            ChecksumSHA256=checksum,
        )
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

    parts = part_ranges(path.stat().st_size, part_size)
    if aws.dry_run:
        return [send(*part) for part in parts]
    # Parts go up side by side (boto3 clients are thread-safe); each worker reads its own.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda part: send(*part), parts))


def verify_upload(aws: Aws, packed: PackedModels, bucket: str, key: str, part_size: int) -> None:
    """S3's size and composite SHA-256 of the object must equal the local file's."""
    head = aws.read("s3", "HeadObject", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored = (head.get("ChecksumSHA256") or "").split("-", 1)[0]
    expected = composite_sha256(packed.path, part_size)
    if head["ContentLength"] != packed.size or stored != expected:
        raise DeployError(
            f"s3://{bucket}/{key} does not match {packed.path}: S3 reports {head['ContentLength']} bytes, "
            f"checksum {stored or 'none'}; expected {packed.size} bytes, checksum {expected}"
        )
