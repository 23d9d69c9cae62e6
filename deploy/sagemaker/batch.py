"""Batch Transform: every line of an S3 JSONL input through the deployed model, offline.

The job runs the model the endpoint currently serves (same image, artifacts and
environment) over JSON Lines (SplitType Line): by default as many whole lines per request
as fit in MaxPayloadInMB (MultiRecord: the container answers one line per input line and
runs them concurrently, so the model batches them), or one line per request
(SingleRecord). Answers go, one line per input line and in order (AssembleWith Line), to
`<output>/<input file>.out`. Each record is what /invocations takes as JSON, e.g.
`{"images": "<base64 JPEG>", "top_k": 3}`, optionally with a "task" key.
The command waits, then reports: the job's own failure reason when it failed, and per
line, answers that carry an `error` (the service answers bad items with an error entry
instead of failing the whole request), with the input file and line they came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..artifacts import split_s3_uri
from ..aws import Aws
from ..entrypoint import SETTING_SAGEMAKER_DEFAULT_TASK
from ..errors import DeployError
from ..naming import batch_job_name, key_value_tags, resource_tags
from ..waiting import wait_until
from .endpoint import find_endpoint

REPORTED_ERRORS = 20


def deployed_model(aws: Aws, endpoint: str) -> str:
    found = find_endpoint(aws, endpoint)
    if found is None:
        raise DeployError(f"no endpoint {endpoint}: deploy it first, or pass --model")
    config = aws.read("sagemaker", "DescribeEndpointConfig", EndpointConfigName=found["EndpointConfigName"])
    variants = sorted(config["ProductionVariants"], key=lambda v: -v.get("InitialVariantWeight", 1.0))
    return variants[0]["ModelName"]


def job_params(
    job: str,
    model: str,
    input_uri: str,
    output_uri: str,
    instance_type: str,
    instance_count: int,
    content_type: str,
    max_payload_mb: int,
    strategy: str,
    environment: dict[str, str],
    tags: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "TransformJobName": job,
        "ModelName": model,
        "MaxPayloadInMB": max_payload_mb,
        "BatchStrategy": strategy,
        "Environment": environment,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "application/json", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
        "Tags": tags,
    }


def run_batch(
    aws: Aws,
    deployment: str,
    input_uri: str,
    output_uri: str,
    *,
    model: str | None = None,
    instance_type: str = "ml.g5.xlarge",
    instance_count: int = 1,
    content_type: str = "application/jsonlines",
    max_payload_mb: int = 6,
    strategy: str = "MultiRecord",
    task: str | None = None,
    env: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    wait: bool = True,
    timeout_s: float = 3600,
    download: Path | None = None,
) -> dict[str, Any]:
    split_s3_uri(input_uri)
    split_s3_uri(output_uri if output_uri.endswith("/") else output_uri + "/")
    model = model or deployed_model(aws, deployment)
    job = batch_job_name(deployment)
    environment = dict(env or {})
    if task:
        # Batch Transform sends no header that could name the task: the container's default.
        environment[SETTING_SAGEMAKER_DEFAULT_TASK] = task
    aws.write(
        "sagemaker",
        "CreateTransformJob",
        **job_params(
            job,
            model,
            input_uri,
            output_uri,
            instance_type,
            instance_count,
            content_type,
            max_payload_mb,
            strategy,
            environment,
            key_value_tags(resource_tags(deployment, tags or {})),
        ),
    )
    result: dict[str, Any] = {"job": job, "model": model, "input": input_uri, "output": output_uri}
    if not wait:
        return result
    result["status"] = wait_until(aws, f"transform job {job}", lambda: _job_state(aws, job), timeout_s)
    if aws.dry_run:
        return result
    result.update(report(aws, input_uri, output_uri, download))
    return result


def _job_state(aws: Aws, job: str) -> tuple[bool, str]:
    found = aws.read("sagemaker", "DescribeTransformJob", TransformJobName=job)
    status = found["TransformJobStatus"]
    if status in ("Failed", "Stopped"):
        raise DeployError(
            f"transform job {job} {status.lower()}: {found.get('FailureReason', 'no reason given')}; "
            f"see `python -m deploy sagemaker logs <deployment> --job {job}`"
        )
    return status == "Completed", status


def _objects(aws: Aws, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    keys, token = [], None
    while True:
        page = aws.read(
            "s3",
            "ListObjectsV2",
            Bucket=bucket,
            Prefix=prefix,
            **({"ContinuationToken": token} if token else {}),
        )
        keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        token = page.get("NextContinuationToken")
        if not token:
            return keys


def report(aws: Aws, input_uri: str, output_uri: str, download: Path | None) -> dict[str, Any]:
    """Count answers and per-line errors; download the outputs when asked."""
    out_bucket, out_prefix = split_s3_uri(output_uri if output_uri.endswith("/") else output_uri + "/")
    in_bucket, in_prefix = split_s3_uri(input_uri)
    records = errors = 0
    failures: list[dict[str, Any]] = []
    outputs = []
    for key in _objects(aws, input_uri):
        name = key[len(in_prefix.rsplit("/", 1)[0]) :].lstrip("/") if "/" in in_prefix else key
        out_key = f"{out_prefix}{name}.out"
        data = aws.read("s3", "GetObject", Bucket=out_bucket, Key=out_key)["Body"].read()
        outputs.append(f"s3://{out_bucket}/{out_key}")
        if download:
            target = download / f"{name}.out"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for number, line in enumerate(data.decode().splitlines(), 1):
            records += 1
            for error in _line_errors(line):
                errors += 1
                if len(failures) < REPORTED_ERRORS:
                    failures.append({"input": f"s3://{in_bucket}/{key}", "line": number, "error": error})
    return {"outputs": outputs, "records": records, "errors": errors, "failures": failures}


def _line_errors(line: str) -> list[Any]:
    """The errors an answer line carries: a top-level `error`, or `error` entries in a list."""
    try:
        answer = json.loads(line)
    except ValueError:
        return [f"not JSON: {line[:200]}"]
    items = answer if isinstance(answer, list) else [answer]
    return [item["error"] for item in items if isinstance(item, dict) and item.get("error")]
