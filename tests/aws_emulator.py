"""AWS behaviour that moto fakes or lacks, added in front of moto's real server.

The deploy tool talks to this proxy exactly as it would to AWS; the proxy passes every
call to moto except the few below, where moto's answer would make the tests pass against
behaviour AWS does not have. Each extension, and what it assumes about real AWS:

1. Endpoint status follows a real container (CreateEndpoint, DescribeEndpoint).
   AWS: SageMaker pulls the model's image, extracts ModelDataUrl into /opt/ml/model, starts
   the container with `serve` and SAGEMAKER_BIND_TO_PORT, and keeps the endpoint Creating
   until GET /ping answers 200 (within ContainerStartupHealthCheckTimeoutInSeconds); then
   InService. If the image is not in ECR, the container exits or never passes /ping, the
   endpoint becomes Failed with a FailureReason.
   Here: the image is checked in (moto's) ECR by digest; the "container" is a local
   process running this repository's entrypoint (what the image holds), with the artifacts
   downloaded from (moto's) S3 and extracted into a temporary directory passed as
   PAIS_MODEL_DIR (the container would find them at /opt/ml/model).
   moto alone: InService at once, nothing runs.

2. UpdateEndpoint (moto: not implemented, answers 500).
   AWS: refuses unless the endpoint is InService and the config exists; with a blue/green
   DeploymentConfig the new config must keep the variant names. Status Updating; the new
   fleet starts and must pass /ping; traffic moves after WaitIntervalInSeconds; the old
   fleet stops after TerminationWaitInSeconds; InService on the new config. If the new
   fleet fails, the endpoint rolls back: InService on the old config, with a
   FailureReason (the condition mlflow and the tool detect). The old fleet serves
   throughout (no downtime).

3. InvokeEndpoint / InvokeEndpointAsync (moto: canned answers, fails on binary bodies).
   AWS: forwards Body, ContentType, Accept and CustomAttributes
   (X-Amzn-SageMaker-Custom-Attributes) to the container's POST /invocations and returns
   its answer; a non-2xx answer becomes ModelError (HTTP 424) carrying
   OriginalStatusCode and OriginalMessage. Async: reads InputLocation from S3, answers 202
   with the output and failure locations, later writes `<S3OutputPath>/<id>.out` (or
   `<S3FailurePath>/<id>-error.out`).

4. Batch Transform (moto: Completed at once, nothing runs; no StopTransformJob).
   AWS: starts the model's container with SAGEMAKER_BATCH=true, SAGEMAKER_BATCH_STRATEGY,
   SAGEMAKER_MAX_PAYLOAD_IN_MB and SAGEMAKER_MAX_CONCURRENT_TRANSFORMS, splits each input
   object into lines (SplitType Line) and sends them to /invocations with the job's
   ContentType, one line per request (SingleRecord) or as many whole lines as fit in
   MaxPayloadInMB (MultiRecord); writes the answers, newline-joined (AssembleWith Line), to
   `<S3OutputPath>/<path relative to the input prefix's folder>.out`; a non-2xx answer
   fails the job ("ClientError: ..."). StopTransformJob moves an InProgress job to Stopped.

5. Container logs (moto: none). AWS: the container's stdout/stderr go to CloudWatch Logs,
   /aws/sagemaker/Endpoints/<endpoint> (stream `<variant>/<instance>`) and
   /aws/sagemaker/TransformJobs (stream `<job>/<instance>`).

6. GPU instance types in endpoint configs (moto: refuses ml.g5.* and newer). AWS accepts
   every ProductionVariantInstanceType in botocore's model (subject to quotas): moto's
   check is widened to that enum. This one is a patch of moto's model class, in process.

7. CreateModel checks that ExecutionRoleArn exists (AWS: "Could not assume role").

8. The Deep Learning AMI's public SSM parameter (moto: has Amazon Linux's, not this one,
   and refuses to create names under /aws/). AWS publishes it in every region; here it is
   added to moto's parameter store in process, naming one of moto's Amazon-owned images.

9. AWS managed policies (moto: none unless loaded when its IAM backend starts, which may
   have happened earlier in the session). AWS has AmazonSSMManagedInstanceCore in every
   account; it is added to moto's IAM backend in process.

10. EC2 instances run their user data (moto: an instance is a record; its public address
   is a random 54.x.x.x). AWS: cloud-init runs the user data at first boot; the container
   it starts answers on the instance's public address. Here (tests/ec2_host.py says what is
   assumed of the AMI and Docker): each instance gets its own address in 127.0.0.0/8, its
   user data runs with stand-in `aws` and `docker`, and the `docker run` it asks for starts
   this repository's entrypoint on that address; TerminateInstances stops it.

11. S3's ExpectedBucketOwner (moto: accepted, never checked). AWS: a request whose
   x-amz-expected-bucket-owner header names another account than the bucket's owner fails
   with 403 AccessDenied. Here the owner is moto's own record of who made the bucket (a
   test makes another account's bucket with moto's x-moto-account-id header). The proxy
   also notes every S3 request that names a bucket without the header (`s3_unguarded`), so
   a test can hold the tool to sending it.

12. SageMaker ListTags of a resource made without tags (moto: 500, as it keeps None for
   its tags). AWS answers an empty list: the tool then finds the resource is not its own.

13. Training jobs run the image (moto: CreateTrainingJob records the job as Completed at
   once and runs nothing; no StopTrainingJob).
   AWS: CreateTrainingJob refuses a role it cannot assume. The job is InProgress
   (SecondaryStatus Starting, Downloading, Training, Uploading); an image not in ECR fails
   it ("ClientError: ..."). In File mode every object under each channel's S3Prefix is
   copied to /opt/ml/input/data/<channel>/<key relative to the prefix> (none: the job fails,
   "ClientError: No S3 objects found under S3 URL ..."); the hyperparameters, every value a
   string, are in /opt/ml/input/config/hyperparameters.json, beside inputdataconfig.json and
   resourceconfig.json; the objects under CheckpointConfig.S3Uri are copied to
   /opt/ml/checkpoints before the container starts. The container runs the image with the
   argument `train` and the job's Environment plus TRAINING_JOB_NAME and TRAINING_JOB_ARN;
   its output goes to /aws/sagemaker/TrainingJobs, stream `<job>/algo-1-<epoch seconds>`.
   Exit 0: /opt/ml/model is uploaded as <S3OutputPath>/<job>/output/model.tar.gz and the job
   is Completed. Non-zero: Failed, FailureReason "AlgorithmError: " and the first 1024
   characters of /opt/ml/output/failure (a generic line without it). StopTrainingJob:
   Stopping, SIGTERM to the container (SIGKILL after a grace period), then Stopped.
   /opt/ml/checkpoints is copied to the checkpoint S3Uri.
   Here: the container is a local process running this repository's entrypoint
   (`python -m deploy.entrypoint train`) with PAIS_SAGEMAKER_ROOT pointing at a temporary
   /opt/ml tree filled from (moto's) S3 as above. Not emulated: checkpoints are uploaded
   when the process ends, not while it runs (AWS syncs them continuously); Spot
   interruptions and restarts; /opt/ml/output/data (output.tar.gz); metrics; billable time.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import httpx
from botocore.config import Config
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .ec2_host import Host
from .servers import REPO, free_port, service_env, stop

ACCOUNT = "123456789012"
REGION = "us-east-1"
PING_FAILED = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


@dataclass(frozen=True)
class ContainerRuntime:
    """How a container of the image is run here: its command and health path, and the
    command of a training job's container."""

    command: Callable[[int], list[str]]
    ping_path: str
    train_command: list[str] = field(default_factory=list)


def entrypoint_runtime() -> ContainerRuntime:
    """The image's SageMaker contract: `python -m deploy.entrypoint serve`, as the image's
    ENTRYPOINT runs it (bound to 127.0.0.1 here); `... train` for a training job."""
    return ContainerRuntime(
        lambda port: [sys.executable, "-m", "deploy.entrypoint", "serve", "--host", "127.0.0.1"],
        "/ping",
        [sys.executable, "-m", "deploy.entrypoint", "train"],
    )


def _signed_for(request: Request) -> str:
    """The service a SigV4 request was signed for (its credential scope)."""
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", request.headers.get("Authorization", ""))
    return found.group(1) if found else ""


def moto_client(moto_url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A container's process, run from the repository (what the image holds): its output
    on one pipe, in a session of its own so that stop() reaches its children too."""
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )


def put_log_line(logs: Any, group: str, stream: str, message: str) -> None:
    """One line of a container's output into CloudWatch Logs, as SageMaker sends it (making
    the group and stream on first use)."""
    event = {"timestamp": int(time.time() * 1000), "message": message or " "}
    for attempt in range(2):
        try:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event])
            return
        except logs.exceptions.ResourceNotFoundException:
            if attempt:
                raise
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=group, logStreamName=stream)


class Container:
    """One local process standing for one container; its output goes to CloudWatch Logs."""

    def __init__(
        self, runtime: ContainerRuntime, moto_url: str, image: str, model_data: str, env: dict[str, str]
    ):
        self.runtime = runtime
        self.moto_url = moto_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sinks: list[tuple[str, str]] = []  # (log group, stream)
        self.lines: list[str] = []
        self._folder = tempfile.TemporaryDirectory(prefix="pais-container-")
        model_dir = Path(self._folder.name) / "model"
        model_dir.mkdir()
        if model_data:
            self._extract(model_data, model_dir)
        # The entrypoint would find the artifacts at /opt/ml/model and set this itself.
        # The deploy tests invoke classification only: serving just that task keeps each
        # emulated container at ~1 GB instead of ~4 GB (several run at once during updates).
        container_env = service_env(
            **{"PAIS_TASKS": "classification", **env},
            SAGEMAKER_BIND_TO_PORT=str(self.port),
            PAIS_MODEL_DIR=str(model_dir),
        )
        self.process = spawn(runtime.command(self.port), container_env)
        self._logs = moto_client(moto_url, "logs")
        threading.Thread(target=self._pump, daemon=True).start()

    def _extract(self, uri: str, target: Path) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        data = moto_client(self.moto_url, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(target, filter="data")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            for group, stream in list(self.sinks):
                self._put(group, stream, line.rstrip())

    def _put(self, group: str, stream: str, message: str) -> None:
        put_log_line(self._logs, group, stream, message)

    def log_to(self, group: str, stream: str) -> None:
        self.sinks.append((group, stream))
        for line in list(self.lines):
            self._put(group, stream, line)

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + self.runtime.ping_path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_healthy(self, deadline_s: float) -> str | None:
        """None once /ping answers 200; else why not."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if not self.alive():
                return f"the container exited with status {self.process.returncode}"
            if self.healthy():
                return None
            time.sleep(0.3)
        return f"no answer on {self.runtime.ping_path} within {deadline_s:g} s"

    def stop(self) -> None:
        stop(self.process, grace_s=20)
        self._folder.cleanup()


@dataclass
class ContainerPool:
    """Containers by what they run (image, artifacts, environment): variants and jobs that
    run the same thing share one process. Real AWS would start one per instance; for a
    stateless server the difference does not show, and the CPU here is small."""

    runtime: ContainerRuntime
    moto_url: str
    containers: dict[tuple, Container] = field(default_factory=dict)
    users: dict[tuple, int] = field(default_factory=dict)
    stopping: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, image: str, model_data: str, env: dict[str, str]) -> tuple[tuple, Container]:
        key = (image, self._etag(model_data), tuple(sorted(env.items())))
        with self.lock:
            if key not in self.containers or not self.containers[key].alive():
                self.containers[key] = Container(self.runtime, self.moto_url, image, model_data, env)
            self.users[key] = self.users.get(key, 0) + 1
            return key, self.containers[key]

    def _etag(self, uri: str) -> str:
        """Artifacts are the same when their bytes are, wherever they are stored."""
        if not uri:
            return ""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return moto_client(self.moto_url, "s3").head_object(Bucket=bucket, Key=key)["ETag"]

    def release(self, key: tuple) -> None:
        """One user fewer; the last one out stops the process (in the background, as AWS
        answers DeleteEndpoint before its instances are gone)."""
        with self.lock:
            self.users[key] -= 1
            if self.users[key] == 0:
                stopping = threading.Thread(target=self.containers.pop(key).stop)
                stopping.start()
                self.stopping.append(stopping)

    def stop_all(self) -> None:
        with self.lock:
            for container in self.containers.values():
                container.stop()
            self.containers.clear()
        for stopping in self.stopping:
            stopping.join()


@dataclass
class Variant:
    name: str
    key: tuple
    container: Container
    weight: float
    instance_type: str | None
    count: int


@dataclass
class Fleet:
    status: str
    config: str
    variants: list[Variant]
    is_async: dict[str, Any] | None = None
    failure_reason: str | None = None


@dataclass
class Job:
    status: str = "InProgress"
    failure_reason: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ended: float | None = None


@dataclass
class Training:
    """A training job as the emulator runs it (extension 13)."""

    status: str = "InProgress"
    secondary: str = "Starting"
    failure_reason: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None


class AwsEmulator:
    """The proxy: `url` is what the deploy tool is pointed at (--endpoint-url)."""

    def __init__(self, moto_url: str, runtime: ContainerRuntime, max_startup_s: float = 600):
        self.moto_url = moto_url
        self.runtime = runtime
        self.max_startup_s = max_startup_s
        self.pool = ContainerPool(runtime, moto_url)
        self.fleets: dict[str, Fleet] = {}
        self.jobs: dict[str, Job] = {}
        self.trainings: dict[str, Training] = {}
        self.hosts: dict[str, Host] = {}
        self.s3_unguarded: list[str] = []
        network = random.randint(16, 250)  # one 127.N.0.0/16 per emulator: its instances' addresses
        self._addresses = iter(f"127.{network}.{n // 250}.{n % 250 + 1}" for n in range(250 * 250))
        self.lock = threading.RLock()
        # Generous: the containers share two busy cores with the rest of the suite.
        self.http = httpx.Client(timeout=600, trust_env=False)
        self.sm = moto_client(moto_url, "sagemaker")
        self.s3 = moto_client(moto_url, "s3")
        self.ecr = moto_client(moto_url, "ecr")
        self.iam = moto_client(moto_url, "iam")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- plumbing --------------------------------------------------------------------------

    def __enter__(self) -> AwsEmulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request, twice
        widen_moto_instance_types()
        self.dlami = publish_dlami_parameter(self.moto_url)
        publish_managed_policy("AmazonSSMManagedInstanceCore")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        for host in self.hosts.values():
            host.terminate()
        for job in self.jobs.values():
            job.stop.set()
        for training in self.trainings.values():
            training.stop.set()
            if training.process is not None:
                stop(training.process, grace_s=5)
        self.pool.stop_all()
        self.http.close()

    @Request.application
    def app(self, request: Request) -> Response:
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith("SageMaker."):
            handler = getattr(self, f"sm_{target.split('.', 1)[1]}", None)
            if handler is not None:
                return handler(request, json.loads(request.get_data() or b"{}"))
        found = re.fullmatch(r"/endpoints/([^/]+)/(invocations|async-invocations)", request.path)
        if found and request.method == "POST":
            if found.group(2) == "invocations":
                return self.invoke(request, found.group(1))
            return self.invoke_async(request, found.group(1))
        raw = request.get_data(cache=True)
        form = (
            parse_qs(raw.decode(errors="replace"))
            if request.mimetype == "application/x-www-form-urlencoded"
            else {}
        )
        action = form.get("Action", [None])[0]
        if _signed_for(request) == "s3":
            refused = self.s3_owner_check(request)
            if refused is not None:
                return refused
        answer = self.forward(request)
        if action == "RunInstances" and answer.status_code == 200:
            self._boot(answer, base64.b64decode(form.get("UserData", [""])[0]).decode())
        if action == "TerminateInstances" and answer.status_code == 200:
            for key, (instance_id,) in form.items():
                if key.startswith("InstanceId.") and instance_id in self.hosts:
                    self.hosts[instance_id].terminate()
        return answer

    # --- EC2 instances (extension 10) ----------------------------------------------------------

    def _boot(self, answer: Response, script: str) -> None:
        from moto.ec2.models import ec2_backends

        for instance_id in re.findall(rb"<instanceId>(i-[0-9a-f]+)</instanceId>", answer.get_data()):
            instance_id = instance_id.decode()
            address = next(self._addresses)
            instance = ec2_backends[ACCOUNT][REGION].get_instance(instance_id)
            instance.nics[0].public_ip = address
            host = Host(instance_id, address, script, self.moto_url, self._image_missing)
            self.hosts[instance_id] = host
            host.start()

    # --- S3 (extension 11) -----------------------------------------------------------------------

    def s3_owner_check(self, request: Request) -> Response | None:
        from moto.s3.models import s3_backends

        bucket = request.path.lstrip("/").split("/", 1)[0]
        expected = request.headers.get("x-amz-expected-bucket-owner")
        if not bucket:
            return None  # ListBuckets: no bucket to own
        if expected is None:
            creating = request.method == "PUT" and request.path.strip("/") == bucket and not request.args
            if not creating:  # CreateBucket takes no ExpectedBucketOwner: the caller will own it
                self.s3_unguarded.append(f"{request.method} {request.full_path}")
            return None
        owner = s3_backends.bucket_accounts.get(bucket)
        if owner is not None and owner[1] != expected:
            return Response(
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                "<Message>Access Denied</Message></Error>",
                status=403,
                mimetype="application/xml",
            )
        return None

    def forward(self, request: Request, body: bytes | None = None) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = self.http.request(
            request.method,
            self.moto_url + request.full_path.rstrip("?"),
            headers=headers,
            content=request.get_data() if body is None else body,
        )
        # httpx has decoded the body, so its length is recomputed; a HEAD answer has no body
        # and keeps the length moto gave.
        skip = ("content-length", "transfer-encoding", "connection", "content-encoding")
        answer = Response(
            upstream.content,
            status=upstream.status_code,
            headers=[(k, v) for k, v in upstream.headers.items() if k.lower() not in skip],
        )
        if request.method == "HEAD" and "content-length" in upstream.headers:
            answer.headers["Content-Length"] = upstream.headers["content-length"]
        return answer

    @staticmethod
    def error(code: str, message: str, status: int = 400) -> Response:
        return Response(
            json.dumps({"__type": code, "message": message}),
            status=status,
            mimetype="application/x-amz-json-1.1",
        )

    @staticmethod
    def ok(payload: dict[str, Any]) -> Response:
        return Response(json.dumps(payload, default=str), mimetype="application/x-amz-json-1.1")

    # --- SageMaker control plane -------------------------------------------------------------

    def sm_CreateModel(self, request: Request, body: dict[str, Any]) -> Response:
        return self._role_missing(body.get("ExecutionRoleArn", "")) or self.forward(request)

    def _role_missing(self, role: str) -> Response | None:
        """Extension 7 (and 13): SageMaker assumes the role when the model or job is made."""
        try:
            self.iam.get_role(RoleName=role.rsplit("/", 1)[-1])
        except self.iam.exceptions.NoSuchEntityException:
            return self.error(
                "ValidationException", f"Could not assume role {role}. Please ensure that the role exists."
            )
        return None

    def sm_ListTags(self, request: Request, body: dict[str, Any]) -> Response:
        """Extension 12."""
        from moto.sagemaker.models import sagemaker_backends

        try:
            resource = sagemaker_backends[ACCOUNT][REGION]._get_resource_from_arn(body.get("ResourceArn", ""))
        except Exception:  # not moto's to find: its own answer says why
            return self.forward(request)
        return self.ok({"Tags": []}) if resource.tags is None else self.forward(request)

    def sm_CreateEndpoint(self, request: Request, body: dict[str, Any]) -> Response:
        answer = self.forward(request)
        if answer.status_code == 200:
            name, config = body["EndpointName"], body["EndpointConfigName"]
            with self.lock:
                self.fleets[name] = Fleet("Creating", config, [])
            threading.Thread(target=self._create, args=(name, config), daemon=True).start()
        return answer

    def _create(self, name: str, config: str) -> None:
        variants, reason = self._start_fleet(name, config)
        with self.lock:
            fleet = self.fleets.get(name)
            if fleet is None:  # deleted meanwhile
                self._release(variants)
                return
            fleet.variants = variants
            fleet.is_async = self.sm.describe_endpoint_config(EndpointConfigName=config).get(
                "AsyncInferenceConfig"
            )
            fleet.status, fleet.failure_reason = ("Failed", reason) if reason else ("InService", None)

    def _start_fleet(self, endpoint: str, config_name: str) -> tuple[list[Variant], str | None]:
        """Start each variant's container and wait for /ping; (variants, failure reason)."""
        config = self.sm.describe_endpoint_config(EndpointConfigName=config_name)
        variants: list[Variant] = []
        for declared in config["ProductionVariants"]:
            container = self.sm.describe_model(ModelName=declared["ModelName"])["PrimaryContainer"]
            missing = self._image_missing(container["Image"])
            if missing:
                self._release(variants)
                return [], missing
            try:
                key, running = self.pool.acquire(
                    container["Image"], container.get("ModelDataUrl", ""), container.get("Environment", {})
                )
            except Exception as error:  # what SageMaker reports when it cannot fetch the artifacts
                self._release(variants)
                return [], f"Failed to download model data for variant {declared['VariantName']}: {error}"
            variant = Variant(
                declared["VariantName"],
                key,
                running,
                declared.get("InitialVariantWeight", 1.0),
                declared.get("InstanceType"),
                declared.get("InitialInstanceCount", 1),
            )
            variants.append(variant)
            running.log_to(
                f"/aws/sagemaker/Endpoints/{endpoint}", f"{variant.name}/i-{abs(hash(key)) % 10**12:012d}"
            )
            limit = min(declared.get("ContainerStartupHealthCheckTimeoutInSeconds", 600), self.max_startup_s)
            why = running.wait_healthy(limit)
            if why:
                self._release(variants)
                return [], f"{PING_FAILED.format(variant=variant.name)} ({why})"
        return variants, None

    def _image_missing(self, image: str) -> str | None:
        found = re.fullmatch(r"[^/]+\.dkr\.ecr\.[^/]+/(.+?)(?:@(sha256:[0-9a-f]{64})|:([^:@]+))?", image)
        if not found:
            return f"The image {image} is not an ECR image this emulator knows"
        repository, digest, tag = found.groups()
        image_id = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
        try:
            self.ecr.describe_images(repositoryName=repository, imageIds=[image_id])
        except (self.ecr.exceptions.ImageNotFoundException, self.ecr.exceptions.RepositoryNotFoundException):
            return f"Requested image {image} not found."
        return None

    def _release(self, variants: list[Variant]) -> None:
        for variant in variants:
            self.pool.release(variant.key)

    def sm_DescribeEndpoint(self, request: Request, body: dict[str, Any]) -> Response:
        answer = self.forward(request)
        fleet = self.fleets.get(body.get("EndpointName", ""))
        if answer.status_code != 200 or fleet is None:
            return answer
        described = json.loads(answer.get_data())
        with self.lock:
            described["EndpointStatus"] = fleet.status
            described["EndpointConfigName"] = fleet.config
            described.pop("FailureReason", None)
            if fleet.failure_reason:
                described["FailureReason"] = fleet.failure_reason
            if fleet.variants:
                described["ProductionVariants"] = [
                    {
                        "VariantName": v.name,
                        "CurrentWeight": v.weight,
                        "DesiredWeight": v.weight,
                        "CurrentInstanceCount": v.count,
                        "DesiredInstanceCount": v.count,
                    }
                    for v in fleet.variants
                ]
        return self.ok(described)

    def sm_UpdateEndpoint(self, request: Request, body: dict[str, Any]) -> Response:
        name, config = body.get("EndpointName", ""), body.get("EndpointConfigName", "")
        try:
            endpoint = self.sm.describe_endpoint(EndpointName=name)
        except self.sm.exceptions.ClientError:
            return self.error("ValidationException", f'Could not find endpoint "{name}".')
        try:
            new = self.sm.describe_endpoint_config(EndpointConfigName=config)
        except self.sm.exceptions.ClientError:
            return self.error("ValidationException", f'Could not find endpoint configuration "{config}".')
        with self.lock:
            fleet = self.fleets.get(name)
            if fleet is None or fleet.status != "InService":
                status = fleet.status if fleet else endpoint["EndpointStatus"]
                return self.error(
                    "ValidationException", f'Cannot update in-progress endpoint "{name}" ({status}).'
                )
            if "BlueGreenUpdatePolicy" in body.get("DeploymentConfig", {}):
                old = self.sm.describe_endpoint_config(EndpointConfigName=fleet.config)
                if {v["VariantName"] for v in old["ProductionVariants"]} != {
                    v["VariantName"] for v in new["ProductionVariants"]
                }:
                    return self.error(
                        "ValidationException",
                        "Blue/green deployments need the new endpoint configuration to keep "
                        "the variant names.",
                    )
            fleet.status, fleet.failure_reason = "Updating", None
        threading.Thread(
            target=self._update, args=(name, config, body.get("DeploymentConfig", {})), daemon=True
        ).start()
        return self.ok({"EndpointArn": endpoint["EndpointArn"]})

    def _update(self, name: str, config: str, deployment: dict[str, Any]) -> None:
        policy = deployment.get("BlueGreenUpdatePolicy", {})
        green, reason = self._start_fleet(name, config)
        if reason is None:
            time.sleep(policy.get("TrafficRoutingConfiguration", {}).get("WaitIntervalInSeconds", 0))
        with self.lock:
            fleet = self.fleets[name]
            if reason:
                fleet.status, fleet.failure_reason = "InService", reason  # rolled back: blue keeps serving
                return
            blue = fleet.variants
            fleet.variants, fleet.config, fleet.status = green, config, "InService"
            fleet.is_async = self.sm.describe_endpoint_config(EndpointConfigName=config).get(
                "AsyncInferenceConfig"
            )
            _record_in_moto(name, config)
        time.sleep(policy.get("TerminationWaitInSeconds", 0))
        self._release(blue)

    def sm_DeleteEndpoint(self, request: Request, body: dict[str, Any]) -> Response:
        answer = self.forward(request)
        if answer.status_code == 200:
            with self.lock:
                fleet = self.fleets.pop(body["EndpointName"], None)
            if fleet:
                self._release(fleet.variants)
        return answer

    # --- Batch Transform ---------------------------------------------------------------------

    def sm_CreateTransformJob(self, request: Request, body: dict[str, Any]) -> Response:
        answer = self.forward(request)
        if answer.status_code == 200:
            job = Job()
            self.jobs[body["TransformJobName"]] = job
            threading.Thread(target=self._transform, args=(body, job), daemon=True).start()
        return answer

    def _transform(self, spec: dict[str, Any], job: Job) -> None:
        name = spec["TransformJobName"]
        container = self.sm.describe_model(ModelName=spec["ModelName"])["PrimaryContainer"]
        env = {
            **container.get("Environment", {}),
            **spec.get("Environment", {}),
            "SAGEMAKER_BATCH": "true",
            "SAGEMAKER_BATCH_STRATEGY": _STRATEGIES[spec.get("BatchStrategy", "MultiRecord")],
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(spec.get("MaxPayloadInMB", 6)),
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(spec.get("MaxConcurrentTransforms", 1)),
        }
        key, running = self.pool.acquire(container["Image"], container.get("ModelDataUrl", ""), env)
        running.log_to("/aws/sagemaker/TransformJobs", f"{name}/i-{uuid.uuid4().hex[:12]}")
        try:
            why = running.wait_healthy(self.max_startup_s)
            if why:
                raise JobFailed(f"AlgorithmError: {why}")
            self._run_records(spec, running, job)
            job.status = "Stopped" if job.stop.is_set() else "Completed"
        except JobFailed as failure:
            job.status, job.failure_reason = "Failed", str(failure)
        finally:
            job.ended = time.time()
            self.pool.release(key)

    def _run_records(self, spec: dict[str, Any], running: Container, job: Job) -> None:
        source = spec["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        out_bucket, _, out_prefix = (
            spec["TransformOutput"]["S3OutputPath"].removeprefix("s3://").partition("/")
        )
        out_prefix = out_prefix.rstrip("/") + "/" if out_prefix else ""
        content_type = spec["TransformInput"].get("ContentType", "application/octet-stream")
        keys = [
            item["Key"] for item in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        ]
        if not keys:
            raise JobFailed(
                f'ClientError: No S3 objects found under S3 URL "{source}" given in input data source.'
            )
        single = spec.get("BatchStrategy", "MultiRecord") == "SingleRecord"
        limit = spec.get("MaxPayloadInMB", 6) * 1024 * 1024
        for key in keys:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            answers = []
            for batch in _mini_batches([line for line in body.splitlines() if line.strip()], single, limit):
                if job.stop.is_set():
                    return
                reply = self.http.post(
                    running.url + "/invocations",
                    content=b"\n".join(batch),
                    headers={"Content-Type": content_type},
                )
                if reply.status_code >= 300:
                    raise JobFailed(
                        f"ClientError: Received client error ({reply.status_code}) "
                        f"for a mini-batch of {key}: "
                        f"{reply.text[:300]}. See job logs for more information"
                    )
                answers.append(reply.text.rstrip("\n"))
            relative = key[len(folder) :]
            self.s3.put_object(
                Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body="\n".join(answers) + "\n"
            )

    def sm_DescribeTransformJob(self, request: Request, body: dict[str, Any]) -> Response:
        return self._described(request, self.jobs.get(body.get("TransformJobName", "")), "Transform")

    def sm_ListTransformJobs(self, request: Request, body: dict[str, Any]) -> Response:
        return self._listed(request, body, self.jobs, "Transform")

    def _described(self, request: Request, job: Job | Training | None, kind: str) -> Response:
        """moto's description of a job, with the state the emulator keeps (`kind`: the
        Transform or Training of the field names)."""
        answer = self.forward(request)
        if answer.status_code != 200 or job is None:
            return answer
        described = json.loads(answer.get_data())
        described[f"{kind}JobStatus"] = job.status
        if isinstance(job, Training):
            described["SecondaryStatus"] = job.secondary
        described.pop("FailureReason", None)
        if job.failure_reason:
            described["FailureReason"] = job.failure_reason
        return self.ok(described)

    def _listed(
        self, request: Request, body: dict[str, Any], jobs: dict[str, Job] | dict[str, Training], kind: str
    ) -> Response:
        """moto's list of jobs with the emulator's states, filtered by StatusEquals on them."""
        wanted = body.pop("StatusEquals", None)
        answer = self.forward(request, json.dumps(body).encode())
        listed = json.loads(answer.get_data())
        summaries = listed.get(f"{kind}JobSummaries", [])
        for summary in summaries:
            job = jobs.get(summary[f"{kind}JobName"])
            if job:
                summary[f"{kind}JobStatus"] = job.status
        if wanted:
            listed[f"{kind}JobSummaries"] = [s for s in summaries if s[f"{kind}JobStatus"] == wanted]
        return self.ok(listed)

    def sm_StopTransformJob(self, request: Request, body: dict[str, Any]) -> Response:
        job = self.jobs.get(body.get("TransformJobName", ""))
        if job is None:
            return self.error("ValidationException", "Could not find requested job with name.")
        if job.status == "InProgress":
            job.status = "Stopping"
            job.stop.set()
        return self.ok({})

    # --- training jobs (extension 13) ----------------------------------------------------------

    def sm_CreateTrainingJob(self, request: Request, body: dict[str, Any]) -> Response:
        refused = self._role_missing(body.get("RoleArn", ""))
        if refused is not None:
            return refused
        answer = self.forward(request)
        if answer.status_code == 200:
            training = Training()
            self.trainings[body["TrainingJobName"]] = training
            arn = json.loads(answer.get_data())["TrainingJobArn"]
            threading.Thread(target=self._train, args=(body, arn, training), daemon=True).start()
        return answer

    def _train(self, spec: dict[str, Any], arn: str, training: Training) -> None:
        with tempfile.TemporaryDirectory(prefix="pais-training-") as folder:
            root = Path(folder) / "opt-ml"
            try:
                outcome = self._run_job(spec, arn, root, training)
            except JobFailed as failure:
                outcome, training.failure_reason = "Failed", str(failure)
            except Exception as error:  # the emulator's own fault: fail the job, do not hang it
                outcome = "Failed"
                training.failure_reason = f"InternalServerError: {type(error).__name__}: {error}"
            # AWS keeps the checkpoints in S3 while the job runs: there before it has ended.
            checkpoints = spec.get("CheckpointConfig")
            if checkpoints and (root / "checkpoints").is_dir():
                self._upload_folder(root / "checkpoints", checkpoints["S3Uri"])
            training.status = training.secondary = outcome

    def _run_job(self, spec: dict[str, Any], arn: str, root: Path, training: Training) -> str:
        """The job's steps; its final status (Completed, Stopped), or JobFailed."""
        missing = self._image_missing(spec["AlgorithmSpecification"]["TrainingImage"])
        if missing:
            raise JobFailed(f"ClientError: {missing}")
        training.secondary = "Downloading"
        self._lay_out(spec, root)
        if spec.get("CheckpointConfig"):
            self._copy_prefix(spec["CheckpointConfig"]["S3Uri"], root / "checkpoints")
        if training.stop.is_set():
            return "Stopped"
        training.secondary = "Training"
        status = self._run_training(spec["TrainingJobName"], arn, spec.get("Environment", {}), root, training)
        if training.stop.is_set():
            return "Stopped"
        if status != 0:
            failure = root / "output" / "failure"
            reason = (
                failure.read_text()[:1024].strip()
                if failure.is_file()
                else f"the algorithm exited with status {status}; see the job's log"
            )
            raise JobFailed(f"AlgorithmError: {reason}")
        training.secondary = "Uploading"
        self._upload_model(spec, root / "model")
        return "Completed"

    def _lay_out(self, spec: dict[str, Any], root: Path) -> None:
        """/opt/ml as SageMaker fills it before the container starts (File mode)."""
        config = root / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(spec.get("HyperParameters", {})))
        channels = {}
        for channel in spec.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]["S3Uri"]
            if not self._copy_prefix(source, root / "input" / "data" / channel["ChannelName"]):
                raise JobFailed(
                    f'ClientError: No S3 objects found under S3 URL "{source}" given in input data source. '
                    "Please ensure that the bucket exists in the selected region, that objects exist under "
                    "that S3 prefix, and that the role has permission to read them."
                )
            channels[channel["ChannelName"]] = {
                "TrainingInputMode": channel.get("InputMode", "File"),
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None",
            }
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
        )
        for folder in ("model", "output/data", "checkpoints"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def _copy_prefix(self, uri: str, target: Path) -> int:
        """Every object under an S3 prefix into `target`, by its key relative to the prefix."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        count = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/")
                if not relative or relative.endswith("/"):
                    continue
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                count += 1
        target.mkdir(parents=True, exist_ok=True)
        return count

    def _upload_folder(self, folder: Path, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def _run_training(
        self, name: str, arn: str, environment: dict[str, str], root: Path, training: Training
    ) -> int:
        """The image's container with `train`; its output to the job's log stream."""
        env = service_env(
            **environment,
            TRAINING_JOB_NAME=name,
            TRAINING_JOB_ARN=arn,
            PAIS_SAGEMAKER_ROOT=str(root),  # the container would see /opt/ml
            PAIS_CACHE_DIR=str(root.parent / "cache"),  # the instance's own disk
        )
        training.process = process = spawn(self.runtime.train_command, env)
        logs = moto_client(self.moto_url, "logs")
        stream = f"{name}/algo-1-{int(time.time())}"

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                put_log_line(logs, TRAINING_LOGS, stream, line.rstrip())

        pumping = threading.Thread(target=pump, daemon=True)
        pumping.start()
        while process.poll() is None:
            if training.stop.wait(0.2):
                stop(process, grace_s=20)  # SIGTERM, as SageMaker sends it, then SIGKILL
        pumping.join(30)
        return process.returncode

    def _upload_model(self, spec: dict[str, Any], model: Path) -> None:
        """/opt/ml/model as <S3OutputPath>/<job>/output/model.tar.gz."""
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            for path in sorted(model.rglob("*")):
                tar.add(path, arcname=path.relative_to(model).as_posix(), recursive=False)
        output = spec["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        bucket, _, prefix = output.removeprefix("s3://").partition("/")
        key = f"{prefix}/{spec['TrainingJobName']}/output/model.tar.gz".lstrip("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=data.getvalue())

    def sm_DescribeTrainingJob(self, request: Request, body: dict[str, Any]) -> Response:
        return self._described(request, self.trainings.get(body.get("TrainingJobName", "")), "Training")

    def sm_ListTrainingJobs(self, request: Request, body: dict[str, Any]) -> Response:
        return self._listed(request, body, self.trainings, "Training")

    def sm_StopTrainingJob(self, request: Request, body: dict[str, Any]) -> Response:
        training = self.trainings.get(body.get("TrainingJobName", ""))
        if training is None:
            return self.error("ValidationException", "Requested resource not found.")
        if training.status == "InProgress":
            training.status = training.secondary = "Stopping"
            training.stop.set()
        return self.ok({})

    # --- runtime -----------------------------------------------------------------------------

    def _serving(self, name: str) -> Fleet | Response:
        fleet = self.fleets.get(name)
        if fleet is None or fleet.status not in ("InService", "Updating") or not fleet.variants:
            return Response(
                json.dumps({"message": f"Endpoint {name} of account {ACCOUNT} not found."}),
                status=400,
                headers={"x-amzn-ErrorType": "ValidationError"},
                mimetype="application/json",
            )
        return fleet

    def invoke(self, request: Request, name: str) -> Response:
        fleet = self._serving(name)
        if isinstance(fleet, Response):
            return fleet
        wanted = request.headers.get("X-Amzn-SageMaker-Target-Variant")
        variants = [v for v in fleet.variants if v.name == wanted] if wanted else fleet.variants
        variant = (
            random.choices(variants, weights=[v.weight for v in variants])[0]
            if any(v.weight for v in variants)
            else variants[0]
        )
        headers = {"Content-Type": request.headers.get("Content-Type", "application/octet-stream")}
        for header in ("Accept", "X-Amzn-SageMaker-Custom-Attributes"):
            if header in request.headers:
                headers[header] = request.headers[header]
        reply = self.http.post(
            variant.container.url + "/invocations", content=request.get_data(), headers=headers
        )
        if reply.status_code >= 300:
            return Response(
                json.dumps(
                    {
                        "message": f"Received client error ({reply.status_code}) from primary with message "
                        f'"{reply.text[:500]}". See CloudWatch logs for more information.',
                        "OriginalStatusCode": reply.status_code,
                        "OriginalMessage": reply.text,
                        "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
                        f"/aws/sagemaker/Endpoints/{name}",
                    }
                ),
                status=424,
                headers={"x-amzn-ErrorType": "ModelError"},
                mimetype="application/json",
            )
        answer = Response(
            reply.content, status=200, mimetype=None, content_type=reply.headers.get("content-type")
        )
        answer.headers["x-Amzn-Invoked-Production-Variant"] = variant.name
        if "x-amzn-sagemaker-custom-attributes" in reply.headers:
            answer.headers["X-Amzn-SageMaker-Custom-Attributes"] = reply.headers[
                "x-amzn-sagemaker-custom-attributes"
            ]
        return answer

    def invoke_async(self, request: Request, name: str) -> Response:
        fleet = self._serving(name)
        if isinstance(fleet, Response):
            return fleet
        if not fleet.is_async:
            return Response(
                json.dumps({"message": f"Endpoint {name} is not an asynchronous endpoint."}),
                status=400,
                headers={"x-amzn-ErrorType": "ValidationError"},
                mimetype="application/json",
            )
        inference = request.headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        output = fleet.is_async["OutputConfig"]
        output_uri = f"{output['S3OutputPath'].rstrip('/')}/{inference}.out"
        failure_uri = (
            f"{output.get('S3FailurePath', output['S3OutputPath']).rstrip('/')}/{inference}-error.out"
        )
        bucket, _, key = (
            request.headers["X-Amzn-SageMaker-InputLocation"].removeprefix("s3://").partition("/")
        )
        payload = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        headers = {
            "Content-Type": request.headers.get("X-Amzn-SageMaker-Content-Type", "application/octet-stream")
        }
        if "X-Amzn-SageMaker-Custom-Attributes" in request.headers:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.headers[
                "X-Amzn-SageMaker-Custom-Attributes"
            ]
        url = fleet.variants[0].container.url + "/invocations"
        threading.Thread(
            target=self._async_work, args=(url, payload, headers, output_uri, failure_uri), daemon=True
        ).start()
        answer = Response(json.dumps({"InferenceId": inference}), status=202, mimetype="application/json")
        answer.headers["X-Amzn-SageMaker-OutputLocation"] = output_uri
        answer.headers["X-Amzn-SageMaker-FailureLocation"] = failure_uri
        return answer

    def _async_work(
        self, url: str, payload: bytes, headers: dict[str, str], output: str, failure: str
    ) -> None:
        reply = self.http.post(url, content=payload, headers=headers)
        target = output if reply.status_code < 300 else failure
        bucket, _, key = target.removeprefix("s3://").partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=reply.content)


class JobFailed(Exception):
    pass


TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"


_STRATEGIES = {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}


def _mini_batches(lines: list[bytes], single: bool, limit: int) -> Iterator[list[bytes]]:
    """Whole lines: one at a time, or as many as fit in `limit` bytes (at least one)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and (single or size + len(line) + 1 > limit):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        yield batch


def _record_in_moto(endpoint: str, config: str) -> None:
    """Keep moto's own record of the endpoint on the config it now runs (in process)."""
    from moto.sagemaker.models import sagemaker_backends

    record = sagemaker_backends[ACCOUNT][REGION].endpoints.get(endpoint)
    if record is not None:
        record.endpoint_config_name = config


_widened = False


def widen_moto_instance_types() -> None:
    """Extension 6: moto's endpoint-config check accepts botocore's instance-type enum."""
    global _widened
    if _widened:
        return
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig

    from deploy.plan import enum_values

    allowed = set(enum_values("sagemaker", "ProductionVariantInstanceType"))

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if instance_type not in allowed:
            raise ValidationError(
                message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: "
                "Member must satisfy enum value set"
            )

    FakeEndpointConfig.validate_instance_type = validate_instance_type
    _widened = True


def publish_managed_policy(name: str) -> None:
    """Extension 9: an AWS managed policy, as every real account has it."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[ACCOUNT]["aws"]
    policy = AWSManagedPolicy.from_data(name, ACCOUNT, "aws", json.loads(aws_managed_policies_data)[name])
    backend.managed_policies.setdefault(policy.arn, policy)


def publish_dlami_parameter(moto_url: str) -> str:
    """Extension 8: the DLAMI parameter, pointing at an Amazon-owned image moto knows."""
    from moto.ssm.models import Parameter, ssm_backends

    from deploy.ec2.ami import DLAMI_PARAMETER

    images = moto_client(moto_url, "ec2").describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["Deep Learning AMI Ubuntu*"]}]
    )["Images"]
    image_id = images[0]["ImageId"]
    store = ssm_backends[ACCOUNT][REGION]._parameters
    if not store.get(DLAMI_PARAMETER):
        store[DLAMI_PARAMETER].append(
            Parameter(
                account_id=ACCOUNT,
                name=DLAMI_PARAMETER,
                value=image_id,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=time.time(),
                version=1,
                data_type="aws:ec2:image",
            )
        )
    return image_id


@contextlib.contextmanager
def emulator(moto_url: str, runtime: ContainerRuntime | None = None) -> Iterator[AwsEmulator]:
    with AwsEmulator(moto_url, runtime or entrypoint_runtime()) as running:
        yield running
