"""The deploy tool touches only what it made: hand-made resources with the names it would
use (endpoint, endpoint config, model, batch job, roles, instance profile, security group,
log groups, SSM parameter, an artifacts-like bucket) survive `teardown`, `--purge-artifacts`
and `deploy`, and the output names each one it left alone and why. `--force-adopt` is the
one way to take such a resource over, and a dry run says what it would change.

Everything here is made directly in moto (no tool tags) and the tool runs against the
emulator, as in the other deploy tests.
"""

from __future__ import annotations

import json

import pytest

from .aws_emulator import ACCOUNT, REGION, moto_client
from .deploy_support import check_plan, run_deploy

NAME = "handmade"
VERSIONED = f"{NAME}-240101000000000-abcde"  # what the tool would call a model or config
JOB = f"{NAME}-batch-240101000000000-abcde"
BUCKET = f"pais-artifacts-{ACCOUNT}-{REGION}-handmade00"
ARTIFACT = f"s3://{BUCKET}/pais/v1/model.tar.gz"
ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture(scope="module")
def handmade(moto_endpoint, aws_emulator) -> dict:
    """What a colleague made by hand, with PAIS-like names and no tool tags."""
    c = {name: moto_client(moto_endpoint, name) for name in ("sagemaker", "iam", "ec2", "s3", "logs", "ssm")}
    c["s3"].create_bucket(Bucket=BUCKET)
    c["s3"].put_object(Bucket=BUCKET, Key="pais/v1/model.tar.gz", Body=b"their model")
    for role in (f"pais-{NAME}-sagemaker", f"pais-{NAME}-ec2", "pais-handrole-sagemaker"):
        c["iam"].create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
        c["iam"].put_role_policy(RoleName=role, PolicyName="pais", PolicyDocument=json.dumps(ROLE_POLICY))
    c["iam"].create_instance_profile(InstanceProfileName=f"pais-{NAME}-ec2")
    c["iam"].add_role_to_instance_profile(InstanceProfileName=f"pais-{NAME}-ec2", RoleName=f"pais-{NAME}-ec2")
    role_arn = c["iam"].get_role(RoleName=f"pais-{NAME}-sagemaker")["Role"]["Arn"]
    c["sagemaker"].create_model(
        ModelName=VERSIONED,
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/theirs:1",
            "ModelDataUrl": ARTIFACT,
        },
        ExecutionRoleArn=role_arn,
    )
    c["sagemaker"].create_endpoint_config(
        EndpointConfigName=VERSIONED,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": VERSIONED,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    c["sagemaker"].create_endpoint(EndpointName=NAME, EndpointConfigName=VERSIONED)
    c["sagemaker"].create_transform_job(
        TransformJobName=JOB,
        ModelName=VERSIONED,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}}
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    _set_job_running(JOB)
    for group in (f"/aws/sagemaker/Endpoints/{NAME}", f"/pais/{NAME}"):
        c["logs"].create_log_group(logGroupName=group)
    c["ssm"].put_parameter(Name=f"/pais/{NAME}/HF_TOKEN", Value="theirs", Type="SecureString")
    vpc = c["ec2"].describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = c["ec2"].create_security_group(GroupName=f"pais-{NAME}", Description="theirs", VpcId=vpc)[
        "GroupId"
    ]
    c["ec2"].authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )
    return {"clients": c, "group": group}


def _set_job_running(name: str) -> None:
    """moto completes a transform job at once; theirs is still running."""
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT][REGION].transform_jobs[name].transform_job_status = "InProgress"


def left_alone(result: dict) -> dict[str, str]:
    return {item["name"]: item["reason"] for item in result.get("left_alone", [])}


def assert_all_still_there(handmade: dict) -> None:
    c = handmade["clients"]
    assert c["sagemaker"].describe_endpoint(EndpointName=NAME)["EndpointConfigName"] == VERSIONED
    assert c["sagemaker"].describe_endpoint_config(EndpointConfigName=VERSIONED)
    assert c["sagemaker"].describe_model(ModelName=VERSIONED)
    assert c["sagemaker"].describe_transform_job(TransformJobName=JOB)["TransformJobStatus"] == "InProgress"
    for role in (f"pais-{NAME}-sagemaker", f"pais-{NAME}-ec2", "pais-handrole-sagemaker"):
        document = c["iam"].get_role_policy(RoleName=role, PolicyName="pais")["PolicyDocument"]
        assert document == ROLE_POLICY  # not rewritten
    assert c["iam"].get_instance_profile(InstanceProfileName=f"pais-{NAME}-ec2")
    (group,) = c["ec2"].describe_security_groups(GroupIds=[handmade["group"]])["SecurityGroups"]
    assert [(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in group["IpPermissions"]] == [
        (22, "10.0.0.0/8")
    ]
    groups = {g["logGroupName"] for g in c["logs"].describe_log_groups(logGroupNamePrefix="/")["logGroups"]}
    assert {f"/aws/sagemaker/Endpoints/{NAME}", f"/pais/{NAME}"} <= groups
    assert (
        c["ssm"].get_parameter(Name=f"/pais/{NAME}/HF_TOKEN", WithDecryption=True)["Parameter"]["Value"]
        == "theirs"
    )
    assert c["s3"].get_object(Bucket=BUCKET, Key="pais/v1/model.tar.gz")["Body"].read() == b"their model"


def test_sagemaker_teardown_and_purge_leave_them_alone_and_say_so(handmade, aws_emulator):
    result = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME, "--purge-artifacts")
    assert result["removed"] == {"transform_jobs": [], "endpoint": [], "endpoint_configs": [], "models": []}
    assert result["role_deleted"] is False and result["purged"] == [] and result["secrets_deleted"] == []
    named = left_alone(result)
    for resource in (
        JOB,
        NAME,
        VERSIONED,
        f"pais-{NAME}-sagemaker",
        f"/pais/{NAME}/HF_TOKEN",
        f"/aws/sagemaker/Endpoints/{NAME}",
    ):
        assert "not made by this tool" in named[resource] and f"--force-adopt {resource}" in named[resource]
    assert_all_still_there(handmade)


def test_ec2_teardown_and_purge_leave_them_alone_and_say_so(handmade, aws_emulator):
    result = run_deploy(aws_emulator.url, "ec2", "teardown", NAME, "--purge-artifacts")
    assert result["terminated"] == [] and "security_group_deleted" not in result
    assert result["role_deleted"] is False and result["purged"] == []
    assert {f"pais-{NAME}", f"pais-{NAME}-ec2", f"/pais/{NAME}", f"/pais/{NAME}/HF_TOKEN"} <= set(
        left_alone(result)
    )
    assert_all_still_there(handmade)


def test_deploys_refuse_to_take_them_over(handmade, aws_emulator, pushed_release):
    error = run_deploy(aws_emulator.url, "sagemaker", "deploy", NAME, "--create-role", status=1)
    assert f"SageMaker endpoint {NAME} exists and is left alone" in error and f"--force-adopt {NAME}" in error
    error = run_deploy(aws_emulator.url, "sagemaker", "deploy", "handrole", "--create-role", status=1)
    assert "IAM role pais-handrole-sagemaker exists and is left alone" in error and "--role-arn" in error
    assert (
        moto_client(aws_emulator.moto_url, "sagemaker").list_endpoints(NameContains="handrole")["Endpoints"]
        == []
    )
    error = run_deploy(
        aws_emulator.url, "ec2", "deploy", NAME, "--allow-cidr", "203.0.113.7/32", "--no-wait", status=1
    )
    assert f"security group pais-{NAME} exists and is left alone" in error
    assert_all_still_there(handmade)


def test_push_does_not_use_a_bucket_named_like_its_own(handmade, aws_emulator, pushed_release, tmp_path):
    from .deploy_support import make_oci_layout, push_layout

    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"handmade\n"})
    plan = push_layout(aws_emulator.url, layout, "handmade-1", "--skip-image", "--dry-run")
    assert "not tagged as made by it: not used" in left_alone(plan["result"])[BUCKET]
    uploads = {
        call["params"]["Bucket"] for call in plan["calls"] if call["operation"] == "CreateMultipartUpload"
    }
    assert uploads and BUCKET not in uploads
    assert_all_still_there(handmade)


def test_a_dry_run_of_force_adopt_says_what_it_would_change(handmade, aws_emulator, pushed_release):
    plan = run_deploy(
        aws_emulator.url, "ec2", "deploy", NAME, "--allow-cidr", "203.0.113.7/32", "--dry-run",
        "--force-adopt", f"pais-{NAME}", "--force-adopt", f"pais-{NAME}-ec2",
        "--force-adopt", f"/pais/{NAME}",
    )  # fmt: skip
    operations = check_plan(plan)
    for adopted in (
        ("ec2", "CreateTags"),
        ("iam", "TagRole"),
        ("iam", "TagInstanceProfile"),
        ("logs", "TagResource"),
    ):
        assert adopted in operations
    assert operations.index(("ec2", "CreateTags")) < operations.index(("ec2", "RevokeSecurityGroupIngress"))
    assert operations.index(("iam", "TagRole")) < operations.index(("iam", "PutRolePolicy"))
    notes = "\n".join(plan["notes"])
    assert f"--force-adopt: security group pais-{NAME}" in notes and "inbound rules replaced" in notes
    assert f"--force-adopt: IAM role pais-{NAME}-ec2" in notes and "rewrite its inline policy" in notes
    teardown = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME, "--dry-run", "--force-adopt", NAME)
    operations = [call["operation"] for call in teardown["calls"]]
    assert operations[:2] == ["AddTags", "DeleteEndpoint"]
    assert "DeleteEndpointConfig" not in operations  # its config was not named: still theirs
    kinds = {(item["kind"], item["name"]) for item in teardown["result"]["left_alone"]}
    assert {("SageMaker endpoint config", VERSIONED), ("SageMaker model", VERSIONED)} <= kinds
    assert_all_still_there(handmade)


def test_force_adopt_takes_over_only_what_it_names(handmade, aws_emulator):
    result = run_deploy(aws_emulator.url, "ec2", "teardown", NAME, "--force-adopt", f"pais-{NAME}")
    assert result["security_group_deleted"] == handmade["group"]
    assert result["adopted"][0]["name"] == f"pais-{NAME}"
    assert f"pais-{NAME}-ec2" in left_alone(result)  # the role was not named: still theirs
    ec2 = handmade["clients"]["ec2"]
    assert (
        ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [handmade["group"]]}])[
            "SecurityGroups"
        ]
        == []
    )
    assert handmade["clients"]["iam"].get_role(RoleName=f"pais-{NAME}-ec2")
