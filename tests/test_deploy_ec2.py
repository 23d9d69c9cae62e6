"""`python -m deploy ec2 ...` end to end against moto's server behind the emulator, and
the user-data script the instance received, run here with stand-in `aws` and `docker`.

The instance's public address is this machine (emulator extension 10), where the session's
real PAIS server answers /readyz: `deploy` returns only once it does.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.artifacts import split_s3_uri

from .aws_emulator import moto_client
from .deploy_support import copy_artifacts, run_deploy

NAME = "pais-ec2-test"


@pytest.fixture(scope="module")
def artifact_copy(pushed_release, moto_endpoint) -> str:
    return copy_artifacts(moto_endpoint, pushed_release["model_data"], "ec2-copy/model.tar.gz")


@pytest.fixture(scope="module")
def server_port(pais_server) -> str:
    return pais_server.rsplit(":", 1)[1]


def deploy_args(server_port: str, model_data: str) -> tuple[str, ...]:
    return (
        "ec2",
        "deploy",
        NAME,
        "--allow-cidr",
        "127.0.0.1/32",
        "--port",
        server_port,
        "--model-data",
        model_data,
    )


@pytest.fixture(scope="module")
def deployed(aws_emulator, artifact_copy, server_port) -> dict:
    return run_deploy(
        aws_emulator.url,
        *deploy_args(server_port, artifact_copy),
        "--spot",
        "--env",
        "PAIS_MAX_IMAGES_PER_REQUEST=16",
        "--timeout",
        "120",
    )


def _instance(moto_endpoint: str, instance_id: str) -> dict:
    reservations = moto_client(moto_endpoint, "ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"
    ]
    return reservations[0]["Instances"][0]


def test_deploy_returns_once_readyz_answers(deployed, pais_server):
    assert deployed["url"] == pais_server
    assert deployed["ready"] == "/readyz 200"
    assert deployed["spot"] is True and deployed["cost_per_hour_usd"] is None  # spot is not estimated


def test_instance_runs_the_latest_dlami_with_imdsv2_and_its_profile(deployed, aws_emulator, moto_endpoint):
    instance = _instance(moto_endpoint, deployed["instance"])
    assert instance["ImageId"] == aws_emulator.dlami
    assert "SSM parameter" in deployed["ami"]["found_by"]
    assert instance["InstanceType"] == "g5.xlarge"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/pais-{NAME}-ec2")
    assert instance["InstanceLifecycle"] == "spot"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["pais:deployment"] == NAME


def test_security_group_opens_only_the_service_port_to_the_cidr(deployed, moto_endpoint, server_port):
    (group,) = moto_client(moto_endpoint, "ec2").describe_security_groups(
        GroupIds=[deployed["security_group"]]
    )["SecurityGroups"]
    (rule,) = group["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
        "tcp",
        int(server_port),
        int(server_port),
    )
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["127.0.0.1/32"]


def test_instance_role_reads_only_its_image_artifacts_and_logs(deployed, moto_endpoint, artifact_copy):
    iam = moto_client(moto_endpoint, "iam")
    role = f"pais-{NAME}-ec2"
    statements = {
        s["Sid"]: s
        for s in iam.get_role_policy(RoleName=role, PolicyName="pais")["PolicyDocument"]["Statement"]
    }
    bucket, key = split_s3_uri(artifact_copy)
    assert statements["ReadArtifacts"]["Resource"] == [f"arn:aws:s3:::{bucket}/{key}"]
    assert statements["EcrPull"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/pais"]
    assert all(f"log-group:/pais/{NAME}" in arn for arn in statements["Logs"]["Resource"])
    attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    assert attached == ["AmazonSSMManagedInstanceCore"]
    groups = moto_client(moto_endpoint, "logs").describe_log_groups(logGroupNamePrefix=f"/pais/{NAME}")[
        "logGroups"
    ]
    assert groups[0]["retentionInDays"] == 30


STAND_IN_AWS = f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["STAND_IN_RECORD"], "a") as log:
    log.write(json.dumps({{"tool": "aws", "argv": argv}}) + "\\n")
if argv[:2] == ["ecr", "get-login-password"]:
    print(os.environ["STAND_IN_TOKEN"])
elif argv[:2] == ["s3", "cp"]:
    source, target = [a for a in argv[2:] if a.startswith("s3://") or a.startswith("/")][:2]
    if os.environ.get("STAND_IN_CORRUPT"):
        open(target, "wb").write(b"tampered in transit")
    else:
        import boto3
        bucket, key = source[5:].split("/", 1)
        s3 = boto3.client("s3", endpoint_url=os.environ["STAND_IN_MOTO"], region_name="us-east-1")
        s3.download_file(bucket, key, target)
"""

STAND_IN_DOCKER = f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
record = {{"tool": "docker", "argv": argv}}
if "--password-stdin" in argv:
    record["stdin"] = sys.stdin.read().strip()
with open(os.environ["STAND_IN_RECORD"], "a") as log:
    log.write(json.dumps(record) + "\\n")
"""


def _run_user_data(
    script: str, tmp_path: Path, moto_endpoint: str, **extra: str
) -> tuple[int, list[dict], Path]:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in (("aws", STAND_IN_AWS), ("docker", STAND_IN_DOCKER)):
        (folder / name).write_text(body)
        (folder / name).chmod(0o755 | stat.S_IEXEC)
    (tmp_path / "user-data.sh").write_text(script)
    root = tmp_path / "root"
    record = tmp_path / "record.jsonl"
    record.touch()
    env = {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "PAIS_ROOT": str(root),
        "PAIS_LOG": str(tmp_path / "user-data.log"),
        "STAND_IN_RECORD": str(record),
        "STAND_IN_TOKEN": "ecr-token-from-the-instance-role",
        "STAND_IN_MOTO": moto_endpoint,
        **extra,
    }
    done = subprocess.run(
        ["bash", str(tmp_path / "user-data.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    return done.returncode, calls, root


def _user_data(moto_endpoint: str, instance_id: str) -> str:
    attribute = moto_client(moto_endpoint, "ec2").describe_instance_attribute(
        InstanceId=instance_id, Attribute="userData"
    )
    return base64.b64decode(attribute["UserData"]["Value"]).decode()


def test_user_data_pulls_by_digest_checks_artifacts_and_runs_with_gpus(
    deployed, moto_endpoint, pushed_release, server_port, tmp_path
):
    code, calls, root = _run_user_data(
        _user_data(moto_endpoint, deployed["instance"]), tmp_path, moto_endpoint
    )
    assert code == 0, (tmp_path / "user-data.log").read_text()
    docker = [c for c in calls if c["tool"] == "docker"]
    login, pull, _remove, run = docker
    registry = pushed_release["repository"].split("/")[0]
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert login["stdin"] == "ecr-token-from-the-instance-role"
    assert pull["argv"] == ["pull", pushed_release["image"]]
    argv = run["argv"]
    assert argv[:2] == ["run", "--detach"]
    assert argv[argv.index("--gpus") + 1] == "all"
    assert argv[argv.index("--restart") + 1] == "unless-stopped"
    assert argv[argv.index("--publish") + 1] == f"{server_port}:8080"
    assert argv[argv.index("--volume") + 1] == f"{root}/model:/opt/ml/model:ro"
    assert f"awslogs-group=/pais/{NAME}" in argv
    assert argv[-2:] == [pushed_release["image"], "serve"]
    env_file = (root / "env").read_text().splitlines()
    assert "SAGEMAKER_BIND_TO_PORT=8080" in env_file and "PAIS_MAX_IMAGES_PER_REQUEST=16" in env_file
    # The artifacts were fetched with the instance role, checked and unpacked for the container.
    assert (root / "model" / "classification" / "pais-model.json").is_file()
    aws_calls = [c["argv"][:2] for c in calls if c["tool"] == "aws"]
    assert aws_calls == [["ecr", "get-login-password"], ["s3", "cp"]]


def test_user_data_stops_before_running_tampered_artifacts(deployed, moto_endpoint, tmp_path):
    script = _user_data(moto_endpoint, deployed["instance"])
    code, calls, _ = _run_user_data(script, tmp_path, moto_endpoint, STAND_IN_CORRUPT="1")
    assert code != 0
    assert "FAILED" in (tmp_path / "user-data.log").read_text()  # sha256sum --check
    assert [c["argv"][0] for c in calls if c["tool"] == "docker"] == ["login"]


def test_status_reports_readiness(deployed, aws_emulator, pais_server):
    status = run_deploy(aws_emulator.url, "ec2", "status", NAME)
    (instance,) = status["instances"]
    assert (instance["state"], instance["url"], instance["ready"]) == ("running", pais_server, "/readyz 200")
    assert run_deploy(aws_emulator.url, "ec2", "logs", NAME)["log_group"] == f"/pais/{NAME}"


def test_a_second_deploy_replaces_only_when_asked(
    deployed, aws_emulator, artifact_copy, server_port, moto_endpoint
):
    args = deploy_args(server_port, artifact_copy)
    assert "--replace" in run_deploy(aws_emulator.url, *args, status=1)
    replaced = run_deploy(aws_emulator.url, *args, "--replace", "--timeout", "120")
    assert replaced["replaced"] == [deployed["instance"]]
    assert _instance(moto_endpoint, deployed["instance"])["State"]["Name"] in ("shutting-down", "terminated")
    assert _instance(moto_endpoint, replaced["instance"])["State"]["Name"] == "running"


def test_teardown_by_tag_removes_instances_group_role_and_artifacts(
    deployed, aws_emulator, moto_endpoint, artifact_copy
):
    result = run_deploy(aws_emulator.url, "ec2", "teardown", NAME, "--purge-artifacts", "--timeout", "60")
    assert len(result["terminated"]) == 1 and result["role_deleted"] is True
    assert result["security_group_deleted"] == deployed["security_group"]
    assert artifact_copy in result["purged"]
    ec2 = moto_client(moto_endpoint, "ec2")
    live = ec2.describe_instances(
        Filters=[
            {"Name": "tag:pais:deployment", "Values": [NAME]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )["Reservations"]
    assert live == []
    assert (
        ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"pais-{NAME}"]}])[
            "SecurityGroups"
        ]
        == []
    )
    iam = moto_client(moto_endpoint, "iam")
    assert f"pais-{NAME}-ec2" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    profiles = [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]]
    assert f"pais-{NAME}-ec2" not in profiles
    again = run_deploy(aws_emulator.url, "ec2", "teardown", NAME)
    assert again["terminated"] == [] and again["role_deleted"] is False
