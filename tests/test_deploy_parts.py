"""The deploy tool's small parts: cost from the dated table, argument parsing, AMI lookup
by name, the user-data script's refusals, log time spans."""

from __future__ import annotations

import pytest

from deploy import cost, prices
from deploy.aws import Aws, AwsOptions
from deploy.ec2 import ami, userdata
from deploy.errors import DeployError
from deploy.logs import parse_since
from deploy.naming import check_name, parse_env, parse_tags
from deploy.plan import enum_values
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
    for bad in ("-x", "a--b", "x" * 41, "under_score"):
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
