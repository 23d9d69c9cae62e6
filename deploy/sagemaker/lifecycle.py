"""What a SageMaker deployment consists of now (status), and taking it down (teardown).

Teardown goes in dependency order: running transform jobs stopped, autoscaling
deregistered (its alarms deleted), the endpoint deleted and waited for, then the endpoint
configs and models it used, then the execution role, the running training jobs of
`sagemaker train --name <deployment>` and their role, and the SSM parameters (secrets) the
tool made; with --purge-artifacts also the model artifacts `push` stored and the
endpoint's log group. Models trained before stay (in S3 and in the local store). Each one
is first checked for the tool's tags for this deployment (deploy/ownership.py): one
without them, even with the expected name, is left alone and named in the output
(`left_alone`), and so is everything reached only through it (the configs and models of an
endpoint that is not the tool's). Running it twice is harmless.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .. import iam, secret_store
from ..aws import Aws, is_not_found
from ..cost import hourly_cost
from ..naming import BATCH_INFIX, TRAIN_INFIX, is_versioned
from ..ownership import (
    SAGEMAKER_CONFIG,
    SAGEMAKER_ENDPOINT,
    SAGEMAKER_JOB,
    SAGEMAKER_MODEL,
    SAGEMAKER_TRAINING_JOB,
    Ownership,
)
from ..purge import purge
from ..waiting import wait_until
from . import autoscale
from .endpoint import describe_model, find_endpoint, log_group
from .training import role_name as training_role_name


def role_name(deployment: str) -> str:
    return f"pais-{deployment}-sagemaker"


def _named_for(aws: Aws, operation: str, key: str, name_key: str, deployment: str) -> set[str]:
    """The resources of one kind named as the tool names the deployment's
    (naming.is_versioned). Only their tags can say whether they are its."""
    found, token = set(), None
    while True:
        page = aws.read(
            "sagemaker", operation, NameContains=deployment, **({"NextToken": token} if token else {})
        )
        for item in page[key]:
            if is_versioned(item[name_key], deployment):
                found.add(item[name_key])
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
        "sagemaker", "ListTransformJobs", NameContains=f"{deployment}{BATCH_INFIX}", SortBy="CreationTime"
    )
    result["transform_jobs"] = [
        {
            "job": job["TransformJobName"],
            "status": job["TransformJobStatus"],
            "failure_reason": job.get("FailureReason"),
        }
        for job in jobs["TransformJobSummaries"]
        if is_versioned(job["TransformJobName"], deployment, BATCH_INFIX)
    ]
    result["training_jobs"] = [
        {"job": job["TrainingJobName"], "status": job["TrainingJobStatus"]}
        for job in _training_jobs(aws, deployment)
    ]
    return result


def _training_jobs(aws: Aws, deployment: str, status: str | None = None) -> list[dict[str, Any]]:
    """The deployment's training jobs by name (`<deployment>-train-<stamp>`), oldest first;
    NameContains also finds `other-<deployment>-train-...`, which are left out."""
    params: dict[str, Any] = {"NameContains": f"{deployment}{TRAIN_INFIX}", "SortBy": "CreationTime"}
    if status:
        params["StatusEquals"] = status
    found, token = [], None
    while True:
        page = aws.read("sagemaker", "ListTrainingJobs", **params, **({"NextToken": token} if token else {}))
        found += [
            job
            for job in page["TrainingJobSummaries"]
            if is_versioned(job["TrainingJobName"], deployment, TRAIN_INFIX)
        ]
        token = page.get("NextToken")
        if not token:
            return found


def teardown(
    aws: Aws, owner: Ownership, deployment: str, purge_artifacts: bool, wait: bool, timeout_s: float
) -> dict[str, Any]:
    removed: dict[str, list[str]] = {
        "transform_jobs": [],
        "endpoint": [],
        "endpoint_configs": [],
        "models": [],
    }
    for job in aws.read(
        "sagemaker", "ListTransformJobs", NameContains=f"{deployment}{BATCH_INFIX}", StatusEquals="InProgress"
    )["TransformJobSummaries"]:
        name = job["TransformJobName"]
        # NameContains also finds `other-<deployment>-batch-...`: only the deployment's names.
        if is_versioned(name, deployment, BATCH_INFIX) and owner.may_change(
            SAGEMAKER_JOB, name, "be stopped", ident=job["TransformJobArn"]
        ):
            aws.write("sagemaker", "StopTransformJob", TransformJobName=name)
            removed["transform_jobs"].append(name)

    configs = _named_for(aws, "ListEndpointConfigs", "EndpointConfigs", "EndpointConfigName", deployment)
    endpoint = find_endpoint(aws, deployment)
    if endpoint is not None and owner.may_change(
        SAGEMAKER_ENDPOINT, deployment, "be deleted", ident=endpoint["EndpointArn"]
    ):
        # Its config may have any name (one adopted with the endpoint, say): it goes too.
        configs.add(endpoint["EndpointConfigName"])
        for variant in endpoint.get("ProductionVariants", []):
            autoscale.deregister(aws, owner, deployment, variant["VariantName"])
        aws.write("sagemaker", "DeleteEndpoint", EndpointName=deployment)
        removed["endpoint"].append(deployment)
        if wait:
            wait_until(aws, f"endpoint {deployment} deleted", lambda: _gone(aws, deployment), timeout_s)

    models = _named_for(aws, "ListModels", "Models", "ModelName", deployment)
    for config in sorted(configs):
        try:
            described = aws.read("sagemaker", "DescribeEndpointConfig", EndpointConfigName=config)
        except ClientError as error:
            if is_not_found(error):
                continue
            raise
        if not owner.may_change(SAGEMAKER_CONFIG, config, "be deleted", ident=described["EndpointConfigArn"]):
            continue  # and its models are not reached through it
        models.update(v["ModelName"] for v in described["ProductionVariants"])
        aws.write("sagemaker", "DeleteEndpointConfig", EndpointConfigName=config)
        removed["endpoint_configs"].append(config)

    artifacts = []
    for name in sorted(models):
        model = describe_model(aws, name)
        if model is None or not owner.may_change(
            SAGEMAKER_MODEL, name, "be deleted", ident=model["ModelArn"]
        ):
            continue
        if model["PrimaryContainer"].get("ModelDataUrl"):
            artifacts.append(model["PrimaryContainer"]["ModelDataUrl"])
        aws.write("sagemaker", "DeleteModel", ModelName=name)
        removed["models"].append(name)

    result: dict[str, Any] = {"deployment": deployment, "removed": removed}
    result["role_deleted"] = iam.delete_role(aws, owner, role_name(deployment))
    # `sagemaker train --name <deployment>`: its running jobs and its role.
    stopped = []
    for job in _training_jobs(aws, deployment, "InProgress"):
        name = job["TrainingJobName"]
        if owner.may_change(SAGEMAKER_TRAINING_JOB, name, "be stopped", ident=job["TrainingJobArn"]):
            aws.write("sagemaker", "StopTrainingJob", TrainingJobName=name)
            stopped.append(name)
    result["training"] = {
        "stopped": stopped,
        "role_deleted": iam.delete_role(aws, owner, training_role_name(deployment)),
    }
    result["secrets_deleted"] = secret_store.delete_all(aws, owner, deployment)
    if purge_artifacts:
        result["purged"] = purge(aws, owner, sorted(set(artifacts)), [log_group(deployment)])
    elif artifacts:
        result["kept_artifacts"] = sorted(set(artifacts))
    return result | owner.report()


def _gone(aws: Aws, name: str) -> tuple[bool, str]:
    endpoint = find_endpoint(aws, name)
    return endpoint is None, "deleted" if endpoint is None else endpoint["EndpointStatus"]
