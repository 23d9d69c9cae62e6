"""--dry-run: every command prints the AWS calls it would make, each valid under botocore's
own service model (instance types included), and changes nothing. Reads still reach AWS
(here moto), because the plan depends on what exists. The update, invoke and teardown
plans of a live endpoint are in test_deploy_sagemaker.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.plan import validate_call

from .aws_emulator import moto_client
from .deploy_support import check_plan, make_oci_layout, push_layout, run_deploy
from .servers import REPO, service_env

SECRET = "plan-secret-3f9a1c"  # must never show in a plan


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
        ("logs", "CreateLogGroup"),  # the endpoint's, tagged, before SageMaker writes to it
        ("logs", "PutRetentionPolicy"),
        ("sagemaker", "CreateEndpointConfig"),
        ("sagemaker", "CreateEndpoint"),
        ("application-autoscaling", "RegisterScalableTarget"),
        ("application-autoscaling", "PutScalingPolicy"),
    ]
    config = plan["calls"][5]["params"]
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
    model, config = plan["calls"][0]["params"], plan["calls"][3]["params"]
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


def test_without_create_role_a_missing_role_is_named_not_made(aws_emulator, pushed_release):
    error = run_deploy(aws_emulator.url, "sagemaker", "deploy", "pais-roleless", "--dry-run", status=1)
    assert "no execution role: pass --role-arn ARN, or --create-role to make pais-pais-roleless" in error


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


def test_ec2_deploy_plan(aws_emulator, pushed_release, moto_endpoint, monkeypatch):
    monkeypatch.setenv("PAIS_API_KEYS", SECRET)  # `--secret NAME` takes it from here
    plan = run_deploy(
        aws_emulator.url,
        "ec2",
        "deploy",
        "pais-planned",
        "--dry-run",
        "--allow-cidr",
        "203.0.113.7/32",
        "--spot",
        "--secret",
        "PAIS_API_KEYS",
    )
    operations = check_plan(plan)
    assert operations == [
        ("ec2", "CreateSecurityGroup"),
        ("ec2", "AuthorizeSecurityGroupIngress"),
        ("ssm", "PutParameter"),  # the TLS certificate and key
        ("ssm", "PutParameter"),  # the certificate alone, for clients to pin
        ("ssm", "PutParameter"),  # PAIS_API_KEYS
        ("iam", "CreateRole"),
        ("iam", "PutRolePolicy"),
        ("iam", "AttachRolePolicy"),
        ("iam", "CreateInstanceProfile"),
        ("iam", "AddRoleToInstanceProfile"),
        ("logs", "CreateLogGroup"),
        ("logs", "PutRetentionPolicy"),
        ("ec2", "RunInstances"),
    ]
    assert SECRET not in json.dumps(plan)
    bundle, certificate, secret = (call["params"] for call in plan["calls"][2:5])
    assert (bundle["Name"], bundle["Type"], bundle["Value"]) == (
        "/pais/pais-planned/tls",
        "SecureString",
        "<secret>",
    )
    assert certificate["Value"].startswith("-----BEGIN CERTIFICATE-----") and certificate["Type"] == "String"
    assert (secret["Name"], secret["Value"]) == ("/pais/pais-planned/PAIS_API_KEYS", "<secret>")
    run = plan["calls"][-1]["params"]
    assert (
        "PAIS_SECRETS_FROM_SSM=PAIS_API_KEYS=arn:aws:ssm:us-east-1:123456789012:parameter/pais/pais-planned/PAIS_API_KEYS"
        in run["UserData"]
    )
    assert run["InstanceType"] == "g5.xlarge"
    assert run["MetadataOptions"]["HttpTokens"] == "required"
    assert run["InstanceMarketOptions"]["MarketType"] == "spot"
    assert pushed_release["image"] in run["UserData"]
    assert plan["calls"][1]["params"]["GroupId"] == "<ec2.CreateSecurityGroup.GroupId>"
    assert plan["calls"][1]["params"]["IpPermissions"][0]["FromPort"] == 443  # HTTPS
    groups = moto_client(moto_endpoint, "ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["pais-pais-planned"]}]
    )["SecurityGroups"]
    assert groups == []


def test_teardown_of_nothing_plans_nothing(aws_emulator):
    assert (
        run_deploy(aws_emulator.url, "sagemaker", "teardown", "pais-never-made", "--dry-run")["calls"] == []
    )
    assert run_deploy(aws_emulator.url, "ec2", "teardown", "pais-never-made", "--dry-run")["calls"] == []


def test_sagemaker_refuses_api_keys_and_keeps_secrets_out_of_the_model(aws_emulator, pushed_release):
    for option in ("--env", "--secret"):
        error = run_deploy(
            aws_emulator.url, "sagemaker", "deploy", "pais-planned", "--dry-run", "--create-role",
            option, f"PAIS_API_KEYS={SECRET}", status=1,
        )  # fmt: skip
        assert SECRET not in error
        assert "--secret PAIS_API_KEYS" in error if option == "--env" else "SigV4" in error
    plan = run_deploy(
        aws_emulator.url, "sagemaker", "deploy", "pais-planned", "--dry-run", "--create-role",
        "--secret", f"HF_TOKEN={SECRET}",
    )  # fmt: skip
    check_plan(plan)
    assert SECRET not in json.dumps(plan)
    stored = next(call["params"] for call in plan["calls"] if call["operation"] == "PutParameter")
    assert (stored["Name"], stored["Type"], stored["Value"]) == (
        "/pais/pais-planned/HF_TOKEN",
        "SecureString",
        "<secret>",
    )
    model = next(call["params"] for call in plan["calls"] if call["operation"] == "CreateModel")
    environment = model["PrimaryContainer"]["Environment"]
    assert environment["PAIS_SECRETS_FROM_SSM"].endswith(":parameter/pais/pais-planned/HF_TOKEN")
    assert environment["PAIS_ARTIFACTS_SHA256"] == pushed_release["manifest_sha256"]
    policy = json.loads(
        next(call["params"] for call in plan["calls"] if call["operation"] == "PutRolePolicy")[
            "PolicyDocument"
        ]
    )
    (reads,) = [s for s in policy["Statement"] if s["Sid"] == "ReadSecrets"]
    assert reads["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/pais/pais-planned/*"]


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
            "--secret",
            "HF_TOKEN",
        ],
        cwd=REPO,
        env=service_env(HF_TOKEN=SECRET),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dry run: 8 AWS call(s) planned, none sent")
    assert "sagemaker.CreateEndpointConfig" in done.stdout
    assert SECRET not in done.stdout + done.stderr and '"Value": "<secret>"' in done.stdout
