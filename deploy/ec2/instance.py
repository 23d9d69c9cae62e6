"""PAIS on one EC2 GPU instance: deploy, status, teardown, all found by tag.

The instance: the latest Deep Learning AMI, IMDSv2 required (hop limit 2 so the container
can reach the instance role), an encrypted gp3 root volume, an instance profile that may
only pull the image, read the artifacts and the deployment's SSM parameters and write its
log group (plus SSM Session Manager instead of SSH), a security group open on the service
port to one CIDR, optionally Spot. The service answers HTTPS only, with the deployment's
own certificate (deploy/ec2/tls.py); `deploy` waits until GET /readyz answers 200 on the
public address, trusting that certificate alone.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from botocore.exceptions import ClientError

from .. import iam, secret_store
from ..aws import Aws, error_code, is_not_found
from ..cost import hourly_cost
from ..ecr import ImageRef
from ..entrypoint import ARTIFACTS_SHA256, TLS_FROM_SSM
from ..errors import DeployError
from ..logs import ensure_log_group
from ..naming import DEPLOYMENT_TAG, MANAGED_BY, MANAGED_TAG, key_value_tags, resource_tags, tag_dict
from ..ownership import SECURITY_GROUP, Ownership
from ..purge import purge
from ..waiting import wait_until
from . import network, tls, userdata
from .ami import DLAMI_NAME, DLAMI_PARAMETER, find_ami

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
MODEL_DATA_TAG = "pais:model-data"
PROFILE_PROPAGATION_S = 60


@dataclass
class Ec2Spec:
    name: str
    image: ImageRef
    repository_arn: str
    allow_cidr: str
    model_data: str | None = None
    model_sha256: str | None = None
    manifest_sha256: str | None = None
    instance_type: str = "g5.xlarge"
    port: int = 443
    ami: str | None = None
    ami_parameter: str = DLAMI_PARAMETER
    ami_name: str = DLAMI_NAME
    subnet: str | None = None
    key_name: str | None = None
    spot: bool = False
    volume_gb: int = 100
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # values are plan.Secret
    tags: dict[str, str] = field(default_factory=dict)
    gpus: bool = True
    replace: bool = False
    command: str = "serve"


def role_name(deployment: str) -> str:
    return f"pais-{deployment}-ec2"


def log_group(deployment: str) -> str:
    return f"/pais/{deployment}"


def instances(aws: Aws, deployment: str, states: list[str] = LIVE_STATES) -> list[dict[str, Any]]:
    pages = aws.read(
        "ec2",
        "DescribeInstances",
        Filters=[
            {"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [deployment]},
            {"Name": f"tag:{MANAGED_TAG}", "Values": [MANAGED_BY]},
            {"Name": "instance-state-name", "Values": states},
        ],
    )["Reservations"]
    return [instance for reservation in pages for instance in reservation["Instances"]]


def run_params(
    spec: Ec2Spec, image: dict[str, Any], group: str, profile_arn: str, script: str
) -> dict[str, Any]:
    tags = resource_tags(spec.name, spec.tags)
    instance_tags = {**tags, "Name": f"pais-{spec.name}"}
    if spec.model_data:
        instance_tags[MODEL_DATA_TAG] = spec.model_data
    params: dict[str, Any] = {
        "ImageId": image["image_id"],
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": script,
        "SecurityGroupIds": [group],
        "IamInstanceProfile": {"Arn": profile_arn},
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": 2,
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": image["root_device"],
                "Ebs": {
                    "VolumeSize": spec.volume_gb,
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                    "Encrypted": True,
                },
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": key_value_tags(instance_tags)},
            {"ResourceType": "volume", "Tags": key_value_tags(tags)},
        ],
    }
    if spec.subnet:
        params["SubnetId"] = spec.subnet
    if spec.key_name:
        params["KeyName"] = spec.key_name
    if spec.spot:
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    return params


def deploy(aws: Aws, owner: Ownership, spec: Ec2Spec, wait: bool, timeout_s: float) -> dict[str, Any]:
    previous = instances(aws, spec.name)
    if previous and not spec.replace:
        raise DeployError(
            f"deployment {spec.name} already runs {', '.join(i['InstanceId'] for i in previous)}: "
            "pass --replace to start a new instance and stop the old one once the new one is ready"
        )
    tags = resource_tags(spec.name, spec.tags)
    image = find_ami(aws, spec.ami, spec.ami_parameter, spec.ami_name)
    vpc = network.vpc_of_subnet(aws, spec.subnet) if spec.subnet else network.default_vpc(aws)
    group = network.ensure_group(aws, owner, spec.name, vpc, spec.port, spec.allow_cidr, tags)
    certificate, tls_arn = tls.ensure_certificate(aws, owner, spec.name, tags)
    secrets = secret_store.store(aws, owner, spec.name, spec.secrets, tags)
    read_uris = [spec.model_data] if spec.model_data else []
    iam.ensure_role(
        aws,
        owner,
        role_name(spec.name),
        "ec2",
        iam.ec2_policy(
            aws,
            spec.repository_arn,
            read_uris,
            log_group(spec.name),
            secret_store.parameters_arn_pattern(aws, spec.name),
        ),
        tags,
        (iam.SSM_MANAGED_POLICY,),
    )
    profile = iam.ensure_instance_profile(aws, owner, role_name(spec.name), role_name(spec.name), tags)
    ensure_log_group(aws, owner, log_group(spec.name), tags)
    entrypoint_env = {**secret_store.reference_env(secrets), TLS_FROM_SSM: tls_arn}
    if spec.manifest_sha256:
        entrypoint_env[ARTIFACTS_SHA256] = spec.manifest_sha256
    script = userdata.render(
        region=aws.region,
        registry=spec.image.repository_uri.split("/", 1)[0],
        image=spec.image.uri,
        port=spec.port,
        log_group=log_group(spec.name),
        env=spec.env,
        entrypoint_env=entrypoint_env,
        model_data=spec.model_data,
        model_sha256=spec.model_sha256,
        gpus=spec.gpus,
        command=spec.command,
    )
    launched = _run_instance(aws, run_params(spec, image, group, profile, script))
    instance_id = launched["InstanceId"]
    result: dict[str, Any] = {
        "deployment": spec.name,
        "instance": instance_id,
        "instance_type": spec.instance_type,
        "spot": spec.spot,
        "ami": image,
        "security_group": group,
        "image": spec.image.uri,
        "secrets": secret_store.parameter_names(secrets),
        "tls": _tls_summary(spec.name, certificate),
        "cost_per_hour_usd": None if spec.spot else hourly_cost(aws.region, [(spec.instance_type, 1)]),
    }
    if not wait:
        return result | owner.report()
    address = wait_until(
        aws, f"instance {instance_id} running", lambda: _running(aws, instance_id), timeout_s
    )
    url = f"https://{address}:{spec.port}"
    result["url"] = url
    context = tls.pinned_context(certificate)
    result["ready"] = wait_until(
        aws, f"{url}/readyz answers 200", lambda: _ready(aws, instance_id, url, context), timeout_s
    )
    if previous:
        old = [i["InstanceId"] for i in previous]
        aws.write("ec2", "TerminateInstances", InstanceIds=old)
        result["replaced"] = old
    return result | owner.report()


def _tls_summary(deployment: str, certificate: str) -> dict[str, str]:
    return {
        "certificate": certificate,
        "sha256_fingerprint": tls.fingerprint(certificate),
        "parameter": secret_store.parameter_name(deployment, tls.CERTIFICATE),
    }


def _run_instance(aws: Aws, params: dict[str, Any]) -> dict[str, Any]:
    """RunInstances, retried while a new instance profile is not yet visible to EC2 (IAM is
    eventually consistent: for some seconds EC2 calls a fresh profile invalid)."""
    deadline = time.monotonic() + PROFILE_PROPAGATION_S
    while True:
        try:
            return aws.write("ec2", "RunInstances", **params)["Instances"][0]
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if error_code(error) != "InvalidParameterValue" or "instance profile" not in message.lower():
                raise
            if time.monotonic() > deadline:
                raise
            aws.progress("instance profile not yet visible to EC2; retrying")
            aws.sleep()


def _describe(aws: Aws, instance_id: str) -> dict[str, Any]:
    return aws.read("ec2", "DescribeInstances", InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _running(aws: Aws, instance_id: str) -> tuple[bool, str]:
    instance = _describe(aws, instance_id)
    state = instance["State"]["Name"]
    if state in ("shutting-down", "terminated", "stopped", "stopping"):
        reason = instance.get("StateReason", {}).get("Message", "no reason given")
        raise DeployError(f"instance {instance_id} is {state}: {reason}")
    address = instance.get("PublicIpAddress")
    if state == "running" and not address:
        raise DeployError(f"instance {instance_id} has no public address: use a subnet that assigns one")
    return state == "running", address if state == "running" else state


def _ready(aws: Aws, instance_id: str, url: str, context: ssl.SSLContext) -> tuple[bool, str]:
    _running(aws, instance_id)  # a terminated (e.g. reclaimed Spot) instance fails the wait
    try:
        answer = httpx.get(f"{url}/readyz", timeout=5, verify=context)
    except httpx.HTTPError as error:
        return False, f"not answering ({type(error).__name__})"
    return answer.status_code == 200, f"/readyz {answer.status_code}"


def status(aws: Aws, deployment: str) -> dict[str, Any]:
    found = []
    certificate = tls.read_certificate(aws, deployment)
    for instance in instances(aws, deployment, [*LIVE_STATES, "shutting-down"]):
        address = instance.get("PublicIpAddress")
        port = _service_port(aws, deployment)
        item = {
            "instance": instance["InstanceId"],
            "state": instance["State"]["Name"],
            "instance_type": instance["InstanceType"],
            "spot": instance.get("InstanceLifecycle") == "spot",
            "public_ip": address,
            "launched": str(instance.get("LaunchTime", "")),
        }
        if address and port and certificate and instance["State"]["Name"] == "running":
            item["url"] = f"https://{address}:{port}"
            context = tls.pinned_context(certificate)
            item["ready"] = _ready(aws, instance["InstanceId"], item["url"], context)[1]
        found.append(item)
    running = [(i["instance_type"], 1) for i in found if i["state"] == "running" and not i["spot"]]
    return {
        "deployment": deployment,
        "instances": found,
        "cost_per_hour_usd": hourly_cost(aws.region, running),
        "log_group": log_group(deployment),
        "tls": _tls_summary(deployment, certificate) if certificate else None,
    }


def _service_port(aws: Aws, deployment: str) -> int | None:
    group = network.find_group(aws, deployment)
    rules = group.get("IpPermissions", []) if group else []
    return rules[0].get("FromPort") if rules else None


def teardown(
    aws: Aws, owner: Ownership, deployment: str, purge_artifacts: bool, wait: bool, timeout_s: float
) -> dict[str, Any]:
    """Terminate the deployment's instances (found by both ownership tags), then delete its
    security group, role and profile, and with `purge_artifacts` its artifacts and log
    group: each only once its tags say the tool made it for this deployment."""
    live = instances(aws, deployment, [*LIVE_STATES, "shutting-down"])
    ids = [i["InstanceId"] for i in live]
    artifacts = sorted({tag_dict(i.get("Tags")).get(MODEL_DATA_TAG) for i in live} - {None})
    result: dict[str, Any] = {"deployment": deployment, "terminated": ids}
    if ids:
        aws.write("ec2", "TerminateInstances", InstanceIds=ids)
        if wait:
            wait_until(aws, f"{len(ids)} instance(s) terminated", lambda: _terminated(aws, ids), timeout_s)
    group = network.find_group(aws, deployment)
    if group is not None and owner.may_change(
        SECURITY_GROUP,
        network.group_name(deployment),
        "be deleted",
        ident=group["GroupId"],
        tags=tag_dict(group.get("Tags")),
    ):
        _delete_group(aws, group["GroupId"], wait and bool(ids), timeout_s)
        result["security_group_deleted"] = group["GroupId"]
    result["role_deleted"] = iam.delete_role(aws, owner, role_name(deployment))
    result["secrets_deleted"] = secret_store.delete_all(aws, owner, deployment)
    if purge_artifacts:
        result["purged"] = purge(aws, owner, artifacts, [log_group(deployment)])
    return result | owner.report()


def _terminated(aws: Aws, ids: list[str]) -> tuple[bool, str]:
    states = [
        i["State"]["Name"]
        for r in aws.read("ec2", "DescribeInstances", InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    ]
    return all(state == "terminated" for state in states), ", ".join(sorted(set(states)))


def _delete_group(aws: Aws, group_id: str, retry: bool, timeout_s: float) -> None:
    """A group stays attached to a terminating instance's interface for a while
    (DependencyViolation); retry until it lets go."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            aws.write("ec2", "DeleteSecurityGroup", GroupId=group_id)
            return
        except ClientError as error:
            if is_not_found(error):
                return
            if error_code(error) != "DependencyViolation" or not retry or time.monotonic() > deadline:
                raise
            aws.sleep()
