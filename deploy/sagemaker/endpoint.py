"""A SageMaker endpoint for PAIS: model, endpoint config, endpoint; created, or updated
without downtime.

Modes, as mlflow's SageMaker deployment has them:
- create:  make the endpoint; fail if it exists.
- replace: make it if missing, else move it to a new model with a blue/green update (the
           new fleet must pass /ping before traffic moves; SageMaker rolls back otherwise).
           The default.
- add:     add the new model as a further production variant (weight 0 unless
           --variant-weight), for canaries and A/B tests; traffic is shifted afterwards.

Every update makes a new model and endpoint config (SageMaker never updates either in
place), waits, and checks for a rollback the way mlflow does: the endpoint is back
InService but still on the previous config. Only then are the previous config and models
deleted (unless --keep-previous), each only when its tags say the tool made it for this
deployment, and never the config or model this run made, whatever the clock says (names
end in naming.unique_suffix, so two deploys, even in the same millisecond, do not share one).
An endpoint of that name the tool did not make is not updated (deploy/ownership.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..aws import Aws, is_not_found
from ..ecr import ImageRef
from ..errors import DeployError
from ..logs import ensure_log_group
from ..naming import key_value_tags, resource_tags, unique_suffix
from ..ownership import SAGEMAKER_CONFIG, SAGEMAKER_ENDPOINT, SAGEMAKER_MODEL, Ownership
from ..waiting import wait_until
from . import autoscale

MODES = ("create", "replace", "add")
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
# DescribeEndpoint may still show the previous config just after UpdateEndpoint returns;
# "InService on the old config" only means a rollback after this, or once Updating was seen.
ROLLBACK_GRACE_S = 20


@dataclass
class EndpointSpec:
    name: str
    image: ImageRef
    model_data: str
    role_arn: str
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    variant: str = "AllTraffic"
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    mode: str = "replace"
    variant_weight: float = 0.0
    async_output: str | None = None
    async_failure: str | None = None
    async_max_concurrency: int = 4
    serverless_memory_mb: int | None = None
    serverless_max_concurrency: int = 10
    startup_timeout_s: int = 600
    blue_green_wait_s: int = 0
    termination_wait_s: int = 0
    rollback_alarms: list[str] = field(default_factory=list)
    autoscale: autoscale.Autoscale | None = None
    keep_previous: bool = False

    @property
    def is_async(self) -> bool:
        return self.async_output is not None

    @property
    def is_serverless(self) -> bool:
        return self.serverless_memory_mb is not None


def check_spec(spec: EndpointSpec) -> None:
    if spec.mode not in MODES:
        raise DeployError(f"--mode {spec.mode!r}: use one of {', '.join(MODES)}")
    if spec.is_serverless and spec.is_async:
        raise DeployError(
            "--serverless and --async do not combine: SageMaker has no serverless async endpoints"
        )
    if spec.is_serverless and spec.autoscale:
        raise DeployError(
            "--autoscale does not apply to --serverless (it scales by MaxConcurrency on its own)"
        )
    if spec.autoscale and spec.autoscale.minimum == 0 and not spec.is_async:
        raise DeployError(
            "--autoscale with MIN 0 needs --async: real-time endpoints keep at least one instance"
        )


def model_params(spec: EndpointSpec, model_name: str) -> dict[str, Any]:
    return {
        "ModelName": model_name,
        "PrimaryContainer": {
            "Image": spec.image.uri,
            "ModelDataUrl": spec.model_data,
            "Environment": spec.env,
            "Mode": "SingleModel",
        },
        "ExecutionRoleArn": spec.role_arn,
        "Tags": key_value_tags(resource_tags(spec.name, spec.tags)),
    }


def variant_params(spec: EndpointSpec, model_name: str, variant: str, weight: float) -> dict[str, Any]:
    params: dict[str, Any] = {"VariantName": variant, "ModelName": model_name, "InitialVariantWeight": weight}
    if spec.is_serverless:
        params["ServerlessConfig"] = {
            "MemorySizeInMB": spec.serverless_memory_mb,
            "MaxConcurrency": spec.serverless_max_concurrency,
        }
    else:
        params.update(
            InstanceType=spec.instance_type,
            InitialInstanceCount=spec.instance_count,
            # Loading weights onto a GPU can outlast SageMaker's default health-check wait.
            ContainerStartupHealthCheckTimeoutInSeconds=spec.startup_timeout_s,
            ModelDataDownloadTimeoutInSeconds=max(spec.startup_timeout_s, 600),
        )
    return params


def config_params(spec: EndpointSpec, config_name: str, variants: list[dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": variants,
        "Tags": key_value_tags(resource_tags(spec.name, spec.tags)),
    }
    if spec.is_async:
        output: dict[str, Any] = {"S3OutputPath": spec.async_output}
        if spec.async_failure:
            output["S3FailurePath"] = spec.async_failure
        params["AsyncInferenceConfig"] = {
            "OutputConfig": output,
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": spec.async_max_concurrency},
        }
    return params


def deployment_config(spec: EndpointSpec) -> dict[str, Any]:
    """Blue/green, all traffic at once after the new fleet is healthy, with a bake time and
    optional CloudWatch alarms that roll back on their own."""
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "ALL_AT_ONCE",
                "WaitIntervalInSeconds": spec.blue_green_wait_s,
            },
            "TerminationWaitInSeconds": spec.termination_wait_s,
        }
    }
    if spec.rollback_alarms:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in spec.rollback_alarms]
        }
    return config


def log_group(endpoint: str) -> str:
    """Where SageMaker writes the endpoint's container output."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def find_endpoint(aws: Aws, name: str) -> dict[str, Any] | None:
    return aws.find("sagemaker", "DescribeEndpoint", EndpointName=name)


def check_existing(aws: Aws, owner: Ownership, name: str, mode: str) -> dict[str, Any] | None:
    """The endpoint a deploy would update (None: it creates one), once it is clear that the
    update may go ahead: the tool's own endpoint (or adopted), InService, not --mode create."""
    existing = find_endpoint(aws, name)
    if existing is None:
        return None
    if mode == "create":
        raise DeployError(f"endpoint {name} exists (--mode create); use --mode replace to update it")
    owner.require(
        SAGEMAKER_ENDPOINT,
        name,
        "be updated to the new release",
        ident=existing["EndpointArn"],
        instead="deploy under another name",
    )
    if existing["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {name} is {existing['EndpointStatus']}"
            + (f" ({existing['FailureReason']})" if existing.get("FailureReason") else "")
            + ": an update needs it InService; wait for it, or run `sagemaker teardown` and deploy again"
        )
    return existing


def deploy(aws: Aws, owner: Ownership, spec: EndpointSpec, wait: bool, timeout_s: float) -> dict[str, Any]:
    check_spec(spec)
    existing = check_existing(aws, owner, spec.name, spec.mode)
    suffix = unique_suffix()
    model_name = config_name = f"{spec.name}-{suffix}"
    aws.write("sagemaker", "CreateModel", **model_params(spec, model_name))
    result: dict[str, Any] = {
        "endpoint": spec.name,
        "model": model_name,
        "endpoint_config": config_name,
        "image": spec.image.uri,
        "model_data": spec.model_data,
    }
    if existing is None:
        # Made here, tagged, before SageMaker would make it untagged on first write.
        ensure_log_group(aws, owner, log_group(spec.name), resource_tags(spec.name, spec.tags))
        variants = [variant_params(spec, model_name, spec.variant, 1.0)]
        aws.write("sagemaker", "CreateEndpointConfig", **config_params(spec, config_name, variants))
        aws.write(
            "sagemaker",
            "CreateEndpoint",
            EndpointName=spec.name,
            EndpointConfigName=config_name,
            Tags=key_value_tags(resource_tags(spec.name, spec.tags)),
        )
        result["action"] = "created"
        if wait:
            result["status"] = wait_until(
                aws, f"endpoint {spec.name} InService", lambda: _creation_state(aws, spec.name), timeout_s
            )
    else:
        result.update(
            _update(
                aws,
                owner,
                spec,
                existing,
                model_name,
                config_name,
                f"{spec.variant}-{suffix}",
                wait,
                timeout_s,
            )
        )
    if spec.autoscale and (wait or aws.dry_run):
        variant = result.get("variant", spec.variant)
        result["autoscaling"] = autoscale.apply(
            aws, owner, spec.name, variant, spec.autoscale, spec.is_async, spec.tags
        )
    elif spec.autoscale:
        result["autoscaling"] = (
            "not applied: --no-wait (run the deploy again with --wait, or apply it when InService)"
        )
    return result


def _creation_state(aws: Aws, name: str) -> tuple[bool, str]:
    endpoint = aws.read("sagemaker", "DescribeEndpoint", EndpointName=name)
    status = endpoint["EndpointStatus"]
    if status == "Failed":
        raise DeployError(
            f"endpoint {name} failed: {endpoint.get('FailureReason', 'no reason given')}; "
            f"see `python -m deploy sagemaker logs {name}`"
        )
    return status == "InService", status


def _update(
    aws: Aws,
    owner: Ownership,
    spec: EndpointSpec,
    existing: dict[str, Any],
    model_name: str,
    config_name: str,
    added_variant: str,
    wait: bool,
    timeout_s: float,
) -> dict[str, Any]:
    old_config_name = existing["EndpointConfigName"]
    old_config = aws.read("sagemaker", "DescribeEndpointConfig", EndpointConfigName=old_config_name)
    old_variants = old_config["ProductionVariants"]
    if spec.mode == "add":
        variant = added_variant
        variants = [_keep(v) for v in old_variants] + [
            variant_params(spec, model_name, variant, spec.variant_weight)
        ]
    else:
        # Blue/green needs the new config to keep the variant name.
        variant = old_variants[0]["VariantName"] if len(old_variants) == 1 else spec.variant
        variants = [variant_params(spec, model_name, variant, 1.0)]
    aws.write("sagemaker", "CreateEndpointConfig", **config_params(spec, config_name, variants))

    # Application Auto Scaling refuses an update that changes a scaled variant's instance
    # type; such targets are deregistered first and registered again afterwards.
    scaled = autoscale.current(aws, spec.name, [v["VariantName"] for v in old_variants])
    changed = {
        v["VariantName"]
        for v in old_variants
        if v.get("InstanceType") != spec.instance_type and v["VariantName"] == variant
    }
    lifted = [target for target in scaled if target["variant"] in changed]
    for target in lifted:
        autoscale.deregister(aws, owner, spec.name, target["variant"])

    params: dict[str, Any] = {"EndpointName": spec.name, "EndpointConfigName": config_name}
    if {v["VariantName"] for v in variants} == {v["VariantName"] for v in old_variants}:
        # Deployment guardrails need the variant names kept; otherwise SageMaker's default
        # update applies (also blue/green, all at once, without bake time or alarms).
        params["DeploymentConfig"] = deployment_config(spec)
    aws.write("sagemaker", "UpdateEndpoint", **params)
    result: dict[str, Any] = {"action": "updated", "previous_config": old_config_name, "variant": variant}
    if not wait:
        result["note"] = "not waited for: previous config and models are kept; run `sagemaker status`"
        return result
    started = time.monotonic()
    seen_updating: list[bool] = []
    try:
        result["status"] = wait_until(
            aws,
            f"endpoint {spec.name} updated to {config_name}",
            lambda: _update_state(aws, spec.name, config_name, old_config_name, started, seen_updating),
            timeout_s,
        )
    except DeployError:
        if not aws.dry_run and _settled_elsewhere(aws, spec.name, config_name):
            _discard(aws, config_name, model_name)
            for target in lifted:
                autoscale.restore(aws, owner, spec.name, target, spec.tags)
        raise
    for target in lifted:
        if not spec.autoscale:
            autoscale.restore(aws, owner, spec.name, target, spec.tags)
    if not spec.keep_previous:
        # What this run made, and what the new config uses, stays whatever the names say.
        keep = {config_name, model_name} | {v["ModelName"] for v in variants}
        result["deleted"] = _delete_previous(aws, owner, old_config, keep)
    return result


def _delete_previous(aws: Aws, owner: Ownership, old_config: dict[str, Any], keep: set[str]) -> list[str]:
    """The replaced config and its models, each when the tool made it for this deployment
    and it is none of `keep`; returns the names deleted."""
    found = [
        (
            SAGEMAKER_CONFIG,
            "DeleteEndpointConfig",
            "EndpointConfigName",
            old_config["EndpointConfigName"],
            old_config["EndpointConfigArn"],
        )
    ]
    for variant in old_config["ProductionVariants"]:
        model = describe_model(aws, variant["ModelName"])
        if model is not None:
            found.append((SAGEMAKER_MODEL, "DeleteModel", "ModelName", model["ModelName"], model["ModelArn"]))
    deleted = []
    for kind, operation, key, name, arn in found:
        if (
            name not in keep
            and owner.may_change(kind, name, "be deleted (this deploy replaced it)", ident=arn)
            and _delete_quietly(aws, operation, **{key: name})
        ):
            deleted.append(name)
    return deleted


def describe_model(aws: Aws, name: str) -> dict[str, Any] | None:
    return aws.find("sagemaker", "DescribeModel", ModelName=name)


def _keep(variant: dict[str, Any]) -> dict[str, Any]:
    """An existing production variant as CreateEndpointConfig takes it again."""
    keys = (
        "VariantName",
        "ModelName",
        "InitialInstanceCount",
        "InstanceType",
        "InitialVariantWeight",
        "ServerlessConfig",
        "ContainerStartupHealthCheckTimeoutInSeconds",
        "ModelDataDownloadTimeoutInSeconds",
    )
    return {key: variant[key] for key in keys if key in variant}


def _update_state(
    aws: Aws, name: str, new_config: str, old_config: str, started: float, seen_updating: list[bool]
) -> tuple[bool, str]:
    endpoint = aws.read("sagemaker", "DescribeEndpoint", EndpointName=name)
    status, config = endpoint["EndpointStatus"], endpoint["EndpointConfigName"]
    if status in SETTLING:
        seen_updating.append(True)
        return False, status
    if status == "Failed":
        raise DeployError(
            f"update of endpoint {name} failed: {endpoint.get('FailureReason', 'no reason given')}"
        )
    if status == "InService" and config == new_config:
        return True, status
    if status == "InService" and (seen_updating or time.monotonic() - started > ROLLBACK_GRACE_S):
        raise DeployError(
            f"endpoint {name} rolled back to {config}: "
            f"{endpoint.get('FailureReason', 'SageMaker gave no reason')}; the previous model still serves. "
            f"See `python -m deploy sagemaker logs {name}`"
        )
    return False, f"{status} (not yet on {new_config})"


def _settled_elsewhere(aws: Aws, name: str, config: str) -> bool:
    """Whether the endpoint is done changing and does not run `config` (so a failed
    update's config is no one's): only then is it deleted."""
    endpoint = find_endpoint(aws, name)
    return endpoint is None or (
        endpoint["EndpointStatus"] not in SETTLING and endpoint["EndpointConfigName"] != config
    )


def _discard(aws: Aws, config_name: str, model_name: str) -> None:
    """Delete the endpoint config and model this run made, once the update failed."""
    _delete_quietly(aws, "DeleteEndpointConfig", EndpointConfigName=config_name)
    _delete_quietly(aws, "DeleteModel", ModelName=model_name)


def _delete_quietly(aws: Aws, operation: str, **params: Any) -> bool:
    """Delete; True unless it was gone already."""
    try:
        aws.write("sagemaker", operation, **params)
        return True
    except ClientError as error:
        if not is_not_found(error):
            raise
        return False
