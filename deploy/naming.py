"""Names and tags the tool gives AWS resources, so that it can find them again.

Every resource made for a deployment carries the tags `pais:deployment=<name>` and
`pais:managed-by=python -m deploy`; teardown and status find resources by those tags or by
the names derived here, and nothing is changed or deleted without them (deploy/ownership.py).

Versioned names (models, endpoint configs, batch and training jobs, image tags) end in
`unique_suffix()`: a UTC time stamp to the millisecond, so that they sort, and a random
part, so that two deploys in the same millisecond, on one machine or two, still get
different names.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from .errors import DeployError

DEPLOYMENT_TAG = "pais:deployment"
MANAGED_TAG = "pais:managed-by"
MANAGED_BY = "python -m deploy"

# yymmddHHMMSSmmm-xxxxx: 15 digits of time, 5 random base-32 characters (2^25 choices).
_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
RANDOM_CHARS = 5
SUFFIX_LENGTH = 15 + 1 + RANDOM_CHARS

# SageMaker names: letters, digits and single hyphens, at most 63 characters. The longest
# names made from a deployment's are its jobs', `<deployment>-batch-<suffix>` (Batch
# Transform) and `<deployment>-train-<suffix>` (training).
SAGEMAKER_MAX = 63
BATCH_INFIX = "-batch-"
TRAIN_INFIX = "-train-"
MAX_NAME = SAGEMAKER_MAX - max(len(BATCH_INFIX), len(TRAIN_INFIX)) - SUFFIX_LENGTH
_NAME = re.compile(r"^[a-zA-Z0-9](-?[a-zA-Z0-9])*$")


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise DeployError(
            f"deployment name {name!r} is not accepted: use 1-{MAX_NAME} letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )
    return name


def now() -> datetime:
    return datetime.now(UTC)


def unique_suffix(moment: datetime | None = None) -> str:
    """`250131142501123-k3v9q`: the time (UTC, to the millisecond) and a random part. The
    clock only orders names; the random part is what keeps them apart."""
    moment = moment or now()
    stamp = moment.strftime("%y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"
    return f"{stamp}-{''.join(secrets.choice(_ALPHABET) for _ in range(RANDOM_CHARS))}"


def batch_job_name(deployment: str, moment: datetime | None = None) -> str:
    return f"{deployment}{BATCH_INFIX}{unique_suffix(moment)}"


def training_job_name(deployment: str, moment: datetime | None = None) -> str:
    return f"{deployment}{TRAIN_INFIX}{unique_suffix(moment)}"


# `<deployment>-<suffix>`; also the earlier `<deployment>-YYYYmmdd-HHMMSS`.
_SUFFIX = re.compile(rf"^(\d{{15}}-[{_ALPHABET}]{{{RANDOM_CHARS}}}|\d{{8}}-\d{{6}})$")


def is_versioned(name: str, deployment: str, infix: str = "-") -> bool:
    """Whether `name` is one the tool makes for `deployment`: `<deployment>-<suffix>` (its
    models and endpoint configs) or, with BATCH_INFIX / TRAIN_INFIX, its batch / training
    jobs. Only the tags can say the tool made it, but no other name is its."""
    prefix = f"{deployment}{infix}"
    return name.startswith(prefix) and bool(_SUFFIX.match(name[len(prefix) :]))


def parse_tags(values: list[str]) -> dict[str, str]:
    """`--tags team=ml,env=prod --tags cost=42` -> {"team": "ml", "env": "prod", "cost": "42"}."""
    tags: dict[str, str] = {}
    for value in values:
        for pair in filter(None, (part.strip() for part in value.split(","))):
            key, sep, item = pair.partition("=")
            if not sep or not key.strip():
                raise DeployError(f"--tags: {pair!r} is not KEY=VALUE")
            tags[key.strip()] = item.strip()
    return tags


def parse_env(values: list[str]) -> dict[str, str]:
    """`--env PAIS_DEVICE=cpu --env PAIS_CLASSIFICATION_MAX_IMAGES=8` -> a dict."""
    env: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise DeployError(f"--env: {value!r} is not NAME=VALUE")
        env[key] = item
    return env


def resource_tags(deployment: str, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, DEPLOYMENT_TAG: deployment, MANAGED_TAG: MANAGED_BY}


def key_value_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    """SageMaker, IAM, EC2 and S3 spell tags as [{"Key": ..., "Value": ...}]."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """[{"Key": ..., "Value": ...}] -> {key: value}."""
    return {t["Key"]: t["Value"] for t in tags or []}
