"""What a SageMaker deployment consists of now (status), and taking it down (teardown).

Teardown goes in dependency order: running transform jobs stopped, autoscaling
deregistered (its alarms deleted), the endpoint deleted and waited for, then the endpoint
configs and models it used, then the execution role the tool made; with --purge-artifacts
also the model artifacts in S3 and the endpoint's log group. It removes only resources
tagged `pais:deployment=<name>`, and running it twice is harmless.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .. import iam
from ..aws import Aws, is_not_found
from ..cost import hourly_cost
from ..naming import DEPLOYMENT_TAG
from ..purge import purge
from ..waiting import wait_until
from . import autoscale
from .endpoint import find_endpoint


def role_name(deployment: str) -> str:
    return f"pais-{deployment}-sagemaker"


def log_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def _tagged(aws: Aws, arn: str, deployment: str) -> bool:
    tags = aws.read("sagemaker", "ListTags", ResourceArn=arn).get("Tags", [])
    return any(t["Key"] == DEPLOYMENT_TAG and t["Value"] == deployment for t in tags)


def _owned(aws: Aws, operation: str, key: str, name_key: str, arn_key: str, deployment: str) -> list[str]:
    """Names of the deployment's resources of one kind (by name prefix, then checked by tag)."""
    found, token = [], None
    while True:
        page = aws.read(
            "sagemaker", operation, NameContains=deployment, **({"NextToken": token} if token else {})
        )
        for item in page[key]:
            if item[name_key].startswith(f"{deployment}-") and _tagged(aws, item[arn_key], deployment):
                found.append(item[name_key])
        token = page.get("NextToken")
        if not token:
            return found


def status(aws: Aws, deployment: str) -> dict[str, Any]:
    endpoint = find_endpoint(aws, deployment)
    result: dict[str, Any] = {"deployment": deployment, "endpoint": None}
    if endpoint is not None:
        config = aws.read(
            "sagemaker", "DescribeEndpointConfig", EndpointConfigName=endpoint["EndpointConfigName"]
        )
        variants = []
        for declared in config["ProductionVariants"]:
            live = next(
                (
                    v
                    for v in endpoint.get("ProductionVariants", [])
                    if v["VariantName"] == declared["VariantName"]
                ),
                {},
            )
            model = aws.read("sagemaker", "DescribeModel", ModelName=declared["ModelName"])[
                "PrimaryContainer"
            ]
            variants.append(
                {
                    "variant": declared["VariantName"],
                    "model": declared["ModelName"],
                    "image": model.get("Image"),
                    "model_data": model.get("ModelDataUrl"),
                    "instance_type": declared.get("InstanceType", "serverless"),
                    "instances": live.get("CurrentInstanceCount", declared.get("InitialInstanceCount")),
                    "weight": live.get("CurrentWeight", declared.get("InitialVariantWeight")),
                    "serverless": declared.get("ServerlessConfig"),
                }
            )
        result["endpoint"] = {
            "name": deployment,
            "status": endpoint["EndpointStatus"],
            "failure_reason": endpoint.get("FailureReason"),
            "config": endpoint["EndpointConfigName"],
            "async_output": config.get("AsyncInferenceConfig", {})
            .get("OutputConfig", {})
            .get("S3OutputPath"),
            "variants": variants,
            "last_modified": str(endpoint.get("LastModifiedTime", "")),
        }
        result["autoscaling"] = autoscale.current(aws, deployment, [v["variant"] for v in variants])
        result["cost_per_hour_usd"] = hourly_cost(
            aws.region, [(v["instance_type"], v["instances"] or 0) for v in variants if not v["serverless"]]
        )
    jobs = aws.read(
        "sagemaker", "ListTransformJobs", NameContains=f"{deployment}-batch-", SortBy="CreationTime"
    )
    result["transform_jobs"] = [
        {
            "job": job["TransformJobName"],
            "status": job["TransformJobStatus"],
            "failure_reason": job.get("FailureReason"),
        }
        for job in jobs["TransformJobSummaries"]
    ]
    return result


def teardown(
    aws: Aws, deployment: str, purge_artifacts: bool, wait: bool, timeout_s: float
) -> dict[str, Any]:
    removed: dict[str, list[str]] = {
        "transform_jobs": [],
        "endpoint": [],
        "endpoint_configs": [],
        "models": [],
    }
    for job in aws.read(
        "sagemaker", "ListTransformJobs", NameContains=f"{deployment}-batch-", StatusEquals="InProgress"
    )["TransformJobSummaries"]:
        aws.write("sagemaker", "StopTransformJob", TransformJobName=job["TransformJobName"])
        removed["transform_jobs"].append(job["TransformJobName"])

    configs = set(
        _owned(
            aws,
            "ListEndpointConfigs",
            "EndpointConfigs",
            "EndpointConfigName",
            "EndpointConfigArn",
            deployment,
        )
    )
    endpoint = find_endpoint(aws, deployment)
    if endpoint is not None:
        configs.add(endpoint["EndpointConfigName"])
        variants = [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]
        for variant in variants:
            autoscale.deregister(aws, deployment, variant)
        aws.write("sagemaker", "DeleteEndpoint", EndpointName=deployment)
        removed["endpoint"].append(deployment)
        if wait:
            wait_until(aws, f"endpoint {deployment} deleted", lambda: _gone(aws, deployment), timeout_s)

    models = set(_owned(aws, "ListModels", "Models", "ModelName", "ModelArn", deployment))
    for config in sorted(configs):
        try:
            variants = aws.read("sagemaker", "DescribeEndpointConfig", EndpointConfigName=config)[
                "ProductionVariants"
            ]
        except ClientError as error:
            if is_not_found(error):
                continue
            raise
        models.update(v["ModelName"] for v in variants)
        aws.write("sagemaker", "DeleteEndpointConfig", EndpointConfigName=config)
        removed["endpoint_configs"].append(config)

    artifacts = []
    for model in sorted(models):
        try:
            container = aws.read("sagemaker", "DescribeModel", ModelName=model)["PrimaryContainer"]
        except ClientError as error:
            if is_not_found(error):
                continue
            raise
        if container.get("ModelDataUrl"):
            artifacts.append(container["ModelDataUrl"])
        aws.write("sagemaker", "DeleteModel", ModelName=model)
        removed["models"].append(model)

    result: dict[str, Any] = {"deployment": deployment, "removed": removed}
    result["role_deleted"] = iam.delete_role(aws, role_name(deployment), deployment)
    if purge_artifacts:
        result["purged"] = purge(aws, sorted(set(artifacts)), [log_group(deployment)])
    elif artifacts:
        result["kept_artifacts"] = sorted(set(artifacts))
    return result


def _gone(aws: Aws, name: str) -> tuple[bool, str]:
    endpoint = find_endpoint(aws, name)
    return endpoint is None, "deleted" if endpoint is None else endpoint["EndpointStatus"]
