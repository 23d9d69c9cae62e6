"""`python -m deploy`: push the image and models, deploy to SageMaker or EC2, operate, tear
down, estimate cost. `python -m deploy <command> --help` documents each command.

Common options work before or after the command: --region, --profile, --endpoint-url
(another AWS endpoint, e.g. a local emulator), --dry-run (print the planned AWS calls,
validated against botocore's service model, and change nothing), --wait/--no-wait,
--timeout, --tags, --output text|json, --force-adopt NAME.

The tool changes and deletes only what it made for the deployment at hand (its tags say
so); anything else with an expected name is left alone and named in the output, unless
`--force-adopt NAME` hands it over (deploy/ownership.py). Secrets go with `--secret`, never
`--env` (deploy/secret_store.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from botocore.exceptions import ClientError

from . import artifacts, cost, ecr, iam, image, logs, secret_store
from .aws import Aws, AwsOptions, is_not_found
from .ec2 import ami as ec2_ami
from .ec2 import instance as ec2_instance
from .entrypoint import ARTIFACTS_SHA256, SETTING_API_KEYS, SETTING_DEVICE
from .errors import DeployError
from .naming import TRAIN_INFIX, check_name, is_versioned, parse_env, parse_tags, resource_tags, unique_suffix
from .ownership import Ownership
from .sagemaker import batch as sm_batch
from .sagemaker import endpoint as sm_endpoint
from .sagemaker import invoke as sm_invoke
from .sagemaker import lifecycle as sm_lifecycle
from .sagemaker import training as sm_training
from .sagemaker.autoscale import Autoscale

DEFAULT_REPOSITORY = "pais"
DEFAULT_TIMEOUT_S = 1800


def _common(parser: argparse.ArgumentParser, nested: bool) -> None:
    """Options every command takes. On subcommands their defaults are suppressed, so that a
    value given before the command is not reset by the subparser."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if nested else value

    group = parser.add_argument_group("AWS and output")
    group.add_argument("--region", default=default(None), help="AWS region (default: profile / environment)")
    group.add_argument("--profile", default=default(None), help="AWS profile from ~/.aws/config")
    group.add_argument("--endpoint-url", default=default(None), help="send every AWS call here (e.g. moto)")
    group.add_argument(
        "--dry-run",
        action="store_true",
        default=default(False),
        help="print the planned AWS calls; change nothing",
    )
    group.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=default(True),
        help="wait until AWS has finished (default: wait)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT_S),
        help="longest wait, seconds (default 1800)",
    )
    group.add_argument(
        "--tags", action="append", default=default([]), help="KEY=VALUE[,KEY=VALUE] on every resource"
    )
    group.add_argument("--output", choices=("text", "json"), default=default("text"))
    group.add_argument(
        "--poll-interval", type=float, default=default(10.0), help="seconds between status checks"
    )
    group.add_argument("--max-attempts", type=int, default=default(5), help="attempts per AWS call (retries)")
    group.add_argument(
        "--force-adopt",
        action="append",
        default=default([]),
        metavar="NAME",
        help="take over the resource called NAME (or with that id) although the tool did not make it "
        "for this deployment: it is tagged as the tool's, then changed or deleted (repeatable; a "
        "dry run shows what would change)",
    )


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", default=DEFAULT_REPOSITORY, help="ECR repository (default pais)")
    parser.add_argument(
        "--image", help="tag, <uri>:<tag> or <uri>@sha256:... in the repository (default: the newest pushed)"
    )
    parser.add_argument(
        "--model-data", help="s3:// URI of model.tar.gz (default: the one `push` stored with the image)"
    )
    parser.add_argument(
        "--no-model-data",
        action="store_true",
        help="deploy without model artifacts (the image carries its models)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="NAME=VALUE for the container (repeatable); readable by whoever may describe the "
        "deployment, so no secrets (names with a part KEY, TOKEN, SECRET, PASSWORD... are refused)",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="a secret for the container (repeatable): stored as an SSM SecureString parameter "
        "/pais/<name>/NAME, which the container reads at start-up; NAME alone takes the value from "
        "this environment's $NAME (kept out of shell history)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.split("\n\n")[0])
    _common(parser, nested=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(group: Any, name: str, handler: Callable[..., Any], help: str) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help, description=help)
        _common(sub, nested=True)
        sub.set_defaults(handler=handler)
        return sub

    push = command(commands, "push", cmd_push, "push the image to ECR and the model store to S3")
    push.add_argument("--repository", default=DEFAULT_REPOSITORY, help="ECR repository (default pais)")
    push.add_argument(
        "--image",
        default="pais:gpu",
        help="local image as `make image` tags it; for --pusher oci an OCI layout dir",
    )
    push.add_argument("--tag", help="image tag (default: UTC time stamp and git commit); tags are immutable")
    push.add_argument(
        "--pusher",
        choices=sorted(image.PUSHERS),
        help="default: docker, buildah or skopeo if found, else oci",
    )
    push.add_argument(
        "--bucket",
        help="S3 bucket of this account for model artifacts (default: the tool's own, "
        "pais-artifacts-<account>-<region>-<random>, made on first push)",
    )
    push.add_argument(
        "--model-store", type=Path, help="BentoML home to pack (default $BENTOML_HOME or ./.bentoml)"
    )
    push.add_argument(
        "--models",
        nargs="+",
        help="models to pack: pais-<task>, or <task>=<store name>[:<version>] to ship another stored "
        "model as that task's (e.g. recommendation=my-recs); default: every pais-* model",
    )
    push.add_argument(
        "--custom-model",
        action="append",
        default=[],
        metavar="NAME[:VERSION]",
        help="also pack this stored custom classifier (python -m models.finetune, sagemaker train) as "
        "custom/NAME/: a deployment of the release serves it as model=NAME (repeatable; default: latest)",
    )
    push.add_argument("--part-size-mb", type=int, default=64, help="multipart upload part size (default 64)")
    push.add_argument(
        "--keep-images", type=int, default=50, help="lifecycle policy: newest images kept (default 50)"
    )
    push.add_argument("--skip-image", action="store_true", help="upload the model artifacts only")
    push.add_argument("--skip-artifacts", action="store_true", help="push the image only")

    sagemaker = commands.add_parser(
        "sagemaker", help="SageMaker endpoints, Batch Transform and training"
    ).add_subparsers(dest="sagemaker_command", required=True, metavar="command")
    deploy = command(sagemaker, "deploy", cmd_sm_deploy, "create or update (blue/green) a SageMaker endpoint")
    deploy.add_argument("name", help="deployment (and endpoint) name")
    _image_options(deploy)
    deploy.add_argument(
        "--role-arn", help="execution role to use (default: pais-<name>-sagemaker when it exists)"
    )
    deploy.add_argument(
        "--create-role", action="store_true", help="create/update pais-<name>-sagemaker, least privilege"
    )
    deploy.add_argument("--instance-type", default="ml.g5.xlarge")
    deploy.add_argument("--instance-count", type=int, default=1)
    deploy.add_argument(
        "--mode", choices=sm_endpoint.MODES, default="replace", help="as mlflow's (default replace)"
    )
    deploy.add_argument(
        "--variant-weight", type=float, default=0.0, help="--mode add: the new variant's weight"
    )
    deploy.add_argument("--async", dest="async_", action="store_true", help="asynchronous inference endpoint")
    deploy.add_argument("--async-output", help="s3:// prefix for async results (required with --async)")
    deploy.add_argument("--async-failure", help="s3:// prefix for async failures")
    deploy.add_argument(
        "--async-max-concurrency", type=int, default=4, help="concurrent requests per instance"
    )
    deploy.add_argument(
        "--serverless",
        action="store_true",
        help=f"serverless endpoint, CPU only ({SETTING_DEVICE}=cpu): push pais:cpu for it",
    )
    deploy.add_argument(
        "--memory-mb", type=int, default=6144, help="--serverless memory: 1024..6144 (default 6144)"
    )
    deploy.add_argument("--max-concurrency", type=int, default=10, help="--serverless concurrent requests")
    deploy.add_argument("--autoscale", type=Autoscale.parse, help="MIN,MAX,TARGET (async: MIN may be 0)")
    deploy.add_argument(
        "--startup-timeout", type=int, default=600, help="seconds for the container to pass /ping"
    )
    deploy.add_argument(
        "--blue-green-wait", type=int, default=0, help="bake time before traffic moves, seconds"
    )
    deploy.add_argument(
        "--termination-wait", type=int, default=0, help="seconds the old fleet stays after the switch"
    )
    deploy.add_argument(
        "--rollback-alarm", action="append", default=[], help="CloudWatch alarm that rolls back"
    )
    deploy.add_argument(
        "--keep-previous", action="store_true", help="keep the previous endpoint config and models"
    )

    invoke = command(sagemaker, "invoke", cmd_sm_invoke, "send a real payload to an endpoint (smoke test)")
    invoke.add_argument("name")
    invoke.add_argument("--file", type=Path, required=True, help="payload, e.g. a JPEG for classification")
    invoke.add_argument("--task", help="task to route to (sent as custom attribute task=<name>)")
    invoke.add_argument("--content-type", help="default: from the file extension")
    invoke.add_argument("--accept", default="application/json")
    invoke.add_argument("--expect", help="fail unless the answer mentions this text (e.g. a label)")

    batch = command(sagemaker, "batch", cmd_sm_batch, "run a Batch Transform job over an S3 JSONL input")
    batch.add_argument("name", help="deployment whose current model runs the job")
    batch.add_argument("--input", required=True, help="s3:// JSONL object or prefix")
    batch.add_argument("--output-path", required=True, help="s3:// prefix for the .out files")
    batch.add_argument("--model", help="SageMaker model to run (default: the endpoint's current one)")
    batch.add_argument("--instance-type", default="ml.g5.xlarge")
    batch.add_argument("--instance-count", type=int, default=1)
    batch.add_argument("--content-type", default="application/jsonlines", help="of the input")
    batch.add_argument("--max-payload-mb", type=int, default=6, help="largest request (default 6)")
    batch.add_argument(
        "--strategy",
        choices=("MultiRecord", "SingleRecord"),
        default="MultiRecord",
        help="lines per request: as many as fit (default), or one",
    )
    batch.add_argument("--task", help="task every line goes to")
    batch.add_argument("--env", action="append", default=[], help="NAME=VALUE for the job's container")
    batch.add_argument("--download", type=Path, help="save the .out files here")

    train = command(
        sagemaker,
        "train",
        cmd_sm_train,
        "train a custom image classifier on labelled images in S3 (a SageMaker training job running "
        "the pushed image); wait, then store it in the local BentoML store",
    )
    train.add_argument(
        "--name", required=True, help="the model's name: stored as NAME, the job is NAME-train-<stamp>"
    )
    train.add_argument("--data", help="s3:// prefix of <label>/<image> files (the channel `training`)")
    train.add_argument("--instance-type", default="ml.g5.xlarge")
    train.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="python -m models.finetune's settings, e.g. mode=finetune, epochs=8 (repeatable)",
    )
    train.add_argument(
        "--spot", action="store_true", help="managed Spot training: cheaper; an interrupted job resumes"
    )
    train.add_argument(
        "--max-run",
        type=int,
        default=sm_training.DEFAULT_MAX_RUN_S,
        help="seconds the job may train (default 86400)",
    )
    train.add_argument(
        "--max-wait",
        type=int,
        help="--spot: seconds for capacity and training in all (default 2 x --max-run)",
    )
    train.add_argument("--volume-gb", type=int, default=30, help="the instance's storage (default 30)")
    train.add_argument("--repository", default=DEFAULT_REPOSITORY, help="ECR repository (default pais)")
    train.add_argument(
        "--image", help="tag, <uri>:<tag> or <uri>@sha256:... in the repository (default: the newest pushed)"
    )
    train.add_argument("--role-arn", help="role for the job (default: pais-<name>-training when it exists)")
    train.add_argument(
        "--create-role", action="store_true", help="create/update pais-<name>-training, least privilege"
    )
    train.add_argument(
        "--bucket", help="S3 bucket of this account for the job's model and checkpoints (default: the tool's)"
    )
    train.add_argument(
        "--env",
        action="append",
        default=[],
        help="NAME=VALUE for the container (repeatable; no secrets), e.g. PAIS_DEVICE=cpu on a CPU instance",
    )
    train.add_argument("--no-store", action="store_true", help="check the trained model; do not store it")
    train.add_argument(
        "--job", help="instead of starting a job: wait for this earlier one of NAME (--no-wait) and store it"
    )

    status = command(
        sagemaker, "status", cmd_sm_status, "endpoint, variants, autoscaling, cost, batch and training jobs"
    )
    status.add_argument("name")
    sm_logs = command(
        sagemaker, "logs", cmd_sm_logs, "the endpoint's (or a batch or training job's) CloudWatch Logs"
    )
    sm_logs.add_argument("name")
    sm_logs.add_argument("--job", help="a transform or training job's logs instead of the endpoint's")
    _log_options(sm_logs)
    teardown = command(
        sagemaker, "teardown", cmd_sm_teardown, "delete the endpoint and everything made for it"
    )
    teardown.add_argument("name")
    teardown.add_argument(
        "--purge-artifacts", action="store_true", help="also delete model artifacts and logs"
    )

    ec2 = commands.add_parser("ec2", help="PAIS on an EC2 GPU instance").add_subparsers(
        dest="ec2_command", required=True, metavar="command"
    )
    ec2_deploy = command(
        ec2, "deploy", cmd_ec2_deploy, "launch a GPU instance running PAIS; wait for /readyz"
    )
    ec2_deploy.add_argument("name")
    _image_options(ec2_deploy)
    ec2_deploy.add_argument(
        "--allow-cidr", required=True, help="who may reach the service port, e.g. 203.0.113.7/32"
    )
    ec2_deploy.add_argument("--instance-type", default="g5.xlarge")
    ec2_deploy.add_argument("--port", type=int, default=443, help="HTTPS port on the instance (default 443)")
    ec2_deploy.add_argument("--ami", help="AMI id (default: the latest Deep Learning AMI)")
    ec2_deploy.add_argument(
        "--ami-parameter", default=ec2_ami.DLAMI_PARAMETER, help="SSM parameter naming the AMI"
    )
    ec2_deploy.add_argument("--subnet-id", help="default: the default VPC's default subnet")
    ec2_deploy.add_argument("--key-name", help="EC2 key pair (default none: use SSM Session Manager)")
    ec2_deploy.add_argument("--spot", action="store_true", help="a Spot instance (cheaper, may be reclaimed)")
    ec2_deploy.add_argument("--volume-gb", type=int, default=100)
    ec2_deploy.add_argument(
        "--cpu-only", action="store_true", help="run without --gpus (a CPU instance type)"
    )
    ec2_deploy.add_argument(
        "--replace", action="store_true", help="replace a running instance once the new one is ready"
    )
    ec2_status = command(ec2, "status", cmd_ec2_status, "instances, readiness, cost")
    ec2_status.add_argument("name")
    ec2_logs = command(ec2, "logs", cmd_ec2_logs, "the container's CloudWatch Logs")
    ec2_logs.add_argument("name")
    _log_options(ec2_logs)
    ec2_teardown = command(ec2, "teardown", cmd_ec2_teardown, "terminate by tag; delete group, role, profile")
    ec2_teardown.add_argument("name")
    ec2_teardown.add_argument(
        "--purge-artifacts", action="store_true", help="also delete model artifacts and logs"
    )

    estimate = command(commands, "cost", cmd_cost, "estimated cost per hour from the dated price table")
    estimate.add_argument(
        "--instance-type",
        nargs="+",
        default=["ml.g5.xlarge", "g5.xlarge"],
        help="ml.* for SageMaker, else EC2",
    )
    estimate.add_argument("--count", type=int, default=1)
    estimate.add_argument("--serverless-memory-mb", type=int)
    return parser


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="1h", help="30s, 10m, 2h, 1d or an ISO time (default 1h)")
    parser.add_argument("--follow", action="store_true", help="keep polling for new events until --timeout")


# --- commands ---------------------------------------------------------------------------


def _owner(aws: Aws, args: argparse.Namespace, deployment: str) -> Ownership:
    """The ownership checks of this command (deploy/ownership.py)."""
    return Ownership(aws, deployment, frozenset(args.force_adopt), parse_tags(args.tags))


def cmd_push(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    owner = _owner(aws, args, "shared")
    tags = resource_tags("shared", parse_tags(args.tags))
    tag = args.tag or _default_tag()
    result: dict[str, Any] = {"tag": tag}
    if not args.skip_image:
        repository = ecr.ensure_repository(aws, owner, args.repository, tags, args.keep_images)
        pusher = image.pusher(args.pusher or image.default_pusher())
        if aws.dry_run and pusher.name != "oci":
            aws.note(f"{pusher.name}: push {args.image} to {repository.uri}:{tag}")
            reported = None
        else:
            reported = pusher.push(aws, args.image, repository, tag)
        result["repository"] = repository.uri
        if not aws.dry_run:
            pushed = ecr.resolve_image(aws, args.repository, tag)
            if reported and reported != pushed.digest:
                raise DeployError(
                    f"{pusher.name} reported {reported} but ECR holds {pushed.digest} for tag {tag}"
                )
            result["image"] = pushed.uri
            result["digest"] = pushed.digest
    if not args.skip_artifacts:
        bucket = artifacts.ensure_bucket(aws, args.bucket, tags, owner)
        store = args.model_store or artifacts.default_store()
        with tempfile.TemporaryDirectory(prefix="pais-push-") as folder:
            packed = artifacts.pack_model_store(store, Path(folder), args.models, args.custom_model)
            key = artifacts.release_key(args.repository, tag)
            uploaded = artifacts.upload_verified(
                aws, packed, bucket, key, args.part_size_mb * artifacts.MIB, tags
            )
        result["model_data"] = uploaded["uri"]
        result["models"] = packed.models
        result["sha256"] = packed.sha256
        result["manifest_sha256"] = packed.manifest_sha256
        result["size_bytes"] = packed.size
        result["uploaded"] = uploaded["uploaded"]
    return result | owner.report()


def _default_tag() -> str:
    """A tag no other push gets: a stamp with a random part, and the git commit."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=8", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return f"{unique_suffix()}-{commit}" if commit else unique_suffix()


@dataclass(frozen=True)
class Release:
    """The image (by digest) and model artifacts a deploy command uses, with the digests
    `push` recorded: the archive's (EC2 user data checks it) and its manifest's (the
    container checks the unpacked files against it)."""

    image: ecr.ImageRef
    model_data: str | None = None
    sha256: str | None = None
    manifest_sha256: str | None = None

    def entrypoint_env(self) -> dict[str, str]:
        return {ARTIFACTS_SHA256: self.manifest_sha256} if self.manifest_sha256 else {}


def _resolve_release(aws: Aws, args: argparse.Namespace) -> Release:
    found = ecr.resolve_image(aws, args.repository, args.image)
    if args.no_model_data:
        return Release(found)
    if args.model_data:
        candidates = [args.model_data]
    else:
        bucket = artifacts.find_default_bucket(aws)
        candidates = (
            [f"s3://{bucket}/{artifacts.release_key(args.repository, tag)}" for tag in found.tags]
            if bucket
            else []
        )
    for uri in candidates:
        bucket, key = artifacts.split_s3_uri(uri)
        try:
            metadata = aws.read("s3", "HeadObject", Bucket=bucket, Key=key).get("Metadata", {})
        except ClientError as error:
            if is_not_found(error):
                continue
            raise
        release = Release(
            found, uri, metadata.get(artifacts.SHA256_METADATA), metadata.get(artifacts.MANIFEST_METADATA)
        )
        if not release.sha256 or not release.manifest_sha256:
            raise DeployError(
                f"{uri} carries no sha256 metadata of its own and of its digest manifest, so the "
                "deployment could not check the artifacts it runs: upload them with `python -m deploy push`"
            )
        return release
    raise DeployError(
        f"no model artifacts found for {found.uri} (looked for: {', '.join(candidates) or 'none'}); "
        "run `python -m deploy push`, or pass --model-data or --no-model-data"
    )


def _env(args: argparse.Namespace) -> dict[str, str]:
    """--env, checked to hold no secrets."""
    env = parse_env(args.env)
    secret_store.check_env(env)
    return env


def cmd_sm_deploy(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    name = check_name(args.name)
    if args.async_ and not args.async_output:
        raise DeployError("--async needs --async-output s3://bucket/prefix/")
    env, secrets = _env(args), secret_store.parse_secrets(args.secret)
    if SETTING_API_KEYS in env or SETTING_API_KEYS in secrets:
        raise DeployError(
            f"{SETTING_API_KEYS} does not apply to SageMaker: SageMaker forwards no Authorization "
            "header to the container, so every /invocations would answer 401. A SageMaker endpoint "
            "is called with AWS credentials (SigV4): grant callers sagemaker:InvokeEndpoint on it"
        )
    release = _resolve_release(aws, args)
    if args.serverless:
        env.setdefault(SETTING_DEVICE, "cpu")  # serverless endpoints have no GPU
    tags = parse_tags(args.tags)
    owner = _owner(aws, args, name)
    sm_endpoint.check_existing(aws, owner, name, args.mode)  # before anything is written
    stored = secret_store.store(aws, owner, name, secrets, resource_tags(name, tags))
    role_arn = args.role_arn or _sagemaker_role(aws, owner, name, release.model_data, args, tags)
    spec = sm_endpoint.EndpointSpec(
        name=name,
        image=release.image,
        model_data=release.model_data,
        role_arn=role_arn,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        env={**env, **secret_store.reference_env(stored), **release.entrypoint_env()},
        tags=tags,
        mode=args.mode,
        variant_weight=args.variant_weight,
        async_output=args.async_output if args.async_ else None,
        async_failure=args.async_failure if args.async_ else None,
        async_max_concurrency=args.async_max_concurrency,
        serverless_memory_mb=args.memory_mb if args.serverless else None,
        serverless_max_concurrency=args.max_concurrency,
        startup_timeout_s=args.startup_timeout,
        blue_green_wait_s=args.blue_green_wait,
        termination_wait_s=args.termination_wait,
        rollback_alarms=args.rollback_alarm,
        autoscale=args.autoscale,
        keep_previous=args.keep_previous,
    )
    result = sm_endpoint.deploy(aws, owner, spec, args.wait, args.timeout)
    if stored:
        result["secrets"] = secret_store.parameter_names(stored)
    return result | owner.report()


def _sagemaker_role(
    aws: Aws,
    owner: Ownership,
    name: str,
    model_data: str | None,
    args: argparse.Namespace,
    tags: dict[str, str],
) -> str:
    """The tool's execution role for `name`: made with --create-role, and kept in line with
    each deploy (its policy follows the artifacts and async paths in use; it may always
    read the deployment's SSM parameters, which a rolled-back release may still need)."""
    repository_arn = ecr.repository_ref(aws, args.repository).arn
    reads = [artifacts.artifact_prefix(model_data, args.repository)] if model_data else []
    outputs = [uri for uri in (args.async_output, args.async_failure) if uri and args.async_]
    parameters = secret_store.parameters_arn_pattern(aws, name)
    policy = iam.sagemaker_policy(aws, repository_arn, reads + outputs, outputs, (), parameters)
    return iam.ensure_sagemaker_role(
        aws, owner, sm_lifecycle.role_name(name), name, policy, tags, args.create_role, "execution"
    )


def cmd_sm_invoke(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    if not args.file.is_file():
        raise DeployError(f"--file {args.file}: no such file")
    body = args.file.read_bytes()
    content_type = args.content_type or sm_invoke.content_type_for(args.file)
    endpoint = sm_endpoint.find_endpoint(aws, args.name)
    if endpoint is None:
        raise DeployError(f"no endpoint {args.name}")
    config = aws.read(
        "sagemaker", "DescribeEndpointConfig", EndpointConfigName=endpoint["EndpointConfigName"]
    )
    async_output = config.get("AsyncInferenceConfig", {}).get("OutputConfig", {}).get("S3OutputPath")
    if async_output:
        result = sm_invoke.invoke_async(
            aws, args.name, body, content_type, async_output, args.task, args.timeout, args.accept
        )
    else:
        result = sm_invoke.invoke_endpoint(aws, args.name, body, content_type, args.accept, args.task)
    if not aws.dry_run:
        sm_invoke.smoke_test(result, args.expect)
    return result


def cmd_sm_batch(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    return sm_batch.run_batch(
        aws,
        check_name(args.name),
        args.input,
        args.output_path,
        model=args.model,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        content_type=args.content_type,
        max_payload_mb=args.max_payload_mb,
        strategy=args.strategy,
        task=args.task,
        env=_env(args),
        tags=parse_tags(args.tags),
        wait=args.wait,
        timeout_s=args.timeout,
        download=args.download,
    )


def cmd_sm_train(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    name = sm_training.check_model_name(check_name(args.name))
    owner = _owner(aws, args, name)
    if args.job:
        sm_training.find_job(aws, name, args.job)
        result: dict[str, Any] = {"name": name, "job": args.job}
    else:
        if not args.data:
            raise DeployError(
                "--data s3://bucket/prefix/ is needed to start a job (or --job to wait for one)"
            )
        hyperparameters = sm_training.check_hyperparameters(name, args.hyperparameter)
        instance_type = sm_training.check_instance_type(args.instance_type)
        env = _env(args)
        data = sm_training.check_data(aws, args.data)
        found = ecr.resolve_image(aws, args.repository, args.image)
        tags = parse_tags(args.tags)
        bucket = artifacts.ensure_bucket(aws, args.bucket, resource_tags("shared", tags), owner)
        role_arn = args.role_arn or sm_training.ensure_role(
            aws,
            owner,
            name,
            ecr.repository_ref(aws, args.repository).arn,  # resolve_image found it
            data,
            sm_training.output_uri(bucket, name),
            tags,
            args.create_role,
        )
        spec = sm_training.TrainingSpec(
            name=name,
            data=data,
            image=found,
            role_arn=role_arn,
            bucket=bucket,
            instance_type=instance_type,
            hyperparameters=hyperparameters,
            env=env,
            tags=tags,
            spot=args.spot,
            max_run_s=args.max_run,
            max_wait_s=args.max_wait,
            volume_gb=args.volume_gb,
        )
        result = sm_training.start(aws, spec)
        if not args.wait:
            result["note"] = (
                f"not waited for: `python -m deploy sagemaker train --name {name} --job {result['job']}` "
                "waits for it and stores the model"
            )
            return result | owner.report()
    described = sm_training.wait(aws, name, result["job"], args.timeout)
    if aws.dry_run:
        aws.note(
            "download the job's model.tar.gz and check it is a PAIS classification snapshot"
            + ("" if args.no_store else f"; store it as {name} in the local BentoML store")
        )
        return result | owner.report()
    result["status"] = described["TrainingJobStatus"]
    return result | sm_training.finish(aws, name, described, keep=not args.no_store) | owner.report()


def cmd_sm_status(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    return sm_lifecycle.status(aws, args.name)


def cmd_sm_logs(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    if args.job and is_versioned(args.job, args.name, TRAIN_INFIX):
        group, prefix = sm_training.LOG_GROUP, f"{args.job}/"
    elif args.job:
        group, prefix = "/aws/sagemaker/TransformJobs", f"{args.job}/"
    else:
        group, prefix = sm_lifecycle.log_group(args.name), None
    return _show_logs(aws, args, group, prefix)


def cmd_sm_teardown(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    owner = _owner(aws, args, args.name)
    return sm_lifecycle.teardown(aws, owner, args.name, args.purge_artifacts, args.wait, args.timeout)


def cmd_ec2_deploy(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    name = check_name(args.name)
    env, secrets = _env(args), secret_store.parse_secrets(args.secret)
    release = _resolve_release(aws, args)
    spec = ec2_instance.Ec2Spec(
        name=name,
        image=release.image,
        repository_arn=ecr.repository_ref(aws, args.repository).arn,  # the release's image is in it
        allow_cidr=args.allow_cidr,
        model_data=release.model_data,
        model_sha256=release.sha256,
        manifest_sha256=release.manifest_sha256,
        instance_type=args.instance_type,
        port=args.port,
        ami=args.ami,
        ami_parameter=args.ami_parameter,
        subnet=args.subnet_id,
        key_name=args.key_name,
        spot=args.spot,
        volume_gb=args.volume_gb,
        env=env,
        secrets=secrets,
        tags=parse_tags(args.tags),
        gpus=not args.cpu_only,
        replace=args.replace,
    )
    return ec2_instance.deploy(aws, _owner(aws, args, name), spec, args.wait, args.timeout)


def cmd_ec2_status(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    return ec2_instance.status(aws, args.name)


def cmd_ec2_logs(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    return _show_logs(aws, args, ec2_instance.log_group(args.name), None)


def cmd_ec2_teardown(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    owner = _owner(aws, args, args.name)
    return ec2_instance.teardown(aws, owner, args.name, args.purge_artifacts, args.wait, args.timeout)


def cmd_cost(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    """Needs no AWS access: the region only picks the price table (default us-east-1)."""
    try:
        region = aws.region
    except DeployError:
        region = "us-east-1"
    return cost.estimate(region, args.instance_type, args.count, args.serverless_memory_mb)


def _show_logs(aws: Aws, args: argparse.Namespace, group: str, prefix: str | None) -> dict[str, Any]:
    lines: list[str] = []
    emit = lines.append if args.output == "json" else print
    count = logs.show_logs(
        aws, group, logs.parse_since(args.since), emit, prefix, args.timeout if args.follow else None
    )
    return {"log_group": group, "events": count, **({"lines": lines} if args.output == "json" else {})}


# --- output and entry point ---------------------------------------------------------------


def render_text(value: Any, indent: int = 0) -> str:
    """A YAML-like rendering of a result for people; --output json is for programs."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{pad}{key}:", render_text(item, indent + 1)]
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = render_text(item, indent + 1).splitlines()
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines += nested[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return "\n".join(lines)
    return f"{pad}{_scalar(value)}"


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = AwsOptions(
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        dry_run=args.dry_run,
        max_attempts=args.max_attempts,
        poll_interval_s=args.poll_interval,
    )
    aws = Aws(options, progress=lambda message: print(message, file=sys.stderr, flush=True))
    try:
        result = args.handler(aws, args)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    except ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"error: AWS {error.operation_name} failed: {details.get('Code')}: {details.get('Message')}",
            file=sys.stderr,
        )
        return 1
    except botocore.exceptions.BotoCoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: AWS keeps doing what it was asked; check with `status`", file=sys.stderr)
        return 130
    if aws.dry_run:
        result = {"dry_run": True, "calls": aws.planned(), "notes": aws.notes, "result": result}
    if args.output == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        print(render_text(result) if not aws.dry_run else render_plan(result))
    return 0


def render_plan(plan: dict[str, Any]) -> str:
    lines = [f"dry run: {len(plan['calls'])} AWS call(s) planned, none sent"]
    for number, call in enumerate(plan["calls"], 1):
        lines.append(
            f"{number:3}. {call['service']}.{call['operation']} {json.dumps(call['params'], default=str)}"
        )
    lines += [f"  - {note}" for note in plan["notes"]]
    return "\n".join(lines)
