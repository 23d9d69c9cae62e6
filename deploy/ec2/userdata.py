"""The user-data script: what a fresh Deep Learning AMI instance runs once at first boot.

It logs in to ECR with the instance role, downloads the model artifacts and checks their
sha256, pulls the image by digest and runs it with every GPU, a restart policy (so a
reboot brings it back), the service port published, the artifacts mounted where SageMaker
would put them (/opt/ml/model), and docker's awslogs driver sending the container's output
to CloudWatch Logs.

User data is readable by anyone who may call DescribeInstanceAttribute, and by every
process on the instance through the metadata service: it holds no secret. Secrets and the
TLS key reach the container as SSM parameter references, which its entrypoint resolves
with the instance role (deploy/entrypoint.py); the container's environment file is still
written 0600. tests/aws_emulator.py runs this script with stand-in `aws` and `docker`.
"""

from __future__ import annotations

import shlex

from ..errors import DeployError
from ..secret_store import check_env

CONTAINER_PORT = 8080


def render(
    *,
    region: str,
    registry: str,
    image: str,
    port: int,
    log_group: str,
    env: dict[str, str],
    entrypoint_env: dict[str, str] | None = None,
    model_data: str | None = None,
    model_sha256: str | None = None,
    gpus: bool = True,
    command: str = "serve",
) -> str:
    for key, value in env.items():
        if "\n" in value or "\n" in key or "=" in key:
            raise DeployError(f"--env {key}: names cannot hold '=' and values cannot hold line breaks")
    check_env(env)
    if "@sha256:" not in image:
        raise DeployError(f"the instance must run an image by digest, not {image!r}")
    q = shlex.quote
    # entrypoint_env: what the entrypoint reads (secret references, digests), not settings
    container_env = {"SAGEMAKER_BIND_TO_PORT": str(CONTAINER_PORT), **env, **(entrypoint_env or {})}
    lines = [
        "#!/bin/bash",
        "# PAIS on EC2, written by `python -m deploy ec2 deploy`. cloud-init runs it once, as root,",
        "# at first boot; its output goes to /var/log/pais-user-data.log and the console log.",
        "set -euo pipefail",
        'PAIS_ROOT="${PAIS_ROOT:-/opt/pais}"',
        'exec > >(tee -a "${PAIS_LOG:-/var/log/pais-user-data.log}") 2>&1',
        f"REGION={q(region)}",
        f"REGISTRY={q(registry)}",
        f"IMAGE={q(image)}",
        'echo "pais: logging in to $REGISTRY"',
        'aws ecr get-login-password --region "$REGION"'
        ' | docker login --username AWS --password-stdin "$REGISTRY"',
        'mkdir -p "$PAIS_ROOT/model"',
    ]
    mounts = ""
    if model_data:
        if not model_sha256:
            raise DeployError("model artifacts need their sha256 (from `push`) to be checked on the instance")
        lines += [
            f"MODEL_DATA={q(model_data)}",
            f"MODEL_SHA256={q(model_sha256)}",
            'echo "pais: downloading $MODEL_DATA"',
            'aws s3 cp --region "$REGION" --only-show-errors "$MODEL_DATA" "$PAIS_ROOT/model.tar.gz"',
            'echo "$MODEL_SHA256  $PAIS_ROOT/model.tar.gz" | sha256sum --check --strict -',
            'tar -xzf "$PAIS_ROOT/model.tar.gz" -C "$PAIS_ROOT/model"',
            'rm -f "$PAIS_ROOT/model.tar.gz"',
        ]
        mounts = ' --volume "$PAIS_ROOT/model:/opt/ml/model:ro"'
    lines += [
        "# the container's environment: root's alone (umask and chmod, should the file exist)",
        "(",
        "umask 077",
        "cat >\"$PAIS_ROOT/env\" <<'PAIS_ENV'",
        *(f"{key}={value}" for key, value in container_env.items()),
        "PAIS_ENV",
        ")",
        'chmod 600 "$PAIS_ROOT/env"',
        'echo "pais: pulling $IMAGE"',
        'docker pull "$IMAGE"',
        "docker rm --force pais >/dev/null 2>&1 || true",
        "docker run --detach --name pais"
        + (" --gpus all" if gpus else "")
        + " --restart unless-stopped"
        + f" --publish {port}:{CONTAINER_PORT}"
        + ' --env-file "$PAIS_ROOT/env"'
        + mounts
        + ' --log-driver awslogs --log-opt awslogs-region="$REGION"'
        + f" --log-opt awslogs-group={q(log_group)} --log-opt awslogs-create-group=true"
        + f' "$IMAGE" {q(command)}',
        'echo "pais: container started; it answers /readyz once the models are loaded"',
    ]
    return "\n".join(lines) + "\n"
