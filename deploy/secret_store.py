"""Secrets for the container: `--secret NAME=VALUE` stored in SSM Parameter Store, passed by
reference.

Each value becomes a SecureString parameter `/pais/<deployment>/<NAME>` (encrypted with the
account's AWS managed key aws/ssm, whose key policy lets every IAM principal of the account
decrypt, so the container's role needs only ssm:GetParameters on `/pais/<deployment>/*`).
What the SageMaker model's Environment or the EC2 user data receive is only
`PAIS_SECRETS_FROM_SSM=NAME=<parameter ARN>,...`; the container's entrypoint reads the
values at start-up with its own role (deploy/entrypoint.py). The values never enter a
plan, a log line or an output of this tool: they travel as `Secret`, which plans print as
`<secret>`.

`--env` refuses names that look like secrets (…KEY, …TOKEN, …SECRET, …PASSWORD), so that a
key is not put into user data by habit.
"""

from __future__ import annotations

import os
import re

from .aws import Aws
from .entrypoint import SECRETS_FROM_SSM
from .errors import DeployError
from .naming import key_value_tags
from .ownership import SSM_PARAMETER, Ownership
from .plan import Secret

# Environment names that hold secrets; `--env` refuses them.
_SECRET_NAME = re.compile(r"(^|_)(API_?KEYS?|KEYS?|TOKENS?|SECRETS?|PASSWORDS?|PASSWD|CREDENTIALS?)($|_)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAMETER_ROOT = "/pais"


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.upper()))


def check_env(env: dict[str, str]) -> None:
    """`--env` values end up in user data or the model's Environment: no secrets there."""
    for name in env:
        if looks_secret(name):
            raise DeployError(
                f"--env {name}=... looks like a secret, and --env values are readable by anyone who "
                f"may describe the instance or model: pass --secret {name} (value from your "
                f"environment) or --secret {name}=VALUE instead; it is stored in SSM Parameter Store "
                "and the container reads it at start-up"
            )


def parse_secrets(values: list[str], environ: dict[str, str] | None = None) -> dict[str, Secret]:
    """`--secret NAME=VALUE`, or `--secret NAME` to take the value from this process's
    environment (so that it is in neither the shell history nor the process list)."""
    environ = os.environ if environ is None else environ
    found: dict[str, Secret] = {}
    for value in values:
        name, sep, item = value.partition("=")
        if not _ENV_NAME.match(name):
            raise DeployError(f"--secret: {name!r} is not an environment variable name (NAME or NAME=VALUE)")
        if not sep:
            if not environ.get(name):
                raise DeployError(
                    f"--secret {name}: no value given, and ${name} is not set in this environment"
                )
            item = environ[name]
        if not item:
            raise DeployError(f"--secret {name}: the value is empty")
        found[name] = Secret(item)
    return found


def parameter_name(deployment: str, name: str) -> str:
    return f"{PARAMETER_ROOT}/{deployment}/{name}"


def parameter_arn(aws: Aws, name: str) -> str:
    return aws.arn("ssm", f"parameter{name}")


def parameters_arn_pattern(aws: Aws, deployment: str) -> str:
    """What the container's role may read: the deployment's parameters, nothing else."""
    return parameter_arn(aws, f"{PARAMETER_ROOT}/{deployment}/*")


def store(
    aws: Aws,
    owner: Ownership,
    deployment: str,
    values: dict[str, str],
    tags: dict[str, str],
    kind: str = "SecureString",
) -> dict[str, str]:
    """Put each value in its parameter (a new version when it exists and is the tool's);
    returns {NAME: parameter ARN}. Values that are `Secret` never show in a plan."""
    arns = {}
    for name, value in values.items():
        parameter = parameter_name(deployment, name)
        if exists(aws, parameter):
            owner.require(SSM_PARAMETER, parameter, "get a new value")
            # AWS refuses Tags together with Overwrite: an existing parameter keeps its own.
            aws.write("ssm", "PutParameter", Name=parameter, Value=value, Type=kind, Overwrite=True)
        else:
            aws.write(
                "ssm",
                "PutParameter",
                Name=parameter,
                Value=value,
                Type=kind,
                Description=f"PAIS {deployment}: {name}, read by the container at start-up",
                Tags=key_value_tags(tags),
            )
        arns[name] = parameter_arn(aws, parameter)
    return arns


def parameter_names(arns: dict[str, str]) -> dict[str, str]:
    """{NAME: parameter ARN} -> {NAME: parameter name}, for the command's output."""
    return {name: arn.split(":parameter", 1)[1] for name, arn in arns.items()}


def reference_env(arns: dict[str, str]) -> dict[str, str]:
    """The one variable the container gets instead of the values."""
    return {SECRETS_FROM_SSM: ",".join(f"{name}={arn}" for name, arn in arns.items())} if arns else {}


def exists(aws: Aws, parameter: str) -> bool:
    # without decryption: the value stays sealed
    return aws.find("ssm", "GetParameter", Name=parameter) is not None


def delete_all(aws: Aws, owner: Ownership, deployment: str) -> list[str]:
    """Delete the deployment's parameters that the tool made (teardown)."""
    deleted, token = [], None
    while True:
        page = aws.read(
            "ssm",
            "DescribeParameters",
            ParameterFilters=[
                {"Key": "Name", "Option": "BeginsWith", "Values": [f"{PARAMETER_ROOT}/{deployment}/"]}
            ],
            **({"NextToken": token} if token else {}),
        )
        for parameter in page.get("Parameters", []):
            if owner.may_change(SSM_PARAMETER, parameter["Name"], "be deleted"):
                aws.write("ssm", "DeleteParameter", Name=parameter["Name"])
                deleted.append(parameter["Name"])
        token = page.get("NextToken")
        if not token:
            return deleted
