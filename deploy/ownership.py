"""Which AWS resources the tool may change: only those it made for the deployment at hand.

Every resource the tool creates carries `pais:deployment=<name>` and
`pais:managed-by=python -m deploy`. Before any call that deletes, stops, updates, rewrites
or revokes something on a resource it did not create in the same run, it reads that
resource's tags here. A resource without both tags (hand-made, or made for another
deployment) is left alone and named in the command's output (`left_alone`, with the
reason), unless the user named it in `--force-adopt`: then it is tagged first (so that it
is the tool's from then on) and the change goes ahead; in a dry run both show in the plan.

Names are never proof: `pais-<name>-sagemaker`, `pais-<name>` and `<name>-batch-...` can be
made by anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, is_not_found
from .errors import DeployError
from .naming import DEPLOYMENT_TAG, MANAGED_BY, MANAGED_TAG, key_value_tags, resource_tags, tag_dict

# Tags of a resource by its identifier (a name or an ARN); None when it does not exist.
ReadTags = Callable[[Aws, str], "dict[str, str] | None"]
AddTags = Callable[[Aws, str, "dict[str, str]"], None]


@dataclass(frozen=True)
class Kind:
    """A kind of AWS resource: what people call it and how its tags are read and added."""

    label: str
    read: ReadTags
    add: AddTags | None  # None: never adopted (S3: --purge-artifacts deletes only what push wrote)


def _absent_is_none(read: Callable[[Aws, str], dict[str, str]]) -> ReadTags:
    def guarded(aws: Aws, ident: str) -> dict[str, str] | None:
        try:
            return read(aws, ident)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    return guarded


def _s3_bucket_tags(aws: Aws, bucket: str) -> dict[str, str]:
    try:
        return tag_dict(aws.read("s3", "GetBucketTagging", Bucket=bucket)["TagSet"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return {}
        raise


def _s3_object_tags(aws: Aws, uri: str) -> dict[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return tag_dict(aws.read("s3", "GetObjectTagging", Bucket=bucket, Key=key)["TagSet"])


def _log_group_arn(aws: Aws, name: str) -> str:
    return aws.arn("logs", f"log-group:{name}")


def _sagemaker(label: str) -> Kind:
    return Kind(
        label,
        _absent_is_none(
            lambda aws, arn: tag_dict(aws.read("sagemaker", "ListTags", ResourceArn=arn)["Tags"])
        ),
        lambda aws, arn, tags: aws.write("sagemaker", "AddTags", ResourceArn=arn, Tags=key_value_tags(tags)),
    )


SAGEMAKER_ENDPOINT = _sagemaker("SageMaker endpoint")
SAGEMAKER_CONFIG = _sagemaker("SageMaker endpoint config")
SAGEMAKER_MODEL = _sagemaker("SageMaker model")
SAGEMAKER_JOB = _sagemaker("SageMaker transform job")
SAGEMAKER_TRAINING_JOB = _sagemaker("SageMaker training job")
IAM_ROLE = Kind(
    "IAM role",
    _absent_is_none(
        lambda aws, name: tag_dict(aws.read("iam", "GetRole", RoleName=name)["Role"].get("Tags"))
    ),
    lambda aws, name, tags: aws.write("iam", "TagRole", RoleName=name, Tags=key_value_tags(tags)),
)
INSTANCE_PROFILE = Kind(
    "IAM instance profile",
    _absent_is_none(
        lambda aws, name: tag_dict(
            aws.read("iam", "GetInstanceProfile", InstanceProfileName=name)["InstanceProfile"].get("Tags")
        )
    ),
    lambda aws, name, tags: aws.write(
        "iam", "TagInstanceProfile", InstanceProfileName=name, Tags=key_value_tags(tags)
    ),
)
SECURITY_GROUP = Kind(
    "security group",
    _absent_is_none(
        lambda aws, group_id: tag_dict(
            aws.read("ec2", "DescribeSecurityGroups", GroupIds=[group_id])["SecurityGroups"][0].get("Tags")
        )
    ),
    lambda aws, group_id, tags: aws.write(
        "ec2", "CreateTags", Resources=[group_id], Tags=key_value_tags(tags)
    ),
)
LOG_GROUP = Kind(
    "log group",
    _absent_is_none(
        lambda aws, name: aws.read("logs", "ListTagsForResource", resourceArn=_log_group_arn(aws, name))[
            "tags"
        ]
    ),
    lambda aws, name, tags: aws.write(
        "logs", "TagResource", resourceArn=_log_group_arn(aws, name), tags=tags
    ),
)
ECR_REPOSITORY = Kind(
    "ECR repository",
    _absent_is_none(
        lambda aws, arn: tag_dict(aws.read("ecr", "ListTagsForResource", resourceArn=arn)["tags"])
    ),
    lambda aws, arn, tags: aws.write("ecr", "TagResource", resourceArn=arn, tags=key_value_tags(tags)),
)
ALARM = Kind(
    "CloudWatch alarm",
    _absent_is_none(
        lambda aws, arn: tag_dict(aws.read("cloudwatch", "ListTagsForResource", ResourceARN=arn)["Tags"])
    ),
    lambda aws, arn, tags: aws.write("cloudwatch", "TagResource", ResourceARN=arn, Tags=key_value_tags(tags)),
)
S3_BUCKET = Kind("S3 bucket", _absent_is_none(_s3_bucket_tags), None)
S3_OBJECT = Kind("S3 object", _absent_is_none(_s3_object_tags), None)
SSM_PARAMETER = Kind(
    "SSM parameter",
    _absent_is_none(
        lambda aws, name: tag_dict(
            aws.read("ssm", "ListTagsForResource", ResourceType="Parameter", ResourceId=name)["TagList"]
        )
    ),
    lambda aws, name, tags: aws.write(
        "ssm", "AddTagsToResource", ResourceType="Parameter", ResourceId=name, Tags=key_value_tags(tags)
    ),
)


def made_by_tool(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_TAG) == MANAGED_BY


def why_not_ours(tags: dict[str, str], deployment: str) -> str | None:
    """None when `tags` mark a resource of `deployment` made by this tool; else why not."""
    found = tags.get(DEPLOYMENT_TAG)
    if not made_by_tool(tags):
        return f"not tagged {MANAGED_TAG}={MANAGED_BY!r}: not made by this tool" + (
            f" (though tagged {DEPLOYMENT_TAG}={found})" if found else ""
        )
    if found != deployment:
        return f"made by this tool for deployment {found!r}, not {deployment!r}"
    return None


@dataclass
class Ownership:
    """The ownership checks of one command for one deployment (`shared` for what `push`
    makes), and what they decided."""

    aws: Aws
    deployment: str
    adopt: frozenset[str] = frozenset()
    extra_tags: dict[str, str] = field(default_factory=dict)
    left_alone: list[dict[str, str]] = field(default_factory=list)
    adopted: list[dict[str, str]] = field(default_factory=list)

    def may_change(
        self,
        kind: Kind,
        name: str,
        change: str,
        ident: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> bool:
        """Whether the tool may `change` (e.g. "delete it") the resource called `name`
        (`ident`: its ARN or id where the tag calls need that). `tags`: already known (from
        a describe call) or read here. A resource that no longer exists is not changed."""
        ident = ident or name
        if tags is None:
            tags = kind.read(self.aws, ident)
            if tags is None:
                return False
        reason = why_not_ours(tags, self.deployment)
        if reason is None:
            return True
        if kind.add is not None and (name in self.adopt or ident in self.adopt):
            mine = resource_tags(self.deployment, self.extra_tags)
            self.aws.note(
                f"--force-adopt: {kind.label} {name} ({reason}) is tagged as this tool's and will {change}"
            )
            kind.add(self.aws, ident, mine)
            self.adopted.append({"kind": kind.label, "name": name, "change": change, "was": reason})
            return True
        self.left_alone.append(
            {
                "kind": kind.label,
                "name": name,
                "reason": f"{reason}; would {change}; pass --force-adopt {name} to let the tool take it over",
            }
        )
        return False

    def require(self, kind: Kind, name: str, change: str, *, instead: str = "", **found: Any) -> None:
        """As `may_change` (`found`: its ident and tags), for a resource the command cannot
        do without: stop with a message that names it and what to do (`instead`), rather
        than go on without it."""
        if not self.may_change(kind, name, change, **found):
            reason = self.left_alone[-1]["reason"] if self.left_alone else "it does not exist"
            raise DeployError(
                f"{kind.label} {name} exists and is left alone: {reason}"
                + (f"; {instead}" if instead else "")
            )

    def report(self) -> dict[str, Any]:
        """What goes into the command's output: every resource left alone, and adopted."""
        found: dict[str, Any] = {}
        if self.left_alone:
            found["left_alone"] = self.left_alone
        if self.adopted:
            found["adopted"] = self.adopted
        return found
