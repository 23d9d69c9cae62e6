"""The deploy tool's small parts: cost from the dated table, argument parsing, names that do
not collide, AMI lookup by name, the user-data script's refusals, secrets kept out of
--env and plans, the entrypoint's artifact check, log time spans."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from deploy import cost, entrypoint, prices, secret_store
from deploy.aws import Aws, AwsOptions
from deploy.ec2 import ami, userdata
from deploy.errors import DeployError
from deploy.logs import parse_since
from deploy.naming import (
    BATCH_INFIX,
    MAX_NAME,
    SAGEMAKER_MAX,
    batch_job_name,
    check_name,
    is_versioned,
    parse_env,
    parse_tags,
    unique_suffix,
)
from deploy.plan import enum_values, plan_params
from deploy.sagemaker.autoscale import Autoscale

from .deploy_support import run_deploy


def test_cost_comes_from_the_dated_table():
    estimate = cost.estimate("us-east-1", ["ml.g5.xlarge", "g5.xlarge", "p9.imaginary"], count=2)
    sagemaker, ec2, unknown = estimate["rows"]
    assert sagemaker["usd_per_hour"] == round(2 * prices.SAGEMAKER["us-east-1"]["ml.g5.xlarge"], 4)
    assert ec2["usd_per_month"] == round(2 * prices.EC2["us-east-1"]["g5.xlarge"] * 730, 2)
    assert "not in the price table" in unknown["note"]
    assert estimate["prices_as_of"] == prices.PRICES_DATE and estimate["sources"]
    assert (
        "not in the price table for eu-north-1"
        in cost.estimate("eu-north-1", ["g5.xlarge"])["rows"][0]["note"]
    )


def test_every_priced_type_is_a_real_instance_type():
    sagemaker = set(enum_values("sagemaker", "ProductionVariantInstanceType"))
    ec2 = set(enum_values("ec2", "InstanceType"))
    for table, allowed in ((prices.SAGEMAKER, sagemaker), (prices.EC2, ec2)):
        for region_prices in table.values():
            assert set(region_prices) <= allowed


def test_cost_command_needs_no_aws():
    # Nothing listens on port 9: an AWS call would fail the command.
    result = run_deploy(
        "http://127.0.0.1:9", "cost", "--instance-type", "ml.g5.xlarge", "--serverless-memory-mb", "2048"
    )
    assert result["rows"][0]["usd_per_hour"] == prices.SAGEMAKER["us-east-1"]["ml.g5.xlarge"]
    assert result["rows"][1]["usd_per_busy_hour"] == round(
        prices.SERVERLESS_PER_GB_SECOND["us-east-1"] * 2 * 3600, 4
    )


def test_arguments_are_checked():
    assert parse_tags(["team=ml,env=prod", "cost=42"]) == {"team": "ml", "env": "prod", "cost": "42"}
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    assert Autoscale.parse("0,4,2.5") == Autoscale(0, 4, 2.5)
    for bad in ("1,2", "3,1,5", "1,2,0", "a,b,c"):
        with pytest.raises(DeployError):
            Autoscale.parse(bad)
    with pytest.raises(DeployError):
        parse_tags(["no-equals"])
    assert check_name("pais-prod-1") == "pais-prod-1"
    assert check_name("x" * MAX_NAME)
    for bad in ("-x", "a--b", "x" * (MAX_NAME + 1), "under_score"):
        with pytest.raises(DeployError):
            check_name(bad)


def test_log_spans():
    now = 1_700_000_000_000
    assert parse_since("10m", now) == now - 600_000
    assert parse_since("2h", now) == now - 7_200_000
    assert parse_since("2023-11-14T22:13:20+00:00", now) == 1_700_000_000_000
    with pytest.raises(DeployError):
        parse_since("yesterday", now)


def test_ami_is_found_by_name_when_the_parameter_is_missing(moto_endpoint):
    aws = Aws(AwsOptions(region="us-east-1", endpoint_url=moto_endpoint, max_attempts=1))
    found = ami.find_ami(aws, None, "/aws/service/no/such/parameter", "Deep Learning AMI Ubuntu*")
    assert found["name"].startswith("Deep Learning AMI Ubuntu")
    assert "newest Amazon image" in found["found_by"]
    with pytest.raises(DeployError, match="pass --ami"):
        ami.find_ami(aws, None, "/aws/service/no/such/parameter", "No Such AMI *")


def test_user_data_refuses_a_tag_and_unchecked_artifacts():
    common = {"region": "us-east-1", "registry": "r", "port": 80, "log_group": "/pais/x", "env": {}}
    with pytest.raises(DeployError, match="by digest"):
        userdata.render(image="r/pais:latest", **common)
    with pytest.raises(DeployError, match="sha256"):
        userdata.render(image="r/pais@sha256:" + "0" * 64, model_data="s3://b/k", **common)
    with pytest.raises(DeployError, match="line breaks"):
        userdata.render(image="r/pais@sha256:" + "0" * 64, **{**common, "env": {"A": "1\nB=2"}})
    script = userdata.render(image="r/pais@sha256:" + "0" * 64, gpus=False, **common)
    assert "--gpus" not in script and "--volume" not in script


def test_names_do_not_collide_in_the_same_millisecond():
    moment = datetime(2025, 1, 31, 14, 25, 1, 123456, tzinfo=UTC)
    names = {f"{'d' * MAX_NAME}-{unique_suffix(moment)}" for _ in range(20)}
    assert len(names) == 20  # 2^25 random parts: 20 names clash once in ~176,000 runs
    name = next(iter(names))
    assert name.startswith("d" * MAX_NAME + "-250131142501123-") and len(name) <= SAGEMAKER_MAX
    assert len(batch_job_name("d" * MAX_NAME, moment)) == SAGEMAKER_MAX  # the longest made name
    later = unique_suffix(moment.replace(microsecond=124000))
    assert later > unique_suffix(moment).rsplit("-", 1)[0]  # names sort by time
    assert is_versioned(f"x-{later}", "x") and is_versioned(batch_job_name("x", moment), "x", BATCH_INFIX)
    assert not is_versioned(f"x-other-{later}", "x") and not is_versioned("x-batch-theirs", "x", BATCH_INFIX)


def test_secrets_are_refused_in_env_and_taken_from_the_environment():
    for name in ("PAIS_API_KEYS", "HF_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "MY_API_KEY"):
        with pytest.raises(DeployError, match=f"--secret {name}") as refused:
            secret_store.check_env({name: "s3cr3t-value"})
        assert "s3cr3t-value" not in str(refused.value)
    secret_store.check_env({"PAIS_CLASSIFICATION_MAX_IMAGES": "8", "PAIS_DEVICE": "cpu", "MONKEY": "x"})
    found = secret_store.parse_secrets(["PAIS_API_KEYS", "HF_TOKEN=hf-value"], {"PAIS_API_KEYS": "k1,k2"})
    assert found == {"PAIS_API_KEYS": "k1,k2", "HF_TOKEN": "hf-value"}
    assert plan_params({"Value": found["HF_TOKEN"]}) == {"Value": "<secret>"}
    assert "hf-value" not in repr(found)
    for bad, message in (("NOPE", "not set"), ("X=", "empty"), ("1X=y", "not an environment variable")):
        with pytest.raises(DeployError, match=message):
            secret_store.parse_secrets([bad], {})


def test_user_data_holds_no_secret_and_keeps_the_env_file_private():
    common = {"region": "us-east-1", "registry": "r", "port": 443, "log_group": "/pais/x"}
    image = "r/pais@sha256:" + "0" * 64
    with pytest.raises(DeployError, match="--secret PAIS_API_KEYS"):
        userdata.render(image=image, env={"PAIS_API_KEYS": "k"}, **common)
    references = {
        "PAIS_SECRETS_FROM_SSM": "PAIS_API_KEYS=arn:aws:ssm:us-east-1:1:parameter/pais/x/PAIS_API_KEYS"
    }
    script = userdata.render(image=image, env={}, entrypoint_env=references, **common)
    assert "umask 077" in script and 'chmod 600 "$PAIS_ROOT/env"' in script


def test_the_entrypoint_checks_artifacts_against_their_manifest(tmp_path):
    files = {"classification/weights.bin": b"weights", "classification/pais-model.json": b"{}"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    manifest = entrypoint.manifest_text({n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    (tmp_path / entrypoint.MANIFEST_NAME).write_text(manifest)
    recorded = hashlib.sha256(manifest.encode()).hexdigest()
    assert entrypoint.verify_artifacts(tmp_path, recorded) == 2
    with pytest.raises(entrypoint.StartupError, match="not the one this deployment recorded"):
        entrypoint.verify_artifacts(tmp_path, "0" * 64)
    (tmp_path / "classification" / "weights.bin").write_bytes(b"swapped")
    (tmp_path / "classification" / "extra.py").write_bytes(b"import os")
    with pytest.raises(entrypoint.StartupError) as refused:
        entrypoint.verify_artifacts(tmp_path, recorded)
    assert "weights.bin: sha256" in str(refused.value) and "extra.py: not in the manifest" in str(
        refused.value
    )
    env = {entrypoint.ARTIFACTS_SHA256: recorded, "PAIS_MODEL_DIR": str(tmp_path)}
    with pytest.raises(entrypoint.StartupError):
        entrypoint.prepare(env)
    with pytest.raises(entrypoint.StartupError, match="NAME=<SSM parameter ARN>"):
        entrypoint.parse_references("PAIS_API_KEYS=plain-value")
