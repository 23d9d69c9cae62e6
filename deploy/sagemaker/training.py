"""SageMaker training jobs: a custom image classifier trained on a user's labelled images in
S3 by the PAIS image itself, then stored in the local BentoML store for serving.

`python -m deploy sagemaker train --data s3://bucket/prefix/ --name NAME`:

1. checks what it can before an instance is paid for: NAME (a SageMaker and a BentoML
   name), the hyperparameters (models.finetune's own check), the instance type, objects
   under the data prefix;
2. the image `push` stored (by digest, as `sagemaker deploy` finds it), the job's role
   `pais-<NAME>-training` (made with --create-role; least privilege: pull the repository,
   read the data and the job's own prefix, write the job's own prefix, its logs), and the
   tool's artifacts bucket;
3. CreateTrainingJob `<NAME>-train-<suffix>`, tagged as the deployment NAME's: the image's
   entrypoint runs `train` (deploy/entrypoint.py has the container's side of the contract)
   on the channel `training` (the data prefix, File mode), with the hyperparameters as
   strings. The model goes to `s3://<bucket>/training/<NAME>/<job>/output/model.tar.gz`;
   the checkpoints to `s3://<bucket>/training/<NAME>/<job>/checkpoints/`, which SageMaker
   keeps in step with /opt/ml/checkpoints and copies back when it restarts the job (a Spot
   job after an interruption), so the job continues from its last epoch;
4. waits, printing each change of status and the job's log lines (CloudWatch Logs);
5. on success downloads model.tar.gz, checks that it holds a PAIS classification snapshot
   and, unless --no-store, stores it as a new version of NAME in the local BentoML store
   (models.finetune.store: what `python -m models.finetune` records); on failure reports
   the job's FailureReason (the container's /opt/ml/output/failure) and exits 1.

The stored model is served by the same tool: `python -m deploy push --custom-model NAME`
packs it into the model artifacts as custom/NAME/, and a `sagemaker deploy` or
`ec2 deploy` of that release serves it as `model=NAME`.
"""

from __future__ import annotations

import json
import os
import struct
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .. import artifacts, iam, logs
from ..aws import Aws, error_code, is_not_found
from ..ecr import ImageRef
from ..entrypoint import SNAPSHOT_MANIFEST, TRAINING_CHANNEL
from ..errors import DeployError
from ..naming import TRAIN_INFIX, is_versioned, key_value_tags, resource_tags, tag_dict, training_job_name
from ..ownership import Ownership, why_not_ours
from ..plan import enum_values
from ..waiting import wait_until

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
OUTPUT_FOLDER = "training"
DEFAULT_MAX_RUN_S = 24 * 3600  # SageMaker's own default
TASK = "classification"
WEIGHTS_FILE = "weights.safetensors"  # what models/ writes beside the manifest (models/loading.py)


def role_name(deployment: str) -> str:
    """The training job's role: not the endpoint's (`pais-<name>-sagemaker`), whose policy
    follows the artifacts an endpoint serves and is rewritten by every deploy."""
    return f"pais-{deployment}-training"


def check_model_name(name: str) -> str:
    """NAME names the job (SageMaker) and the stored model (BentoML: lowercase)."""
    if name != name.lower():
        raise DeployError(
            f"--name {name!r}: the trained model is stored under this name, and BentoML model names "
            "are lowercase: use lowercase letters, digits and single hyphens"
        )
    return name


def check_hyperparameters(name: str, given: list[str]) -> dict[str, str]:
    """`--hyperparameter KEY=VALUE`, checked by models.finetune as the container will (a
    typo fails here, not on a paid instance), as the strings SageMaker passes on. `name`
    is the model's (--name)."""
    from models.finetune.config import ConfigError, Hyperparameters  # no torch: a dataclass

    values: dict[str, str] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"--hyperparameter {item!r} is not KEY=VALUE")
        if key == "name":
            raise DeployError("--hyperparameter name: the model's name is --name")
        values[key] = value
    values = {"name": name, **values}
    try:
        Hyperparameters.from_mapping(values)
    except ConfigError as error:
        raise DeployError(f"--hyperparameter: {error}") from None
    return values


def check_instance_type(instance_type: str) -> str:
    if instance_type not in enum_values("sagemaker", "TrainingInstanceType"):
        raise DeployError(
            f"--instance-type {instance_type!r} is not a SageMaker training instance type "
            "(e.g. ml.g5.xlarge, ml.g6.xlarge, ml.m5.xlarge)"
        )
    return instance_type


def check_data(aws: Aws, uri: str) -> str:
    """The data prefix, as `s3://bucket/prefix/`, once it is known to hold objects."""
    bucket, prefix = artifacts.split_s3_uri(uri if uri.endswith("/") else uri + "/")
    try:
        listed = aws.read("s3", "ListObjectsV2", Bucket=bucket, Prefix=prefix, MaxKeys=2)
    except ClientError as error:
        if error_code(error) in ("403", "AccessDenied"):
            raise DeployError(
                f"--data {uri}: S3 refused to list it (403): the bucket belongs to another account, or "
                "this one may not read it (the tool sends ExpectedBucketOwner on every S3 call)"
            ) from None
        if is_not_found(error):
            raise DeployError(f"--data {uri}: no such bucket") from None
        raise
    if not listed.get("KeyCount"):
        raise DeployError(
            f"--data {uri}: no objects under it; upload the images as <prefix>/<label>/<image> first"
        )
    return f"s3://{bucket}/{prefix}"


def output_uri(bucket: str, name: str) -> str:
    return f"s3://{bucket}/{OUTPUT_FOLDER}/{name}/"


def checkpoint_uri(bucket: str, name: str, job: str) -> str:
    return f"{output_uri(bucket, name)}{job}/checkpoints/"


def ensure_role(
    aws: Aws,
    owner: Ownership,
    name: str,
    repository_arn: str,
    data: str,
    output: str,
    tags: dict[str, str],
    create: bool,
) -> str:
    """The tool's training role for NAME, made (--create-role) or brought into line."""
    # SageMaker lists and reads the data prefix (File mode), reads and writes the job's
    # checkpoints, writes its model: nothing else in either bucket.
    policy = iam.sagemaker_policy(aws, repository_arn, [data, output], [output], [data, output])
    return iam.ensure_sagemaker_role(aws, owner, role_name(name), name, policy, tags, create, "training")


@dataclass
class TrainingSpec:
    name: str
    data: str  # s3://bucket/prefix/
    image: ImageRef
    role_arn: str
    bucket: str
    instance_type: str = "ml.g5.xlarge"
    hyperparameters: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    spot: bool = False
    max_run_s: int = DEFAULT_MAX_RUN_S
    max_wait_s: int | None = None  # Spot: how long to wait for capacity and run, in all
    volume_gb: int = 30


def job_params(spec: TrainingSpec, job: str) -> dict[str, Any]:
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.max_run_s}
    if spec.spot:
        # SageMaker requires a Spot job's total wait to cover its run time.
        stopping["MaxWaitTimeInSeconds"] = max(spec.max_wait_s or 2 * spec.max_run_s, spec.max_run_s)
    params: dict[str, Any] = {
        "TrainingJobName": job,
        "AlgorithmSpecification": {"TrainingImage": spec.image.uri, "TrainingInputMode": "File"},
        "RoleArn": spec.role_arn,
        "HyperParameters": spec.hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": TRAINING_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": spec.data,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri(spec.bucket, spec.name)},
        "CheckpointConfig": {"S3Uri": checkpoint_uri(spec.bucket, spec.name, job)},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": spec.volume_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spec.spot,
        "Tags": key_value_tags(resource_tags(spec.name, spec.tags)),
    }
    if spec.env:
        params["Environment"] = spec.env
    return params


def start(aws: Aws, spec: TrainingSpec) -> dict[str, Any]:
    job = training_job_name(spec.name)
    aws.write("sagemaker", "CreateTrainingJob", **job_params(spec, job))
    return {
        "name": spec.name,
        "job": job,
        "image": spec.image.uri,
        "data": spec.data,
        "instance_type": spec.instance_type,
        "spot": spec.spot,
        "output": output_uri(spec.bucket, spec.name),
        "checkpoints": checkpoint_uri(spec.bucket, spec.name, job),
    }


def find_job(aws: Aws, name: str, job: str) -> dict[str, Any]:
    """An existing job of NAME made by the tool (--job): described, or an error."""
    if not is_versioned(job, name, TRAIN_INFIX):
        raise DeployError(
            f"--job {job}: not a training job of {name} (those are named {name}{TRAIN_INFIX}...)"
        )
    found = aws.find("sagemaker", "DescribeTrainingJob", TrainingJobName=job)
    if found is None:
        raise DeployError(f"no training job {job}")
    tags = tag_dict(aws.read("sagemaker", "ListTags", ResourceArn=found["TrainingJobArn"])["Tags"])
    reason = why_not_ours(tags, name)
    if reason is not None:
        raise DeployError(f"training job {job} is not this tool's for {name}: {reason}")
    return found


def wait(aws: Aws, name: str, job: str, timeout_s: float) -> dict[str, Any]:
    """Wait for the job to end, printing status changes and its log lines; the final
    description, or a DeployError with the job's FailureReason."""
    seen: set[str] = set()
    since = [0]
    described: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        # Described first, then the log read: a job found ended has written all its lines.
        described.update(aws.read("sagemaker", "DescribeTrainingJob", TrainingJobName=job))
        _print_new_lines(aws, job, seen, since)
        status = described["TrainingJobStatus"]
        if status in ("Failed", "Stopped"):
            raise DeployError(
                f"training job {job} {status.lower()}: {described.get('FailureReason', 'no reason given')}; "
                f"its log: `python -m deploy sagemaker logs {name} --job {job}`"
            )
        secondary = described.get("SecondaryStatus")
        return (
            status == "Completed",
            f"{status} ({secondary})" if secondary and secondary != status else status,
        )

    wait_until(aws, f"training job {job}", check, timeout_s)
    return described


def _print_new_lines(aws: Aws, job: str, seen: set[str], since: list[int]) -> None:
    try:
        events = logs.read_events(aws, LOG_GROUP, since[0], f"{job}/", seen)
    except ClientError as error:
        if is_not_found(error):
            return  # no log group or stream yet: the instance is still starting
        raise
    for event in events:
        seen.add(event["eventId"])
        since[0] = max(since[0], event["timestamp"])
        aws.progress(f"  | {event['message'].rstrip()}")


def download_snapshot(aws: Aws, uri: str, target: Path) -> dict[str, Any]:
    """The job's model.tar.gz unpacked into `target`, checked to be a PAIS classification
    snapshot; returns its manifest."""
    bucket, key = artifacts.split_s3_uri(uri)
    archive = target.parent / "model.tar.gz"
    body = aws.read("s3", "GetObject", Bucket=bucket, Key=key)["Body"]
    with archive.open("wb") as handle:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            handle.write(chunk)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")  # no links or paths out of `target`
    except (tarfile.TarError, OSError) as error:
        raise DeployError(f"{uri} is not a readable .tar.gz: {error}") from None
    return check_snapshot(target, uri)


def check_snapshot(folder: Path, origin: str) -> dict[str, Any]:
    """The manifest of a PAIS classification snapshot in `folder`; DeployError saying what
    is wrong otherwise. Reads the weights' header (safetensors), not the weights."""
    manifest_path = folder / SNAPSHOT_MANIFEST
    if not manifest_path.is_file():
        raise DeployError(f"{origin} holds no PAIS snapshot: no {SNAPSHOT_MANIFEST} at its root")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as error:
        raise DeployError(f"{origin}: {SNAPSHOT_MANIFEST} is not JSON: {error}") from None
    problems = []
    if manifest.get("task") != TASK:
        problems.append(f"its task is {manifest.get('task')!r}, not {TASK!r}")
    labels = manifest.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        problems.append("it names no list of two or more labels")
    info = manifest.get("info")
    if not isinstance(info, dict) or not {"task", "name", "source", "version"} <= set(info):
        problems.append("it has no model card (info)")
    if not _is_safetensors(folder / WEIGHTS_FILE):
        problems.append(f"{WEIGHTS_FILE} is missing or not a safetensors file")
    if problems:
        raise DeployError(f"{origin} is not a PAIS classification snapshot: " + "; ".join(problems))
    return manifest


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with its header's length (8 bytes, little-endian) and a
    JSON header naming at least one tensor."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            return False
        (length,) = struct.unpack("<Q", head)
        if not 2 <= length <= min(100 << 20, path.stat().st_size - 8):
            return False
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return False
    return isinstance(header, dict) and any(key != "__metadata__" for key in header)


def store(name: str, snapshot: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """A new version of NAME in the local BentoML store ($BENTOML_HOME, else ./.bentoml as
    `push` reads it), with the metadata `python -m models.finetune` records."""
    # Only takes effect before bentoml is first imported, as in the CLI's own process.
    os.environ.setdefault("BENTOML_HOME", str(artifacts.default_store()))
    import bentoml

    from models.finetune.store import store_snapshot
    from models.info import ModelInfo

    tag = store_snapshot(name, snapshot, ModelInfo.from_dict(manifest["info"]))
    return {"stored": tag, "store": str(Path(bentoml.models.get(tag).path).parents[2])}


def finish(aws: Aws, name: str, described: dict[str, Any], keep: bool) -> dict[str, Any]:
    """After a completed job: its model fetched, checked, and (keep) stored."""
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    result: dict[str, Any] = {"model_data": uri}
    if described.get("BillableTimeInSeconds") is not None:
        result["billable_seconds"] = described["BillableTimeInSeconds"]
    with tempfile.TemporaryDirectory(prefix="pais-trained-") as folder:
        snapshot = Path(folder) / "model"
        manifest = download_snapshot(aws, uri, snapshot)
        details = manifest["info"].get("details", {})
        result["labels"] = manifest["labels"]
        accuracy = details.get("evaluation", {}).get("validation", {}).get("accuracy")
        if accuracy is not None:
            result["validation_accuracy"] = accuracy
        if keep:
            result.update(store(name, snapshot, manifest))
            result["serve"] = (
                f"python -m deploy push --custom-model {name}, then `sagemaker deploy` or `ec2 deploy` "
                f"of that release: requests with model={name}"
            )
    return result
