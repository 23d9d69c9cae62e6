"""`python -m deploy push` against moto's server: the ECR repository (immutable tags, scan
on push, lifecycle policy), a real OCI image pushed through ECR's layer API and addressed
by digest, and the model store packed, uploaded in checksummed parts and verified."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from deploy import artifacts
from deploy.aws import Aws, AwsOptions
from deploy.entrypoint import MANIFEST_NAME
from deploy.errors import DeployError

from .aws_emulator import moto_client
from .deploy_support import make_oci_layout, push_layout
from .servers import service_env

STORE = Path(service_env()["BENTOML_HOME"])


def test_repository_is_immutable_scanned_and_has_a_lifecycle(pushed_release, moto_endpoint):
    ecr = moto_client(moto_endpoint, "ecr")
    repository = ecr.describe_repositories(repositoryNames=["pais"])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName="pais")["lifecyclePolicyText"])
    selections = [rule["selection"] for rule in policy["rules"]]
    assert {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    } in selections
    assert {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50} in selections


def test_image_is_addressed_by_the_digest_of_its_manifest(pushed_release, moto_endpoint):
    ecr = moto_client(moto_endpoint, "ecr")
    assert pushed_release["image"] == f"{pushed_release['repository']}@{pushed_release['digest']}"
    image = ecr.batch_get_image(repositoryName="pais", imageIds=[{"imageTag": "release-1"}])["images"][0]
    manifest = image["imageManifest"].encode()
    assert pushed_release["digest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    blobs = [layer["digest"] for layer in json.loads(manifest)["layers"]] + [
        json.loads(manifest)["config"]["digest"]
    ]
    available = ecr.batch_check_layer_availability(repositoryName="pais", layerDigests=blobs)["layers"]
    assert {layer["layerDigest"] for layer in available} == set(blobs)


def test_model_store_is_uploaded_verified_and_complete(pushed_release, moto_endpoint):
    s3 = moto_client(moto_endpoint, "s3")
    bucket, key = artifacts.split_s3_uri(pushed_release["model_data"])
    assert key == "pais/release-1/model.tar.gz"
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == pushed_release["sha256"]
    assert head["ChecksumSHA256"]
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == pushed_release["sha256"]
    stored_models = sorted(p.name for p in (STORE / "models").iterdir() if p.name.startswith("pais-"))
    versions = {name: (STORE / "models" / name / "latest").read_text().strip() for name in stored_models}
    assert pushed_release["models"] == versions
    # One PAIS snapshot per task, as the container loads them from /opt/ml/model/<task>/.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = set(archive.getnames())
        weights = archive.extractfile("classification/weights.safetensors").read()
    expected = {
        f"{name.removeprefix('pais-')}/{p.relative_to(STORE / 'models' / name / version).as_posix()}"
        for name, version in versions.items()
        for p in (STORE / "models" / name / version).rglob("*")
        if p.is_file()
    }
    assert names == expected | {MANIFEST_NAME}
    assert "classification/pais-model.json" in names
    classification = STORE / "models" / "pais-classification" / versions["pais-classification"]
    assert weights == (classification / "weights.safetensors").read_bytes()


def test_the_archive_carries_a_digest_manifest_whose_digest_push_records(pushed_release, moto_endpoint):
    s3 = moto_client(moto_endpoint, "s3")
    bucket, key = artifacts.split_s3_uri(pushed_release["model_data"])
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        manifest = archive.extractfile(MANIFEST_NAME).read()
        listed = dict(reversed(line.split("  ", 1)) for line in manifest.decode().splitlines())
        assert set(listed) == set(archive.getnames()) - {MANIFEST_NAME}
        for name, digest in listed.items():
            assert hashlib.sha256(archive.extractfile(name).read()).hexdigest() == digest
    assert hashlib.sha256(manifest).hexdigest() == pushed_release["manifest_sha256"]
    assert (
        s3.head_object(Bucket=bucket, Key=key)["Metadata"]["manifest-sha256"]
        == pushed_release["manifest_sha256"]
    )


def test_the_artifacts_bucket_has_an_unguessable_name_and_is_found_by_its_tags(
    pushed_release, aws_emulator, moto_endpoint, tmp_path
):
    bucket, _ = artifacts.split_s3_uri(pushed_release["model_data"])
    prefix = "pais-artifacts-123456789012-us-east-1-"
    assert bucket.startswith(prefix) and len(bucket) == len(prefix) + artifacts.BUCKET_RANDOM_CHARS
    s3 = moto_client(moto_endpoint, "s3")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["pais:managed-by"] == "python -m deploy"
    # A hand-made bucket named like the tool's is not used, and the output says so.
    s3.create_bucket(Bucket=prefix + "0handmade0")
    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"release-2\n"})
    # another repository: the deploy tests deploy the newest image of `pais`, release-1
    again = push_layout(aws_emulator.url, layout, "release-2", "--repository", "pais-second")
    assert again["model_data"].startswith(f"s3://{bucket}/")
    assert {"kind": "S3 bucket", "name": prefix + "0handmade0"} in [
        {k: item[k] for k in ("kind", "name")} for item in again["left_alone"]
    ]
    assert s3.list_objects_v2(Bucket=prefix + "0handmade0")["KeyCount"] == 0
    # Every S3 call the tool sent that names a bucket said which account must own it.
    assert aws_emulator.s3_unguarded == []


def test_a_bucket_of_another_account_is_refused(pushed_release, aws_emulator, moto_endpoint, tmp_path):
    other = moto_client(moto_endpoint, "s3")
    other.meta.events.register(
        "before-sign.s3.*",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", "210987654321"),
    )
    other.create_bucket(Bucket="pais-squatted-by-someone-else")
    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"release-1\n"})
    error = push_layout(
        aws_emulator.url, layout, "release-1", "--bucket", "pais-squatted-by-someone-else", status=1
    )
    assert "belongs to another account" in error
    assert other.list_objects_v2(Bucket="pais-squatted-by-someone-else")["KeyCount"] == 0


def test_a_repository_the_tool_did_not_make_is_left_alone_unless_adopted(
    pushed_release, aws_emulator, moto_endpoint, tmp_path
):
    ecr = moto_client(moto_endpoint, "ecr")
    ecr.create_repository(repositoryName="pais-handmade", imageTagMutability="MUTABLE")
    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"handmade\n"})
    error = push_layout(
        aws_emulator.url, layout, "h-1", "--repository", "pais-handmade", "--skip-artifacts", status=1
    )
    assert (
        "ECR repository pais-handmade exists and is left alone" in error
        and "--force-adopt pais-handmade" in error
    )
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName="pais-handmade")
    plan = push_layout(
        aws_emulator.url, layout, "h-1", "--repository", "pais-handmade", "--skip-artifacts",
        "--force-adopt", "pais-handmade", "--dry-run",
    )  # fmt: skip
    operations = [call["operation"] for call in plan["calls"]]
    assert operations[:3] == ["TagResource", "PutImageTagMutability", "PutImageScanningConfiguration"]
    assert any("--force-adopt: ECR repository pais-handmade" in note for note in plan["notes"])
    assert (
        ecr.describe_repositories(repositoryNames=["pais-handmade"])["repositories"][0]["imageTagMutability"]
        == "MUTABLE"
    )


def test_pushing_the_same_release_again_uploads_nothing(pushed_release, aws_emulator, tmp_path):
    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"release-1\n"})
    again = push_layout(aws_emulator.url, layout, "release-1")
    assert again["digest"] == pushed_release["digest"]
    assert again["uploaded"] is False


def test_an_immutable_tag_refuses_another_image(pushed_release, aws_emulator, tmp_path):
    other = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"something else\n"})
    error = push_layout(aws_emulator.url, other, "release-1", "--skip-artifacts", status=1)
    assert "already holds another image" in error


def test_multipart_upload_checks_every_part_and_the_whole(moto_endpoint, tmp_path):
    aws = Aws(AwsOptions(region="us-east-1", endpoint_url=moto_endpoint, max_attempts=1))
    moto_client(moto_endpoint, "s3").create_bucket(Bucket="pais-multipart-test")
    packed = artifacts.pack_model_store(STORE, tmp_path)
    assert packed.size > 2 * artifacts.MIN_PART  # several parts
    uploaded = artifacts.upload_verified(
        aws, packed, "pais-multipart-test", "m/model.tar.gz", artifacts.MIN_PART, {}
    )
    assert uploaded["uploaded"] is True
    attributes = moto_client(moto_endpoint, "s3").get_object_attributes(
        Bucket="pais-multipart-test", Key="m/model.tar.gz", ObjectAttributes=["Checksum", "ETag"]
    )
    assert attributes["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert attributes["ETag"].endswith(f"-{-(-packed.size // artifacts.MIN_PART)}")

    # Bytes changed behind the tool's back no longer match what it uploaded.
    moto_client(moto_endpoint, "s3").put_object(
        Bucket="pais-multipart-test",
        Key="m/model.tar.gz",
        Body=b"not the archive",
        ChecksumAlgorithm="SHA256",
    )
    with pytest.raises(DeployError, match="does not match"):
        artifacts.verify_upload(aws, packed, "pais-multipart-test", "m/model.tar.gz", artifacts.MIN_PART)


def test_packing_is_deterministic(tmp_path):
    first = artifacts.pack_model_store(STORE, tmp_path / "a")
    second = artifacts.pack_model_store(STORE, tmp_path / "b")
    assert first.sha256 == second.sha256
    with pytest.raises(DeployError, match="not in the store"):
        artifacts.pack_model_store(STORE, tmp_path / "c", ["pais-no-such-task"])


def test_any_stored_model_can_ship_as_a_tasks_artifacts(tmp_path):
    """`--models recommendation=my-recs[:version]`: a model trained and stored under its own
    name lands in the archive as recommendation/, where the container looks for it."""
    import shutil

    source = STORE / "models" / "pais-recommendation"
    version = (source / "latest").read_text().strip()
    store = tmp_path / "store"
    mine = store / "models" / "my-recs"
    shutil.copytree(source / version, mine / "v1")
    (mine / "latest").write_text("v1")
    shutil.copytree(source / version, mine / "v0")

    for spec in ("recommendation=my-recs", "recommendation=my-recs:v0"):
        packed = artifacts.pack_model_store(store, tmp_path / spec.replace(":", "-"), [spec])
        with tarfile.open(packed.path) as archive:
            names = archive.getnames()
        assert "recommendation/pais-model.json" in names and all(
            n.startswith("recommendation/") for n in names if n != MANIFEST_NAME
        )
        assert packed.models == {"my-recs": spec.partition(":")[2] or "v1"}
    refusals = {
        "recommendation=my-recs:v9": "my-recs:v9 is not in the store",
        "recommendation=no-such": "'no-such' is not in the store",
        "my-recs": "give pais-<task>, or <task>=<store name>",
        "=my-recs": "give <task>=<store name>",
    }
    for spec, message in refusals.items():
        with pytest.raises(DeployError, match=message):
            artifacts.pack_model_store(store, tmp_path / "refused", [spec])
    with pytest.raises(DeployError, match="task 'recommendation' is given twice"):
        artifacts.pack_model_store(
            store, tmp_path / "twice", ["recommendation=my-recs", "recommendation=my-recs:v0"]
        )
