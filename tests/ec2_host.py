"""An EC2 instance as the deploy tests emulate it (tests/aws_emulator.py, extension 10).

What AWS does, and the tool relies on: at first boot cloud-init runs the user data as root;
the Deep Learning AMI has the AWS CLI (acting with the instance role) and Docker with the
NVIDIA runtime; `docker run --env-file F --volume H:/opt/ml/model:ro --publish P:8080 IMAGE
serve` starts the image's entrypoint with F's variables, H mounted, the container's port
8080 reachable on the instance's public address at port P; the instance role's credentials
reach the container through IMDSv2 (hop limit 2).

Here: the user data runs with bash, with stand-in `aws` (ECR login answers a token; `s3 cp`
downloads from moto's S3 with this machine's credentials standing for the instance role)
and `docker` (records its arguments; `login` reads the password from stdin). Once the
script succeeds, the host starts what the recorded `docker run` asks for as a local process:
this repository's entrypoint (what the image holds), with the env file's variables, the
mounted folder as PAIS_MODEL_DIR, bound to the instance's own loopback address and the
published port, and moto standing for AWS (the instance role); an image that moto's ECR
does not hold is not started (`docker pull` would have failed). Each instance gets its own
address in 127.0.0.0/8, as each real instance has its own public address.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .servers import REPO, service_env, stop

STAND_IN_AWS = f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["STAND_IN_RECORD"], "a") as log:
    log.write(json.dumps({{"tool": "aws", "argv": argv}}) + "\\n")
if argv[:2] == ["ecr", "get-login-password"]:
    print(os.environ["STAND_IN_TOKEN"])
elif argv[:2] == ["s3", "cp"]:
    source, target = [a for a in argv[2:] if a.startswith("s3://") or a.startswith("/")][:2]
    if os.environ.get("STAND_IN_CORRUPT"):
        open(target, "wb").write(b"tampered in transit")
    else:
        import boto3
        bucket, key = source[5:].split("/", 1)
        s3 = boto3.client("s3", endpoint_url=os.environ["STAND_IN_MOTO"], region_name="us-east-1")
        s3.download_file(bucket, key, target)
"""

STAND_IN_DOCKER = f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
record = {{"tool": "docker", "argv": argv}}
if "--password-stdin" in argv:
    record["stdin"] = sys.stdin.read().strip()
with open(os.environ["STAND_IN_RECORD"], "a") as log:
    log.write(json.dumps(record) + "\\n")
"""

# What the stand-in ECR login hands docker: the instance role's token.
TOKEN = "ecr-token-from-the-instance-role"
CONTAINER_PORT = "8080"


@dataclass
class UserDataRun:
    """One run of a user-data script: its exit status, the stand-ins' calls, its folders."""

    code: int
    calls: list[dict]
    root: Path
    log: Path

    def docker_run(self) -> list[str] | None:
        runs = [c["argv"] for c in self.calls if c["tool"] == "docker" and c["argv"][:1] == ["run"]]
        return runs[-1] if runs else None


def run_user_data(script: str, folder: Path, moto_url: str, **extra: str) -> UserDataRun:
    """Run `script` as cloud-init would, with the stand-ins first on PATH; the instance's
    /opt/pais is `folder`/root and its log `folder`/user-data.log."""
    tools = folder / "bin"
    tools.mkdir(parents=True, exist_ok=True)
    for name, body in (("aws", STAND_IN_AWS), ("docker", STAND_IN_DOCKER)):
        (tools / name).write_text(body)
        (tools / name).chmod(0o755 | stat.S_IEXEC)
    (folder / "user-data.sh").write_text(script)
    record = folder / "record.jsonl"
    record.touch()
    log = folder / "user-data.log"
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "PAIS_ROOT": str(folder / "root"),
        "PAIS_LOG": str(log),
        "STAND_IN_RECORD": str(record),
        "STAND_IN_TOKEN": TOKEN,
        "STAND_IN_MOTO": moto_url,
        **extra,
    }
    done = subprocess.run(
        ["bash", str(folder / "user-data.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    return UserDataRun(done.returncode, calls, folder / "root", log)


def env_file(path: Path) -> dict[str, str]:
    """What `docker run --env-file` reads: NAME=VALUE lines."""
    found = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = value
    return found


@dataclass
class Host:
    """One emulated instance: boots (runs its user data, then its container) in a thread."""

    instance_id: str
    address: str
    script: str
    moto_url: str
    image_missing: Callable[[str], str | None]  # why `docker pull` of an image fails, or None
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pais-instance-")))
    boot: UserDataRun | None = None
    refused: str | None = None
    container: subprocess.Popen | None = None
    container_log: Path | None = None
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._boot, daemon=True).start()

    def _boot(self) -> None:
        self.boot = run_user_data(self.script, self.folder, self.moto_url)
        argv = self.boot.docker_run()
        if self.boot.code != 0 or argv is None:
            return
        with self.lock:
            if not self.stopped.is_set():
                self.container = self._run_container(argv)

    def _run_container(self, argv: list[str]) -> subprocess.Popen | None:
        """`docker run ... --env-file F [--volume H:/opt/ml/model:ro] --publish P:8080 ...
        IMAGE COMMAND`, as the entrypoint process it stands for."""

        def option(name: str) -> str | None:
            return argv[argv.index(name) + 1] if name in argv else None

        variables = env_file(Path(option("--env-file")))
        host_port, _, container_port = option("--publish").partition(":")
        assert container_port == variables["SAGEMAKER_BIND_TO_PORT"] == CONTAINER_PORT
        # The deploy tests call classification only: serving just that task keeps the
        # process at ~1 GB (as the emulated SageMaker containers do).
        variables.setdefault("PAIS_TASKS", "classification")
        variables["SAGEMAKER_BIND_TO_PORT"] = host_port
        volume = option("--volume")
        if volume:
            variables["PAIS_MODEL_DIR"] = volume.split(":")[0]
        image_at = next(index for index, arg in enumerate(argv) if "@sha256:" in arg)
        command = argv[image_at + 1 :]
        self.refused = self.image_missing(argv[image_at])
        if self.refused:
            return None
        self.container_log = self.folder / "container.log"
        return subprocess.Popen(
            [sys.executable, "-m", "deploy.entrypoint", *command, "--host", self.address],
            cwd=REPO,
            env=service_env(**variables),
            stdout=self.container_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def terminate(self) -> None:
        with self.lock:
            self.stopped.set()
            if self.container is not None:
                stop(self.container, grace_s=20)
