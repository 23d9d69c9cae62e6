"""Autoscaling of an endpoint's production variant (Application Auto Scaling).

Real-time endpoints track invocations per instance (SageMaker's predefined metric).
Asynchronous endpoints track the request backlog per instance and may scale to zero; with
MIN 0, a step policy driven by the HasBacklogWithoutCapacity alarm brings the first
instance back as soon as a request waits (target tracking alone would only react once the
backlog exceeds the target), as AWS's async-inference documentation recommends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aws import Aws
from ..errors import DeployError
from ..naming import key_value_tags, resource_tags
from ..ownership import ALARM, Ownership

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALE_IN_COOLDOWN_S = 300
SCALE_OUT_COOLDOWN_S = 60


@dataclass(frozen=True)
class Autoscale:
    minimum: int
    maximum: int
    target: float

    @classmethod
    def parse(cls, text: str) -> Autoscale:
        """`MIN,MAX,TARGET`, e.g. `1,4,200` (TARGET: invocations per instance per minute, or
        for async endpoints queued requests per instance)."""
        try:
            low, high, target = (part.strip() for part in text.split(","))
            spec = cls(int(low), int(high), float(target))
        except ValueError:
            raise DeployError(f"--autoscale {text!r}: expected MIN,MAX,TARGET, e.g. 1,4,200") from None
        if spec.minimum < 0 or spec.maximum < max(spec.minimum, 1) or spec.target <= 0:
            raise DeployError(f"--autoscale {text!r}: need 0 <= MIN <= MAX, MAX >= 1 and TARGET > 0")
        return spec


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def _target(endpoint: str, variant: str) -> dict[str, str]:
    """The parameters that name one variant's scalable target in every call."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
    }


def policy_name(endpoint: str, variant: str, kind: str) -> str:
    return f"{endpoint}-{variant}-{kind}"


def alarm_name(endpoint: str, variant: str) -> str:
    return f"{endpoint}-{variant}-has-backlog-without-capacity"


def apply(
    aws: Aws,
    owner: Ownership,
    endpoint: str,
    variant: str,
    spec: Autoscale,
    is_async: bool,
    tags: dict[str, str],
) -> dict[str, Any]:
    target = _target(endpoint, variant)
    aws.write(
        "application-autoscaling",
        "RegisterScalableTarget",
        **target,
        MinCapacity=spec.minimum,
        MaxCapacity=spec.maximum,
        Tags=tags,
    )
    if is_async:
        metric: dict[str, Any] = {
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average",
            }
        }
    else:
        metric = {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            }
        }
    aws.write(
        "application-autoscaling",
        "PutScalingPolicy",
        PolicyName=policy_name(endpoint, variant, "target-tracking"),
        **target,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": spec.target,
            **metric,
            "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
        },
    )
    result: dict[str, Any] = {
        "variant": variant,
        "min": spec.minimum,
        "max": spec.maximum,
        "target": spec.target,
    }
    if is_async and spec.minimum == 0:
        result["scale_from_zero_alarm"] = _scale_from_zero(aws, owner, endpoint, variant, target, tags)
    return result


def _scale_from_zero(
    aws: Aws, owner: Ownership, endpoint: str, variant: str, target: dict[str, str], tags: dict[str, str]
) -> str:
    policy = aws.write(
        "application-autoscaling",
        "PutScalingPolicy",
        PolicyName=policy_name(endpoint, variant, "scale-from-zero"),
        **target,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "Cooldown": SCALE_IN_COOLDOWN_S,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        },
    )
    name = alarm_name(endpoint, variant)
    for found in aws.read("cloudwatch", "DescribeAlarms", AlarmNames=[name])["MetricAlarms"]:
        owner.require(ALARM, name, "be rewritten", ident=found["AlarmArn"])  # PutMetricAlarm replaces it
    aws.write(
        "cloudwatch",
        "PutMetricAlarm",
        AlarmName=name,
        AlarmDescription=f"scale {endpoint} out from zero when requests wait",
        MetricName="HasBacklogWithoutCapacity",
        Namespace="AWS/SageMaker",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        AlarmActions=[policy["PolicyARN"]],
        Tags=key_value_tags(resource_tags(endpoint, tags)),
    )
    return name


def current(aws: Aws, endpoint: str, variants: list[str]) -> list[dict[str, Any]]:
    """The scaling set on each of `variants`: min, max and the target-tracking value."""
    targets = aws.read(
        "application-autoscaling",
        "DescribeScalableTargets",
        ServiceNamespace=NAMESPACE,
        ResourceIds=[resource_id(endpoint, v) for v in variants],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"]
    found = []
    for target in targets:
        policies = aws.read(
            "application-autoscaling",
            "DescribeScalingPolicies",
            ServiceNamespace=NAMESPACE,
            ResourceId=target["ResourceId"],
            ScalableDimension=DIMENSION,
        )["ScalingPolicies"]
        tracking = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
        config = tracking[0]["TargetTrackingScalingPolicyConfiguration"] if tracking else {}
        found.append(
            {
                "variant": target["ResourceId"].rsplit("/", 1)[1],
                "min": target["MinCapacity"],
                "max": target["MaxCapacity"],
                "target": config.get("TargetValue"),
                "async": "CustomizedMetricSpecification" in config,
                "policies": [p["PolicyName"] for p in policies],
            }
        )
    return found


def restore(aws: Aws, owner: Ownership, endpoint: str, saved: dict[str, Any], tags: dict[str, str]) -> None:
    if saved.get("target") is None:
        return
    spec = Autoscale(int(saved["min"]), int(saved["max"]), float(saved["target"]))
    apply(aws, owner, endpoint, saved["variant"], spec, bool(saved["async"]), tags)


def deregister(aws: Aws, owner: Ownership, endpoint: str, variant: str) -> None:
    """Remove the variant's scaling (its policies go with the target) and its alarm (when
    the tool made it: an alarm of that name may be someone's)."""
    target = _target(endpoint, variant)
    registered = aws.read(
        "application-autoscaling",
        "DescribeScalableTargets",
        ServiceNamespace=NAMESPACE,
        ResourceIds=[target["ResourceId"]],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"]
    if registered:
        aws.write("application-autoscaling", "DeregisterScalableTarget", **target)
    alarm = alarm_name(endpoint, variant)
    for found in aws.read("cloudwatch", "DescribeAlarms", AlarmNames=[alarm])["MetricAlarms"]:
        if owner.may_change(ALARM, alarm, "be deleted", ident=found["AlarmArn"]):
            aws.write("cloudwatch", "DeleteAlarms", AlarmNames=[alarm])
