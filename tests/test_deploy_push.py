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
    assert names == expected
    assert "classification/pais-model.json" in names
    classification = STORE / "models" / "pais-classification" / versions["pais-classification"]
    assert weights == (classification / "weights.safetensors").read_bytes()


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
            n.startswith("recommendation/") for n in names
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
