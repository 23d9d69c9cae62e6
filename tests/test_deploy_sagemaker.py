"""`python -m deploy sagemaker ...` end to end against moto's server behind the emulator
(tests/aws_emulator.py): the endpoint's status follows a real PAIS process's health
check, updates are blue/green with rollback detection, invocations reach the process.

The tests of one module share one endpoint and run in file order: create, use, update
(twice in one millisecond, with a secret), fail an update, batch, tear down.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy import naming
from deploy.artifacts import split_s3_uri

from .aws_emulator import moto_client
from .deploy_support import check_plan, copy_artifacts, run_deploy, run_deploy_logged
from .images import CAT_LABELS, COFFEE_LABELS

NAME = "pais-sm-test"
SECRET = "sm-secret-7d41e0"  # a token the container needs; it must show nowhere else


@pytest.fixture(scope="module")
def deployed(aws_emulator, pushed_release) -> dict:
    return run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        NAME,
        "--create-role",
        "--autoscale",
        "1,3,50",
        "--tags",
        "team=ml",
    )


def sm(moto_endpoint: str):
    return moto_client(moto_endpoint, "sagemaker")


def test_create_waits_for_the_container_and_runs_the_pushed_release(
    deployed, aws_emulator, pushed_release, moto_endpoint
):
    assert deployed["action"] == "created"
    assert deployed["status"] == "InService"
    # InService was only reported once the real process answered its health check.
    fleet = aws_emulator.fleets[NAME]
    assert fleet.status == "InService"
    assert fleet.variants[0].container.healthy()
    assert fleet.variants[0].instance_type == "ml.g5.xlarge"
    model = sm(moto_endpoint).describe_model(ModelName=deployed["model"])
    assert model["PrimaryContainer"]["Image"] == pushed_release["image"]  # by digest
    assert "@sha256:" in model["PrimaryContainer"]["Image"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == pushed_release["model_data"]
    tags = {t["Key"]: t["Value"] for t in sm(moto_endpoint).list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert tags["pais:deployment"] == NAME and tags["team"] == "ml"


def test_created_role_is_least_privilege(deployed, moto_endpoint, pushed_release):
    iam = moto_client(moto_endpoint, "iam")
    role = iam.get_role(RoleName=f"pais-{NAME}-sagemaker")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    statements = {
        s["Sid"]: s
        for s in iam.get_role_policy(RoleName=role["RoleName"], PolicyName="pais")["PolicyDocument"][
            "Statement"
        ]
    }
    bucket, key = split_s3_uri(pushed_release["model_data"])
    assert statements["EcrPull"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/pais"]
    assert statements["ReadArtifacts"]["Action"] == ["s3:GetObject"]
    assert statements["ReadArtifacts"]["Resource"] == [f"arn:aws:s3:::{bucket}/{key.split('/')[0]}/*"]
    wildcard = {sid for sid, s in statements.items() if "*" in s["Resource"]}
    assert wildcard == {"EcrLogin", "Metrics"}  # the two actions AWS gives no resource to scope


def test_autoscaling_tracks_invocations_per_instance(deployed, moto_endpoint):
    scaling = moto_client(moto_endpoint, "application-autoscaling")
    (target,) = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{NAME}/variant/AllTraffic"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    (policy,) = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
    )["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 50
    assert (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )


def test_invoke_is_a_smoke_test_with_a_real_photo(deployed, aws_emulator, cat_jpeg, tmp_path):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    result = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "invoke",
        NAME,
        "--file",
        str(photo),
        "--task",
        "classify",
        "--expect",
        "cat",
    )
    assert result["variant"] == "AllTraffic"
    assert json.dumps(result["body"]).count("label") >= 1
    assert CAT_LABELS & set(json.dumps(result["body"]).split('"'))


def test_the_runtime_api_is_what_other_code_uses(deployed, aws_emulator, cat_jpeg):
    runtime = moto_client(aws_emulator.url, "sagemaker-runtime")
    answer = runtime.invoke_endpoint(
        EndpointName=NAME, Body=cat_jpeg, ContentType="image/jpeg", CustomAttributes="task=classify"
    )
    assert CAT_LABELS & set(answer["Body"].read().decode().split('"'))


def test_a_refused_payload_is_a_model_error_with_the_container_message(deployed, aws_emulator, tmp_path):
    bogus = tmp_path / "not-a-photo.jpg"
    bogus.write_bytes(b"this is text, not a JPEG")
    error = run_deploy(
        aws_emulator.url, "sagemaker", "invoke", NAME, "--file", str(bogus), "--task", "classify", status=1
    )
    assert "answered 4" in error


def test_logs_show_the_container_output(deployed, aws_emulator):
    result = run_deploy(aws_emulator.url, "sagemaker", "logs", NAME, "--since", "1h")
    assert result["log_group"] == f"/aws/sagemaker/Endpoints/{NAME}"
    assert result["events"] > 0
    port = aws_emulator.fleets[NAME].variants[0].container.port
    assert any(str(port) in line for line in result["lines"]), result["lines"][-10:]
    followed = run_deploy(
        aws_emulator.url, "sagemaker", "logs", NAME, "--since", "1h", "--follow", "--timeout", "1"
    )
    assert followed["events"] == result["events"] or followed["events"] > result["events"]


def test_status_shows_variants_scaling_and_cost(deployed, aws_emulator, pushed_release):
    status = run_deploy(aws_emulator.url, "sagemaker", "status", NAME)
    endpoint = status["endpoint"]
    assert endpoint["status"] == "InService"
    (variant,) = endpoint["variants"]
    assert variant["image"] == pushed_release["image"]
    assert variant["instance_type"] == "ml.g5.xlarge"
    assert status["autoscaling"][0]["max"] == 3
    assert status["cost_per_hour_usd"] == 1.408


def test_update_is_blue_green_and_cleans_up_the_previous_release(deployed, aws_emulator, moto_endpoint):
    updated = run_deploy(aws_emulator.url, "sagemaker", "deploy", NAME, "--instance-type", "ml.g4dn.xlarge")
    assert updated["action"] == "updated"
    assert updated["previous_config"] == deployed["endpoint_config"]
    assert updated["status"] == "InService"
    assert set(updated["deleted"]) == {deployed["endpoint_config"], deployed["model"]}
    endpoint = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)
    assert endpoint["EndpointConfigName"] == updated["endpoint_config"]
    assert aws_emulator.fleets[NAME].variants[0].instance_type == "ml.g4dn.xlarge"
    configs = [
        c["EndpointConfigName"]
        for c in sm(moto_endpoint).list_endpoint_configs(NameContains=NAME)["EndpointConfigs"]
    ]
    assert configs == [updated["endpoint_config"]]
    # The instance type changed, so scaling was lifted for the update and put back after.
    status = run_deploy(aws_emulator.url, "sagemaker", "status", NAME)
    assert [(s["min"], s["max"], s["target"]) for s in status["autoscaling"]] == [(1, 3, 50.0)]


def _configs(moto_endpoint: str) -> list[str]:
    return [
        c["EndpointConfigName"]
        for c in sm(moto_endpoint).list_endpoint_configs(NameContains=NAME)["EndpointConfigs"]
    ]


def test_two_deploys_in_the_same_millisecond_both_succeed(deployed, aws_emulator, moto_endpoint, monkeypatch):
    """The clock stands still: the names still differ, and each update deletes only the
    release it replaced, never the one it made."""
    moment = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    monkeypatch.setattr(naming, "now", lambda: moment)
    args = ("sagemaker", "deploy", NAME, "--instance-type", "ml.g4dn.xlarge", "--secret", "HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    first, first_log = run_deploy_logged(aws_emulator.url, *args)
    second, second_log = run_deploy_logged(aws_emulator.url, *args)
    assert first["endpoint_config"].startswith(f"{NAME}-300102030405678-")
    assert second["endpoint_config"].startswith(f"{NAME}-300102030405678-")
    assert first["endpoint_config"] != second["endpoint_config"] and first["model"] != second["model"]
    assert (first["status"], second["status"]) == ("InService", "InService")
    assert second["previous_config"] == first["endpoint_config"]
    assert set(second["deleted"]) == {first["endpoint_config"], first["model"]}
    endpoint = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        second["endpoint_config"],
    )
    assert _configs(moto_endpoint) == [second["endpoint_config"]]
    assert sm(moto_endpoint).describe_model(ModelName=second["model"])
    assert SECRET not in first_log + second_log + json.dumps([first, second])


def test_the_secret_reaches_the_container_and_nothing_else(deployed, aws_emulator, moto_endpoint):
    model = sm(moto_endpoint).describe_endpoint_config(
        EndpointConfigName=sm(moto_endpoint).describe_endpoint(EndpointName=NAME)["EndpointConfigName"]
    )["ProductionVariants"][0]["ModelName"]
    environment = sm(moto_endpoint).describe_model(ModelName=model)["PrimaryContainer"]["Environment"]
    assert SECRET not in json.dumps(environment)
    parameter = f"/pais/{NAME}/HF_TOKEN"
    assert (
        environment["PAIS_SECRETS_FROM_SSM"]
        == f"HF_TOKEN=arn:aws:ssm:us-east-1:123456789012:parameter{parameter}"
    )
    stored = moto_client(moto_endpoint, "ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", SECRET)
    # The serving process (the entrypoint exec'd bentoml in place) holds the value ...
    container = aws_emulator.fleets[NAME].variants[0].container
    environ = Path(f"/proc/{container.process.pid}/environ").read_bytes().split(b"\0")
    assert f"HF_TOKEN={SECRET}".encode() in environ
    assert not any(line.startswith(b"PAIS_SECRETS_FROM_SSM=") for line in environ)  # consumed
    # ... and its log says it was set, not what it is.
    logs = run_deploy(aws_emulator.url, "sagemaker", "logs", NAME, "--since", "1h")
    assert any("pais entrypoint: HF_TOKEN" in line for line in logs["lines"])
    assert not any(SECRET in line for line in logs["lines"])
    # The role may read the deployment's parameters, and only those.
    document = moto_client(moto_endpoint, "iam").get_role_policy(
        RoleName=f"pais-{NAME}-sagemaker", PolicyName="pais"
    )
    (reads,) = [s for s in document["PolicyDocument"]["Statement"] if s["Sid"] == "ReadSecrets"]
    assert reads["Resource"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter/pais/{NAME}/*"]


def test_tampered_artifacts_stop_the_container_before_it_serves(
    deployed, aws_emulator, moto_endpoint, pushed_release, tmp_path
):
    """SageMaker downloads the artifacts again for every new instance: if they changed in S3
    after the deploy, the entrypoint refuses them (the update rolls back)."""
    import io
    import tarfile

    bucket, key = split_s3_uri(pushed_release["model_data"])
    s3 = moto_client(moto_endpoint, "s3")
    original = s3.get_object(Bucket=bucket, Key=key)
    metadata = original["Metadata"]
    tampered = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(original["Body"].read()), mode="r:gz") as source,
        tarfile.open(fileobj=tampered, mode="w:gz") as target,
    ):
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "classification/pais-model.json":
                data = data.replace(b"{", b'{"tampered": true, ', 1)
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    copy = f"s3://{bucket}/pais/tampered/model.tar.gz"
    s3.put_object(
        Bucket=bucket, Key="pais/tampered/model.tar.gz", Body=tampered.getvalue(), Metadata=metadata
    )
    before = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)["EndpointConfigName"]
    error = run_deploy(aws_emulator.url, "sagemaker", "deploy", NAME, "--model-data", copy, status=1)
    assert "rolled back" in error
    endpoint = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    logs = run_deploy(aws_emulator.url, "sagemaker", "logs", NAME, "--since", "1h")
    assert any(
        "do not match their manifest" in line and "classification/pais-model.json: sha256" in line
        for line in logs["lines"]
    ), logs["lines"][-20:]


def test_a_failed_update_is_detected_as_a_rollback(deployed, aws_emulator, moto_endpoint):
    before = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)["EndpointConfigName"]
    error = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        NAME,
        "--env",
        "PAIS_CLASSIFICATION_MAX_BATCH_SIZE=zero",
        status=1,
    )
    assert "rolled back" in error and "ping health check" in error
    endpoint = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert aws_emulator.fleets[NAME].variants[0].container.healthy()  # the old fleet kept serving
    configs = [
        c["EndpointConfigName"]
        for c in sm(moto_endpoint).list_endpoint_configs(NameContains=NAME)["EndpointConfigs"]
    ]
    assert configs == [before]  # the failed release's config and model are gone


def test_update_invoke_and_teardown_plans_change_nothing(
    deployed, aws_emulator, moto_endpoint, cat_jpeg, tmp_path
):
    before = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)["EndpointConfigName"]
    update = run_deploy(
        aws_emulator.url, "sagemaker", "deploy", NAME, "--dry-run", "--instance-type", "ml.g6.xlarge"
    )
    operations = check_plan(update)
    assert ("sagemaker", "UpdateEndpoint") in operations and (
        "sagemaker",
        "DeleteEndpointConfig",
    ) in operations
    (call,) = [c["params"] for c in update["calls"] if c["operation"] == "UpdateEndpoint"]
    policy = call["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}

    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    invoke = run_deploy(aws_emulator.url, "sagemaker", "invoke", NAME, "--file", str(photo), "--dry-run")
    assert check_plan(invoke) == [("sagemaker-runtime", "InvokeEndpoint")]
    assert invoke["calls"][0]["params"]["Body"] == f"<{len(cat_jpeg)} bytes>"

    teardown = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME, "--dry-run")
    operations = check_plan(teardown)
    order = [op for _, op in operations]
    assert (
        order.index("DeregisterScalableTarget")
        < order.index("DeleteEndpoint")
        < order.index("DeleteEndpointConfig")
    )
    assert order.index("DeleteEndpointConfig") < order.index("DeleteModel") < order.index("DeleteRole")

    endpoint = sm(moto_endpoint).describe_endpoint(EndpointName=NAME)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert moto_client(moto_endpoint, "iam").get_role(RoleName=f"pais-{NAME}-sagemaker")


def test_add_mode_adds_a_variant_without_traffic(deployed, aws_emulator):
    added = run_deploy(aws_emulator.url, "sagemaker", "deploy", NAME, "--mode", "add", "--keep-previous")
    variants = run_deploy(aws_emulator.url, "sagemaker", "status", NAME)["endpoint"]["variants"]
    weights = {v["variant"]: v["weight"] for v in variants}
    assert weights == {"AllTraffic": 1.0, added["variant"]: 0.0}


def _batch(
    url: str, moto_endpoint: str, bucket: str, folder: str, records: list[str], *extra: str, status: int = 0
):
    """Put `records` as s3://bucket/batch/<folder>/input.jsonl and run `sagemaker batch` on it."""
    body = "\n".join(records) + "\n"
    moto_client(moto_endpoint, "s3").put_object(
        Bucket=bucket, Key=f"batch/{folder}/input.jsonl", Body=body.encode()
    )
    return run_deploy(
        url,
        "sagemaker",
        "batch",
        NAME,
        "--input",
        f"s3://{bucket}/batch/{folder}/",
        "--output-path",
        f"s3://{bucket}/batch/{folder}-out/",
        *extra,
        status=status,
    )


def test_batch_transform_answers_every_line_and_reports_bad_ones(
    deployed, aws_emulator, moto_endpoint, pushed_release, cat_jpeg, coffee_jpeg, tmp_path
):
    bucket, _ = split_s3_uri(pushed_release["model_data"])
    records = [
        {"images": base64.b64encode(cat_jpeg).decode(), "top_k": 1},
        {"images": base64.b64encode(b"text, not a photo").decode()},
        {"images": base64.b64encode(coffee_jpeg).decode(), "top_k": 3},
    ]
    lines = [json.dumps(record) for record in records]
    download = tmp_path / "results"
    result = _batch(
        aws_emulator.url,
        moto_endpoint,
        bucket,
        "mixed",
        lines,
        "--task",
        "classify",
        "--download",
        str(download),
    )
    assert result["status"] == "Completed"
    assert (result["records"], result["errors"]) == (3, 1)
    (failure,) = result["failures"]
    assert failure["input"] == f"s3://{bucket}/batch/mixed/input.jsonl" and failure["line"] == 2
    assert "not a recognised image" in failure["error"]
    answers = [json.loads(line) for line in (download / "input.jsonl.out").read_text().splitlines()]
    assert answers[0][0]["predictions"][0]["label"] in CAT_LABELS
    assert answers[1]["status"] == 415
    assert COFFEE_LABELS & {p["label"] for p in answers[2][0]["predictions"]}
    logs = run_deploy(aws_emulator.url, "sagemaker", "logs", NAME, "--job", result["job"])
    assert logs["events"] > 0  # the job's container wrote to /aws/sagemaker/TransformJobs


def test_a_failed_batch_job_is_reported_with_its_reason(
    deployed, aws_emulator, moto_endpoint, pushed_release
):
    bucket, _ = split_s3_uri(pushed_release["model_data"])
    oversized = [json.dumps({"images": "A" * (1024 * 1024 + 10)})]
    error = _batch(
        aws_emulator.url, moto_endpoint, bucket, "big", oversized, "--max-payload-mb", "1", status=1
    )
    assert "failed: ClientError" in error and "413" in error


def test_teardown_removes_everything_in_order(deployed, aws_emulator, moto_endpoint, pushed_release):
    result = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME)
    removed = result["removed"]
    assert removed["endpoint"] == [NAME]
    assert (
        len(removed["endpoint_configs"]) == 2 and len(removed["models"]) == 2
    )  # current + --keep-previous'd
    assert result["role_deleted"] is True
    assert result["kept_artifacts"] == [pushed_release["model_data"]]
    assert NAME not in aws_emulator.fleets
    client = sm(moto_endpoint)
    assert client.list_endpoints(NameContains=NAME)["Endpoints"] == []
    assert client.list_endpoint_configs(NameContains=NAME)["EndpointConfigs"] == []
    # moto's ListModels ignores NameContains (other modules' models are listed too)
    assert [m["ModelName"] for m in client.list_models()["Models"] if NAME in m["ModelName"]] == []
    scaling = moto_client(moto_endpoint, "application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert all(NAME not in target["ResourceId"] for target in targets)
    again = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME)
    assert again["removed"] == {"transform_jobs": [], "endpoint": [], "endpoint_configs": [], "models": []}


ASYNC = "pais-sm-async"


@pytest.fixture(scope="module")
def async_deployed(aws_emulator, pushed_release, moto_endpoint) -> dict:
    """An async endpoint on a copy of the artifacts (so that purging them harms no one)."""
    bucket, _ = split_s3_uri(pushed_release["model_data"])
    copy = copy_artifacts(moto_endpoint, pushed_release["model_data"], "pais/async-copy/model.tar.gz")
    return run_deploy(
        aws_emulator.url,
        "sagemaker",
        "deploy",
        ASYNC,
        "--create-role",
        "--model-data",
        copy,
        "--async",
        "--async-output",
        f"s3://{bucket}/async/out/",
        "--async-failure",
        f"s3://{bucket}/async/failed/",
        "--autoscale",
        "0,2,5",
    )


def test_async_endpoint_scales_on_backlog_down_to_zero(async_deployed, moto_endpoint):
    assert async_deployed["status"] == "InService"
    assert async_deployed["autoscaling"]["scale_from_zero_alarm"]
    scaling = moto_client(moto_endpoint, "application-autoscaling")
    (target,) = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{ASYNC}/variant/AllTraffic"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    policies = {
        p["PolicyType"]: p
        for p in scaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
        )["ScalingPolicies"]
    }
    metric = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"][
        "CustomizedMetricSpecification"
    ]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": ASYNC}]
    step = policies["StepScaling"]["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert step == [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]
    (alarm,) = moto_client(moto_endpoint, "cloudwatch").describe_alarms(
        AlarmNames=[async_deployed["autoscaling"]["scale_from_zero_alarm"]]
    )["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["AlarmActions"] == [policies["StepScaling"]["PolicyARN"]]


def test_async_role_may_write_only_its_output_paths(async_deployed, moto_endpoint, pushed_release):
    bucket, _ = split_s3_uri(pushed_release["model_data"])
    document = moto_client(moto_endpoint, "iam").get_role_policy(
        RoleName=f"pais-{ASYNC}-sagemaker", PolicyName="pais"
    )
    (write,) = [s for s in document["PolicyDocument"]["Statement"] if s["Sid"] == "WriteOutputs"]
    assert write["Resource"] == [
        f"arn:aws:s3:::{bucket}/async/failed/*",
        f"arn:aws:s3:::{bucket}/async/out/*",
    ]


def test_async_invoke_waits_for_the_result_object(
    async_deployed, aws_emulator, pushed_release, cat_jpeg, tmp_path
):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    result = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "invoke",
        ASYNC,
        "--file",
        str(photo),
        "--task",
        "classify",
        "--expect",
        "cat",
    )
    bucket, _ = split_s3_uri(pushed_release["model_data"])
    assert result["result"] == f"s3://{bucket}/async/out/{result['inference_id']}.out"
    assert result["body"][0]["predictions"][0]["label"] in CAT_LABELS
    bogus = tmp_path / "not-a-photo.jpg"
    bogus.write_bytes(b"this is text, not a JPEG")
    error = run_deploy(aws_emulator.url, "sagemaker", "invoke", ASYNC, "--file", str(bogus), status=1)
    assert "failed" in error and "not a recognised image" in error


def test_teardown_purges_artifacts_and_logs(async_deployed, aws_emulator, moto_endpoint):
    result = run_deploy(aws_emulator.url, "sagemaker", "teardown", ASYNC, "--purge-artifacts")
    assert async_deployed["model_data"] in result["purged"]
    assert f"log group /aws/sagemaker/Endpoints/{ASYNC}" in result["purged"]
    bucket, key = split_s3_uri(async_deployed["model_data"])
    listed = moto_client(moto_endpoint, "s3").list_objects_v2(Bucket=bucket, Prefix=key)
    assert listed["KeyCount"] == 0
    assert (
        moto_client(moto_endpoint, "cloudwatch").describe_alarms(AlarmNamePrefix=ASYNC)["MetricAlarms"] == []
    )
