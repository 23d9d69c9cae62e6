"""The ECR repository the image lives in, and the digest every deployment refers to.

The repository is made (or brought into line) idempotently: immutable tags (a tag always
means the same bytes), scan on push, encryption, and a lifecycle policy. A repository of
that name the tool did not make is not touched (its lifecycle policy would expire images):
the push stops and says so (`--force-adopt <repository>` takes it over). Deployments never
use a tag: they resolve it to the digest ECR reports and run `<repository>@sha256:...`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, is_not_found
from .errors import DeployError
from .naming import key_value_tags
from .ownership import ECR_REPOSITORY, Ownership

UNTAGGED_EXPIRY_DAYS = 7


def lifecycle_policy(keep_images: int) -> dict[str, Any]:
    """Expire untagged images after a week and keep the newest `keep_images` tagged ones.

    Deployments pull by digest, so an expired image breaks any endpoint or instance still
    using it the next time it scales out or restarts: keep more images than live deployments.
    """
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": UNTAGGED_EXPIRY_DAYS,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the newest {keep_images} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


@dataclass(frozen=True)
class Repository:
    name: str
    uri: str
    arn: str

    @property
    def registry(self) -> str:
        return self.uri.split("/", 1)[0]


@dataclass(frozen=True)
class ImageRef:
    repository_uri: str
    digest: str
    tags: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"{self.repository_uri}@{self.digest}"


def registry_host(aws: Aws) -> str:
    suffix = "amazonaws.com.cn" if aws.partition == "aws-cn" else "amazonaws.com"
    return f"{aws.account_id}.dkr.ecr.{aws.region}.{suffix}"


def repository_ref(aws: Aws, name: str) -> Repository:
    """Where `name` is or will be, without asking ECR."""
    return Repository(name, f"{registry_host(aws)}/{name}", aws.arn("ecr", f"repository/{name}"))


def find_repository(aws: Aws, name: str) -> dict[str, Any] | None:
    try:
        return aws.read("ecr", "DescribeRepositories", repositoryNames=[name])["repositories"][0]
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def ensure_repository(
    aws: Aws, owner: Ownership, name: str, tags: dict[str, str], keep_images: int
) -> Repository:
    """Create the repository, or bring the tool's existing one into line; idempotent."""
    found = find_repository(aws, name)
    if found is not None:
        owner.require(
            ECR_REPOSITORY,
            name,
            f"become tag-immutable and scanned on push, and keep only its newest {keep_images} images "
            "(a lifecycle policy)",
            ident=found["repositoryArn"],
            instead="pass --repository <another name>",
        )
    if found is None:
        aws.write(
            "ecr",
            "CreateRepository",
            repositoryName=name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
            tags=key_value_tags(tags),
        )
    else:
        if found.get("imageTagMutability") != "IMMUTABLE":
            aws.write("ecr", "PutImageTagMutability", repositoryName=name, imageTagMutability="IMMUTABLE")
        if not found.get("imageScanningConfiguration", {}).get("scanOnPush"):
            aws.write(
                "ecr",
                "PutImageScanningConfiguration",
                repositoryName=name,
                imageScanningConfiguration={"scanOnPush": True},
            )
    wanted = lifecycle_policy(keep_images)
    if found is None or _current_lifecycle_policy(aws, name) != wanted:
        aws.write("ecr", "PutLifecyclePolicy", repositoryName=name, lifecyclePolicyText=json.dumps(wanted))
    if found is not None:
        return Repository(name, found["repositoryUri"], found["repositoryArn"])
    return repository_ref(aws, name)


def _current_lifecycle_policy(aws: Aws, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(aws.read("ecr", "GetLifecyclePolicy", repositoryName=name)["lifecyclePolicyText"])
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def login(aws: Aws) -> tuple[str, str, str]:
    """(registry host, user name, password) for `docker login` and friends."""
    data = aws.read("ecr", "GetAuthorizationToken")["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return data["proxyEndpoint"].removeprefix("https://"), user, password


def resolve_image(aws: Aws, repository: str, reference: str | None) -> ImageRef:
    """The digest of an image in `repository`: the newest one pushed when `reference` is
    None, else a tag, `<uri>:<tag>` or `<uri>@sha256:...` (checked to exist)."""
    repo = find_repository(aws, repository)
    if repo is None:
        raise DeployError(f"ECR repository {repository!r} does not exist: run `python -m deploy push` first")
    image_id: dict[str, str] | None = None
    if reference:
        if "@" in reference:
            image_id = {"imageDigest": reference.rsplit("@", 1)[1]}
        else:
            image_id = {"imageTag": reference.rsplit(":", 1)[1] if "/" in reference else reference}
    if image_id is None:
        details = [
            image
            for page in _pages(aws, "DescribeImages", repositoryName=repository)
            for image in page["imageDetails"]
        ]
        if not details:
            raise DeployError(
                f"ECR repository {repository!r} has no images: run `python -m deploy push` first"
            )
        newest = max(details, key=lambda image: image["imagePushedAt"])
        return ImageRef(repo["repositoryUri"], newest["imageDigest"], tuple(newest.get("imageTags", ())))
    try:
        found = aws.read("ecr", "DescribeImages", repositoryName=repository, imageIds=[image_id])
    except ClientError as error:
        if is_not_found(error):
            raise DeployError(f"no image {image_id} in ECR repository {repository!r}") from None
        raise
    image = found["imageDetails"][0]
    return ImageRef(repo["repositoryUri"], image["imageDigest"], tuple(image.get("imageTags", ())))


def _pages(aws: Aws, operation: str, **params: Any) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = aws.read("ecr", operation, **params)
        pages.append(page)
        if not page.get("nextToken"):
            return pages
        params["nextToken"] = page["nextToken"]
