"""`python -m deploy ec2 ...` end to end against moto's server behind the emulator: the
instance boots for real as far as this machine can (emulator extension 10,
tests/ec2_host.py): its user data runs with stand-in `aws` and `docker`, and the container
it starts is this repository's entrypoint on the instance's own address, serving HTTPS with
the deployment's certificate and reading its API key from SSM. `deploy` returns only once
that server, which takes its time to load its models, answers /readyz.
"""

from __future__ import annotations

import base64
import json
import stat

import httpx
import pytest

from deploy.artifacts import split_s3_uri
from deploy.ec2.tls import fingerprint, pinned_context

from .aws_emulator import moto_client
from .deploy_support import copy_artifacts, run_deploy, run_deploy_logged
from .ec2_host import TOKEN, run_user_data
from .images import CAT_LABELS
from .servers import free_port

NAME = "pais-ec2-test"
SECRET = "ec2-api-key-51c0de"  # the server's API key: it must show nowhere but in SSM and the server


@pytest.fixture(scope="module")
def artifact_copy(pushed_release, moto_endpoint) -> str:
    return copy_artifacts(moto_endpoint, pushed_release["model_data"], "ec2-copy/model.tar.gz")


@pytest.fixture(scope="module")
def server_port() -> str:
    return str(free_port())


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
        "--secret",
        f"PAIS_API_KEYS={SECRET}",
    )


@pytest.fixture(scope="module")
def deployed(aws_emulator, artifact_copy, server_port) -> dict:
    result, progress = run_deploy_logged(
        aws_emulator.url,
        *deploy_args(server_port, artifact_copy),
        "--spot",
        "--env",
        "PAIS_CLASSIFICATION_MAX_IMAGES=16",
        "--timeout",
        "600",
    )
    return {**result, "progress": progress}


def _instance(moto_endpoint: str, instance_id: str) -> dict:
    reservations = moto_client(moto_endpoint, "ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"
    ]
    return reservations[0]["Instances"][0]


def test_deploy_waits_until_the_late_server_answers_over_https(deployed, aws_emulator, server_port, cat_jpeg):
    host = aws_emulator.hosts[deployed["instance"]]
    assert deployed["url"] == f"https://{host.address}:{server_port}"
    assert deployed["ready"] == "/readyz 200"
    # The wait saw the server before it was ready (it loads its model first), then ready.
    waits = [line for line in deployed["progress"].splitlines() if "/readyz answers 200:" in line]
    assert len(waits) >= 2 and waits[-1].endswith("/readyz 200"), waits
    assert all(not line.endswith("/readyz 200") for line in waits[:-1])
    assert any("not answering" in line or "/readyz 503" in line for line in waits[:-1])
    # HTTPS with the deployment's certificate, which clients pin; nothing else is trusted.
    context = pinned_context(deployed["tls"]["certificate"])
    assert httpx.get(f"{deployed['url']}/readyz", verify=context, timeout=30).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{deployed['url']}/readyz", timeout=30)  # the system's CAs do not know it
    try:  # no plain HTTP
        plain = httpx.get(f"http://{host.address}:{server_port}/readyz", timeout=30).status_code
    except httpx.HTTPError:
        plain = None
    assert plain != 200
    assert deployed["tls"]["sha256_fingerprint"] == fingerprint(deployed["tls"]["certificate"])
    # The API key from SSM guards it.
    files = {"images": ("cat.jpg", cat_jpeg, "image/jpeg")}
    refused = httpx.post(f"{deployed['url']}/classify", files=files, verify=context, timeout=120)
    assert refused.status_code == 401
    answer = httpx.post(
        f"{deployed['url']}/classify",
        files=files,
        headers={"Authorization": f"Bearer {SECRET}"},
        verify=context,
        timeout=120,
    )
    assert answer.status_code == 200 and CAT_LABELS & set(answer.text.split('"'))
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


def test_instance_role_reads_only_its_image_artifacts_parameters_and_logs(
    deployed, moto_endpoint, artifact_copy
):
    iam = moto_client(moto_endpoint, "iam")
    role = f"pais-{NAME}-ec2"
    statements = {
        s["Sid"]: s
        for s in iam.get_role_policy(RoleName=role, PolicyName="pais")["PolicyDocument"]["Statement"]
    }
    bucket, key = split_s3_uri(artifact_copy)
    assert statements["ReadArtifacts"]["Resource"] == [f"arn:aws:s3:::{bucket}/{key}"]
    assert statements["EcrPull"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/pais"]
    assert statements["ReadSecrets"]["Resource"] == [
        f"arn:aws:ssm:us-east-1:123456789012:parameter/pais/{NAME}/*"
    ]
    assert all(f"log-group:/pais/{NAME}" in arn for arn in statements["Logs"]["Resource"])
    attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    assert attached == ["AmazonSSMManagedInstanceCore"]
    groups = moto_client(moto_endpoint, "logs").describe_log_groups(logGroupNamePrefix=f"/pais/{NAME}")[
        "logGroups"
    ]
    assert groups[0]["retentionInDays"] == 30


def _user_data(moto_endpoint: str, instance_id: str) -> str:
    attribute = moto_client(moto_endpoint, "ec2").describe_instance_attribute(
        InstanceId=instance_id, Attribute="userData"
    )
    return base64.b64decode(attribute["UserData"]["Value"]).decode()


def test_user_data_pulls_by_digest_checks_artifacts_and_runs_with_gpus(
    deployed, aws_emulator, pushed_release, server_port
):
    boot = aws_emulator.hosts[deployed["instance"]].boot  # what the instance ran at first boot
    assert boot.code == 0, boot.log.read_text()
    docker = [c for c in boot.calls if c["tool"] == "docker"]
    login, pull, _remove, run = docker
    registry = pushed_release["repository"].split("/")[0]
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert login["stdin"] == TOKEN
    assert pull["argv"] == ["pull", pushed_release["image"]]
    argv = run["argv"]
    assert argv[:2] == ["run", "--detach"]
    assert argv[argv.index("--gpus") + 1] == "all"
    assert argv[argv.index("--restart") + 1] == "unless-stopped"
    assert argv[argv.index("--publish") + 1] == f"{server_port}:8080"
    assert argv[argv.index("--volume") + 1] == f"{boot.root}/model:/opt/ml/model:ro"
    assert f"awslogs-group=/pais/{NAME}" in argv
    assert argv[-2:] == [pushed_release["image"], "serve"]
    env_file = (boot.root / "env").read_text().splitlines()
    assert "SAGEMAKER_BIND_TO_PORT=8080" in env_file and "PAIS_CLASSIFICATION_MAX_IMAGES=16" in env_file
    assert f"PAIS_ARTIFACTS_SHA256={pushed_release['manifest_sha256']}" in env_file
    # The artifacts were fetched with the instance role, checked and unpacked for the container.
    assert (boot.root / "model" / "classification" / "pais-model.json").is_file()
    aws_calls = [c["argv"][:2] for c in boot.calls if c["tool"] == "aws"]
    assert aws_calls == [["ecr", "get-login-password"], ["s3", "cp"]]


def test_the_secret_is_nowhere_but_in_ssm_and_the_server(deployed, aws_emulator, moto_endpoint):
    parameter = f"/pais/{NAME}/PAIS_API_KEYS"
    stored = moto_client(moto_endpoint, "ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", SECRET)
    assert deployed["secrets"] == {"PAIS_API_KEYS": parameter}
    user_data = _user_data(moto_endpoint, deployed["instance"])
    assert (
        f"PAIS_SECRETS_FROM_SSM=PAIS_API_KEYS=arn:aws:ssm:us-east-1:123456789012:parameter{parameter}"
        in user_data
    )
    host = aws_emulator.hosts[deployed["instance"]]
    env_file = host.boot.root / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    places = {
        "user data": user_data,
        "the container's env file": env_file.read_text(),
        "the user-data log": host.boot.log.read_text(),
        "the container's log": host.container_log.read_text(errors="replace"),
        "the tool's output": json.dumps(deployed),
    }
    assert {where: SECRET in text for where, text in places.items()} == dict.fromkeys(places, False)
    assert "pais entrypoint: PAIS_API_KEYS" in places["the container's log"]  # set, by name only
    key = moto_client(moto_endpoint, "ssm").get_parameter(Name=f"/pais/{NAME}/tls", WithDecryption=True)
    assert "PRIVATE KEY" in key["Parameter"]["Value"] and key["Parameter"]["Type"] == "SecureString"
    assert "PRIVATE KEY" not in user_data + json.dumps(deployed)


def test_user_data_stops_before_running_tampered_artifacts(deployed, moto_endpoint, tmp_path):
    script = _user_data(moto_endpoint, deployed["instance"])
    run = run_user_data(script, tmp_path, moto_endpoint, STAND_IN_CORRUPT="1")
    assert run.code != 0
    assert "FAILED" in run.log.read_text()  # sha256sum --check
    assert [c["argv"][0] for c in run.calls if c["tool"] == "docker"] == ["login"]


def test_status_reports_readiness(deployed, aws_emulator):
    status = run_deploy(aws_emulator.url, "ec2", "status", NAME)
    (instance,) = status["instances"]
    assert (instance["state"], instance["url"], instance["ready"]) == (
        "running",
        deployed["url"],
        "/readyz 200",
    )
    assert status["tls"]["sha256_fingerprint"] == deployed["tls"]["sha256_fingerprint"]
    assert run_deploy(aws_emulator.url, "ec2", "logs", NAME)["log_group"] == f"/pais/{NAME}"


def test_a_second_deploy_replaces_only_when_asked(
    deployed, aws_emulator, artifact_copy, server_port, moto_endpoint
):
    args = deploy_args(server_port, artifact_copy)
    assert "--replace" in run_deploy(aws_emulator.url, *args, status=1)
    replaced = run_deploy(aws_emulator.url, *args, "--replace", "--timeout", "600")
    assert replaced["replaced"] == [deployed["instance"]]
    assert replaced["url"] != deployed["url"]  # another instance, another address
    assert replaced["tls"]["certificate"] == deployed["tls"]["certificate"]  # clients keep their pin
    assert _instance(moto_endpoint, deployed["instance"])["State"]["Name"] in ("shutting-down", "terminated")
    assert _instance(moto_endpoint, replaced["instance"])["State"]["Name"] == "running"
    assert aws_emulator.hosts[deployed["instance"]].container.poll() is not None  # the old one stopped


def test_teardown_by_tag_removes_instances_group_role_and_secrets(
    deployed, aws_emulator, moto_endpoint, artifact_copy
):
    result = run_deploy(aws_emulator.url, "ec2", "teardown", NAME, "--purge-artifacts", "--timeout", "60")
    assert len(result["terminated"]) == 1 and result["role_deleted"] is True
    assert result["security_group_deleted"] == deployed["security_group"]
    assert sorted(result["secrets_deleted"]) == [
        f"/pais/{NAME}/{n}" for n in ("PAIS_API_KEYS", "tls", "tls-certificate")
    ]
    assert result["purged"] == [f"log group /pais/{NAME}"]
    # --model-data outside `push`'s release layout is the user's: named, and kept.
    (kept,) = result["left_alone"]
    assert (kept["name"], kept["reason"]) == (
        artifact_copy,
        "not under the tool's release layout <repository>/<tag>/model.tar.gz",
    )
    bucket, key = split_s3_uri(artifact_copy)
    assert moto_client(moto_endpoint, "s3").head_object(Bucket=bucket, Key=key)
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
    assert again["terminated"] == [] and again["role_deleted"] is False and again["secrets_deleted"] == []
