"""The security group: the service port open to one CIDR, nothing else inbound."""

from __future__ import annotations

from typing import Any

from ..aws import Aws
from ..errors import DeployError
from ..naming import key_value_tags, tag_dict
from ..ownership import SECURITY_GROUP, Ownership


def group_name(deployment: str) -> str:
    return f"pais-{deployment}"


def default_vpc(aws: Aws) -> str:
    vpcs = aws.read("ec2", "DescribeVpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DeployError(f"no default VPC in {aws.region}: pass --subnet-id")
    return vpcs[0]["VpcId"]


def vpc_of_subnet(aws: Aws, subnet: str) -> str:
    return aws.read("ec2", "DescribeSubnets", SubnetIds=[subnet])["Subnets"][0]["VpcId"]


def find_group(aws: Aws, deployment: str, vpc: str | None = None) -> dict[str, Any] | None:
    filters = [{"Name": "group-name", "Values": [group_name(deployment)]}]
    if vpc:
        filters.append({"Name": "vpc-id", "Values": [vpc]})
    groups = aws.read("ec2", "DescribeSecurityGroups", Filters=filters)["SecurityGroups"]
    return groups[0] if groups else None


def ingress_rule(port: int, cidr: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": "PAIS service port"}],
    }


def ensure_group(
    aws: Aws, owner: Ownership, deployment: str, vpc: str, port: int, cidr: str, tags: dict[str, str]
) -> str:
    """The group with exactly one inbound rule, tcp `port` from `cidr`; others are revoked
    (only in a group the tool made for this deployment)."""
    group = find_group(aws, deployment, vpc)
    if group is None:
        created = aws.write(
            "ec2",
            "CreateSecurityGroup",
            GroupName=group_name(deployment),
            Description=f"PAIS {deployment}: service port only",
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": key_value_tags(tags)}],
        )
        group_id = created["GroupId"]
        existing: list[dict[str, Any]] = []
    else:
        group_id = group["GroupId"]
        owner.require(
            SECURITY_GROUP,
            group_name(deployment),
            "have its inbound rules replaced",
            ident=group_id,
            tags=tag_dict(group.get("Tags")),
        )
        existing = group.get("IpPermissions", [])
    wanted = ingress_rule(port, cidr)
    stray = [
        rule
        for rule in existing
        if (rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort")) != ("tcp", port, port)
        or [r["CidrIp"] for r in rule.get("IpRanges", [])] != [cidr]
        or rule.get("Ipv6Ranges")
        or rule.get("UserIdGroupPairs")
    ]
    if stray:
        aws.write(
            "ec2", "RevokeSecurityGroupIngress", GroupId=group_id, IpPermissions=[_bare(r) for r in stray]
        )
    if len(stray) == len(existing):
        aws.write("ec2", "AuthorizeSecurityGroupIngress", GroupId=group_id, IpPermissions=[wanted])
    return group_id


def _bare(rule: dict[str, Any]) -> dict[str, Any]:
    """A described rule as Revoke takes it back."""
    keys = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds")
    return {key: rule[key] for key in keys if rule.get(key)}
