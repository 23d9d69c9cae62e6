"""Names and tags the tool gives AWS resources, so that it can find them again.

Every resource made for a deployment carries the tag `pais:deployment=<name>`; teardown
and status find resources by that tag or by the names derived here, never by guessing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import DeployError

DEPLOYMENT_TAG = "pais:deployment"
MANAGED_TAG = "pais:managed-by"
MANAGED_BY = "python -m deploy"

# SageMaker names: letters, digits and single hyphens, at most 63 characters. Models and
# endpoint configs are named `<deployment>-<stamp>`, so the deployment name leaves room.
_NAME = re.compile(r"^[a-zA-Z0-9](-?[a-zA-Z0-9])*$")
MAX_NAME = 40


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise DeployError(
            f"deployment name {name!r} is not accepted: use 1-{MAX_NAME} letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )
    return name


def stamp(now: datetime | None = None) -> str:
    """A UTC time stamp that sorts and fits SageMaker names: 20250131-142501."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def versioned(name: str, now: datetime | None = None) -> str:
    return f"{name}-{stamp(now)}"


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
    """`--env PAIS_DEVICE=cpu --env PAIS_MAX_IMAGES_PER_REQUEST=8` -> a dict."""
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
