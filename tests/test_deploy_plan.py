"""--dry-run: every command prints the AWS calls it would make, each valid under botocore's
own service model (instance types included), and changes nothing. Reads still reach AWS
(here moto), because the plan depends on what exists. The update, invoke and teardown
plans of a live endpoint are in test_deploy_sagemaker.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deploy.plan import validate_call

from .aws_emulator import moto_client
from .deploy_support import check_plan, make_oci_layout, push_layout, run_deploy
from .servers import REPO, service_env


def test_the_validator_names_what_is_wrong():
    assert (
        validate_call("sagemaker", "CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"}) == []
    )
    (typo,) = validate_call(
        "sagemaker",
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c",
            "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InstanceType": "ml.g5.xlarg"}],
        },
    )
    assert "ProductionVariants[0].InstanceType" in typo and "ml.g5.xlarge" in typo  # suggests the near match
    (ec2,) = validate_call("ec2", "RunInstances", {"MinCount": 1, "MaxCount": 1, "InstanceType": "g5.huge"})
    assert "InstanceType" in ec2
    assert any(
        "Unknown parameter" in p
        for p in validate_call("ecr", "CreateRepository", {"repositoryName": "r", "x": 1})
    )
    assert any("Missing required" in p for p in validate_call("iam", "CreateRole", {"RoleName": "r"}))
    assert validate_call("sagemaker", "NoSuchOperation", {}) == [
        "sagemaker has no operation 'NoSuchOperation'"
    ]


def test_push_plan(aws_emulator, pushed_release, tmp_path, moto_endpoint):
    layout = make_oci_layout(tmp_path / "oci", {"app/VERSION": b"planned\n"})
    plan = push_layout(aws_emulator.url, layout, "planned-1", "--dry-run", "--repository", "pais-planned")
    operations = check_plan(plan)
    assert ("ecr", "CreateRepository") in operations
    assert ("ecr", "PutLifecyclePolicy") in operations
    assert ("ecr", "PutImage") in operations
    assert operations.count(("ecr", "CompleteLayerUpload")) == 2  # config and layer
    upload = [call["params"] for call in plan["calls"] if call["operation"] == "UploadPart"]
    assert upload and all(part["ChecksumSHA256"] and part["Body"].endswith(" bytes>") for part in upload)
    assert plan["result"]["model_data"].endswith("/pais-planned/planned-1/model.tar.gz")
    repositories = moto_client(moto_endpoint, "ecr").describe_repositories()["repositories"]
    assert "pais-planned" not in [r["repositoryName"] for r in repositories]
    bucket = plan["result"]["model_data"].split("/")[2]
    listed = moto_client(moto_endpoint, "s3").list_objects_v2(Bucket=bucket, Prefix="pais-planned/")
    assert listed["KeyCount"] == 0


def test_sagemaker_deploy_plan_creates_a_gpu_endpoint(aws_emulator, pushed_release, moto_endpoint):
    plan = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        "pais-planned",
        "--dry-run",
        "--create-role",
        "--autoscale",
        "1,2,10",
    )
    operations = check_plan(plan)
    assert operations == [
        ("iam", "CreateRole"),
        ("iam", "PutRolePolicy"),
        ("sagemaker", "CreateModel"),
        ("sagemaker", "CreateEndpointConfig"),
        ("sagemaker", "CreateEndpoint"),
        ("application-autoscaling", "RegisterScalableTarget"),
        ("application-autoscaling", "PutScalingPolicy"),
    ]
    config = plan["calls"][3]["params"]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert plan["calls"][2]["params"]["ExecutionRoleArn"] == "<iam.CreateRole.Role.Arn>"
    assert any("wait until endpoint pais-planned InService" in note for note in plan["notes"])
    with pytest.raises(moto_client(moto_endpoint, "sagemaker").exceptions.ClientError):
        moto_client(moto_endpoint, "sagemaker").describe_endpoint(EndpointName="pais-planned")


def test_serverless_plan_runs_on_cpu(aws_emulator, pushed_release):
    plan = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        "pais-planned",
        "--dry-run",
        "--role-arn",
        "arn:aws:iam::123456789012:role/x",
        "--serverless",
        "--memory-mb",
        "4096",
    )
    check_plan(plan)
    model, config = plan["calls"][0]["params"], plan["calls"][1]["params"]
    assert model["PrimaryContainer"]["Environment"]["PAIS_DEVICE"] == "cpu"
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 4096,
        "MaxConcurrency": 10,
    }
    assert "InstanceType" not in config["ProductionVariants"][0]


def test_a_bad_instance_type_is_refused_before_any_call(aws_emulator, pushed_release):
    error = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        "pais-planned",
        "--dry-run",
        "--create-role",
        "--instance-type",
        "ml.g5.huge",
        status=1,
    )
    assert "ml.g5.huge" in error and "ProductionVariantInstanceType" in error


def test_batch_plan(aws_emulator):
    plan = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "batch",
        "pais-planned",
        "--dry-run",
        "--model",
        "pais-planned-20250101-000000",
        "--input",
        "s3://bucket/in/records.jsonl",
        "--output-path",
        "s3://bucket/out/",
        "--task",
        "classify",
    )
    assert check_plan(plan) == [("sagemaker", "CreateTransformJob")]
    job = plan["calls"][0]["params"]
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["TransformOutput"]["AssembleWith"] == "Line"
    assert job["TransformResources"]["InstanceType"] == "ml.g5.xlarge"


def test_ec2_deploy_plan(aws_emulator, pushed_release, moto_endpoint):
    plan = run_deploy(
        aws_emulator.url,
        "ec2",
        "deploy",
        "pais-planned",
        "--dry-run",
        "--allow-cidr",
        "203.0.113.7/32",
        "--spot",
    )
    operations = check_plan(plan)
    assert operations == [
        ("ec2", "CreateSecurityGroup"),
        ("ec2", "AuthorizeSecurityGroupIngress"),
        ("iam", "CreateRole"),
        ("iam", "PutRolePolicy"),
        ("iam", "AttachRolePolicy"),
        ("iam", "CreateInstanceProfile"),
        ("iam", "AddRoleToInstanceProfile"),
        ("logs", "CreateLogGroup"),
        ("logs", "PutRetentionPolicy"),
        ("ec2", "RunInstances"),
    ]
    run = plan["calls"][-1]["params"]
    assert run["InstanceType"] == "g5.xlarge"
    assert run["MetadataOptions"]["HttpTokens"] == "required"
    assert run["InstanceMarketOptions"]["MarketType"] == "spot"
    assert pushed_release["image"] in run["UserData"]
    assert plan["calls"][1]["params"]["GroupId"] == "<ec2.CreateSecurityGroup.GroupId>"
    groups = moto_client(moto_endpoint, "ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["pais-pais-planned"]}]
    )["SecurityGroups"]
    assert groups == []


def test_teardown_of_nothing_plans_nothing(aws_emulator):
    assert (
        run_deploy(aws_emulator.url, "sagemaker", "teardown", "pais-never-made", "--dry-run")["calls"] == []
    )
    assert run_deploy(aws_emulator.url, "ec2", "teardown", "pais-never-made", "--dry-run")["calls"] == []


def test_the_module_runs_as_a_program(aws_emulator, pushed_release):
    """`python -m deploy` itself, as users and the Makefile run it (text output)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy",
            "--region",
            "us-east-1",
            "--endpoint-url",
            aws_emulator.url,
            "--max-attempts",
            "1",
            "sagemaker",
            "deploy",
            "pais-planned",
            "--dry-run",
            "--create-role",
        ],
        cwd=REPO,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dry run: 5 AWS call(s) planned, none sent")
    assert "sagemaker.CreateEndpointConfig" in done.stdout
