"""IAM roles with least privilege: what SageMaker or an EC2 instance needs to run PAIS.

Each role may only: pull the one ECR repository (plus ecr:GetAuthorizationToken, which has
no resource), read the S3 prefix the model artifacts live under, write CloudWatch Logs in
its own log groups, and (SageMaker) write its async/batch outputs. The trust policy names
one service principal and, for SageMaker, only this account may pass it (confused-deputy
guard). EC2 instances also get the AWS managed AmazonSSMManagedInstanceCore policy, so that
Session Manager replaces SSH.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, is_not_found
from .errors import DeployError
from .naming import key_value_tags, resource_tags, tag_dict
from .ownership import IAM_ROLE, INSTANCE_PROFILE, Ownership

POLICY_NAME = "pais"
SSM_MANAGED_POLICY = "AmazonSSMManagedInstanceCore"


def _statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(set(resources))}


def s3_object_arns(partition: str, uris: list[str]) -> list[str]:
    """`s3://bucket/prefix/` -> arn:...:s3:::bucket/prefix/* (an object key is kept exact)."""
    arns = []
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        arns.append(
            f"arn:{partition}:s3:::{bucket}/{key}*"
            if not key or key.endswith("/")
            else f"arn:{partition}:s3:::{bucket}/{key}"
        )
    return arns


def s3_bucket_arns(partition: str, uris: list[str]) -> list[str]:
    return [f"arn:{partition}:s3:::{uri.removeprefix('s3://').partition('/')[0]}" for uri in uris]


def ecr_pull_statements(repository_arn: str) -> list[dict[str, Any]]:
    return [
        _statement("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        _statement(
            "EcrPull",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [repository_arn],
        ),
    ]


def logs_statement(aws: Aws, log_group_prefix: str) -> dict[str, Any]:
    group = aws.arn("logs", f"log-group:{log_group_prefix}*")
    return _statement(
        "Logs",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
        [group, f"{group}:log-stream:*"],
    )


def policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def parameters_statement(parameters_arn: str) -> dict[str, Any]:
    """Reading the deployment's SSM parameters (its secrets, and on EC2 its TLS key): the
    container's entrypoint does, with its role. Decryption needs no statement: the AWS
    managed key aws/ssm lets every principal of the account decrypt through SSM."""
    return _statement("ReadSecrets", ["ssm:GetParameters"], [parameters_arn])


def sagemaker_policy(
    aws: Aws,
    repository_arn: str,
    read_uris: list[str],
    write_uris: list[str],
    list_uris: list[str] = (),
    parameters_arn: str | None = None,
) -> dict[str, Any]:
    statements = [
        *ecr_pull_statements(repository_arn),
        _statement("ReadArtifacts", ["s3:GetObject"], s3_object_arns(aws.partition, read_uris)),
        logs_statement(aws, "/aws/sagemaker/"),
        # SageMaker's container metrics; PutMetricData has no resource to scope it to.
        _statement("Metrics", ["cloudwatch:PutMetricData"], ["*"]),
    ]
    if write_uris:
        statements.append(
            _statement("WriteOutputs", ["s3:PutObject"], s3_object_arns(aws.partition, write_uris))
        )
    if list_uris:
        statements.append(
            _statement("ListInputs", ["s3:ListBucket"], s3_bucket_arns(aws.partition, list(list_uris)))
        )
    if parameters_arn:
        statements.append(parameters_statement(parameters_arn))
    return policy(statements)


def ec2_policy(
    aws: Aws, repository_arn: str, read_uris: list[str], log_group: str, parameters_arn: str
) -> dict[str, Any]:
    """The instance always reads its parameters: its TLS key is one."""
    statements = [
        *ecr_pull_statements(repository_arn),
        logs_statement(aws, log_group),
        parameters_statement(parameters_arn),
    ]
    if read_uris:
        statements.append(
            _statement("ReadArtifacts", ["s3:GetObject"], s3_object_arns(aws.partition, read_uris))
        )
    return policy(statements)


def trust_policy(aws: Aws, service: str) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": f"{service}.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if service == "sagemaker":
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": aws.account_id}}
    return policy([statement])


def find_role(aws: Aws, name: str) -> dict[str, Any] | None:
    try:
        return aws.read("iam", "GetRole", RoleName=name)["Role"]
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def ensure_role(
    aws: Aws,
    owner: Ownership,
    name: str,
    service: str,
    inline_policy: dict[str, Any],
    tags: dict[str, str],
    managed_policies: tuple[str, ...] = (),
    instead: str = "",
    refuse_missing: str | None = None,
) -> str:
    """Create the role, or bring the tool's own role into line (its one inline policy and
    the managed policies); returns its ARN. A role of that name the tool did not make for
    this deployment stops the command (`instead`: what the user can do). With
    `refuse_missing`, a missing role is not made: DeployError with that message."""
    role = find_role(aws, name)
    if role is None and refuse_missing is not None:
        raise DeployError(refuse_missing)
    if role is None:
        created = aws.write(
            "iam",
            "CreateRole",
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy(aws, service)),
            Description=f"PAIS {service} role, made by python -m deploy",
            Tags=key_value_tags(tags),
        )
        arn = created["Role"]["Arn"]
    else:
        owner.require(
            IAM_ROLE,
            name,
            f"rewrite its inline policy {POLICY_NAME!r}",
            tags=tag_dict(role.get("Tags")),
            instead=instead,
        )
        arn = role["Arn"]
    aws.write(
        "iam",
        "PutRolePolicy",
        RoleName=name,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(inline_policy),
    )
    for managed in managed_policies:
        aws.write(
            "iam",
            "AttachRolePolicy",
            RoleName=name,
            PolicyArn=f"arn:{aws.partition}:iam::aws:policy/{managed}",
        )
    return arn


def ensure_sagemaker_role(
    aws: Aws,
    owner: Ownership,
    name: str,
    deployment: str,
    inline_policy: dict[str, Any],
    tags: dict[str, str],
    create: bool,
    purpose: str,
) -> str:
    """A role SageMaker assumes for the deployment (`purpose`: "execution", "training"):
    made with --create-role (`create`), else it must exist; either way the tool's own role
    is brought into line (ensure_role). Returns its ARN."""
    missing = f"no {purpose} role: pass --role-arn ARN, or --create-role to make {name}"
    return ensure_role(
        aws,
        owner,
        name,
        "sagemaker",
        inline_policy,
        resource_tags(deployment, tags),
        instead="pass --role-arn <its ARN> to use it as it is",
        refuse_missing=None if create else missing,
    )


def ensure_instance_profile(
    aws: Aws, owner: Ownership, name: str, role_name: str, tags: dict[str, str]
) -> str:
    try:
        profile = aws.read("iam", "GetInstanceProfile", InstanceProfileName=name)["InstanceProfile"]
    except ClientError as error:
        if not is_not_found(error):
            raise
        profile = aws.write(
            "iam", "CreateInstanceProfile", InstanceProfileName=name, Tags=key_value_tags(tags)
        )["InstanceProfile"]
        aws.write("iam", "AddRoleToInstanceProfile", InstanceProfileName=name, RoleName=role_name)
        return profile["Arn"]
    if role_name not in [role["RoleName"] for role in profile.get("Roles", [])]:
        owner.require(
            INSTANCE_PROFILE, name, f"get role {role_name} added", tags=tag_dict(profile.get("Tags"))
        )
        aws.write("iam", "AddRoleToInstanceProfile", InstanceProfileName=name, RoleName=role_name)
    else:
        owner.require(INSTANCE_PROFILE, name, "be used by the instance", tags=tag_dict(profile.get("Tags")))
    return profile["Arn"]


def delete_role(aws: Aws, owner: Ownership, name: str) -> bool:
    """Delete a role this tool made for the deployment, with its instance profiles; False
    when it is absent or left alone (then named in `owner.left_alone`)."""
    role = find_role(aws, name)
    if role is None or not owner.may_change(IAM_ROLE, name, "be deleted", tags=tag_dict(role.get("Tags"))):
        return False
    profiles = aws.read("iam", "ListInstanceProfilesForRole", RoleName=name)["InstanceProfiles"]
    foreign = [
        p["InstanceProfileName"]
        for p in profiles
        # read with GetInstanceProfile: list calls leave tags out
        if not owner.may_change(
            INSTANCE_PROFILE, p["InstanceProfileName"], f"lose role {name} and be deleted"
        )
    ]
    if foreign:
        owner.left_alone.append(
            {
                "kind": IAM_ROLE.label,
                "name": name,
                "reason": f"still in instance profile(s) {', '.join(foreign)}, which are left alone",
            }
        )
        return False
    for profile in profiles:
        aws.write(
            "iam",
            "RemoveRoleFromInstanceProfile",
            InstanceProfileName=profile["InstanceProfileName"],
            RoleName=name,
        )
        aws.write("iam", "DeleteInstanceProfile", InstanceProfileName=profile["InstanceProfileName"])
    for policy_name in aws.read("iam", "ListRolePolicies", RoleName=name)["PolicyNames"]:
        aws.write("iam", "DeleteRolePolicy", RoleName=name, PolicyName=policy_name)
    for attached in aws.read("iam", "ListAttachedRolePolicies", RoleName=name)["AttachedPolicies"]:
        aws.write("iam", "DetachRolePolicy", RoleName=name, PolicyArn=attached["PolicyArn"])
    aws.write("iam", "DeleteRole", RoleName=name)
    return True
