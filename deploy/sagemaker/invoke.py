"""Calling a deployed endpoint: a smoke test with a real payload, real-time or async.

This is also the documented way for other code (the client SDK's batch jobs) to reach a
SageMaker endpoint: `invoke_endpoint(aws, name, body, content_type, task=...)` sends one
request through `sagemaker-runtime` and returns the parsed answer. The container reads the
task from the `X-Amzn-SageMaker-Custom-Attributes` header (`task=<name>`).
"""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..artifacts import split_s3_uri
from ..aws import Aws, error_code, is_not_found
from ..errors import DeployError
from ..waiting import wait_until

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".txt": "text/plain",
}


def content_type_for(path: Path) -> str:
    return (
        CONTENT_TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def custom_attributes(task: str | None) -> dict[str, str]:
    return {"CustomAttributes": f"task={task}"} if task else {}


def decode(body: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return json.loads(body)
        except ValueError:
            pass
    try:
        return body.decode()
    except UnicodeDecodeError:
        return f"<{len(body)} bytes of {content_type}>"


def invoke_endpoint(
    aws: Aws,
    endpoint: str,
    body: bytes,
    content_type: str,
    accept: str = "application/json",
    task: str | None = None,
) -> dict[str, Any]:
    """One real-time request; the model's own error (ModelError) becomes a DeployError
    carrying the status and message the container answered with."""
    started = time.perf_counter()
    try:
        answer = aws.write(
            "sagemaker-runtime",
            "InvokeEndpoint",
            EndpointName=endpoint,
            Body=body,
            ContentType=content_type,
            Accept=accept,
            **custom_attributes(task),
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        if error_code(error) == "ModelError":
            raise DeployError(
                f"endpoint {endpoint} answered {error.response.get('OriginalStatusCode', '?')}: "
                f"{error.response.get('OriginalMessage') or details.get('Message')}"
            ) from None
        raise
    if aws.dry_run:
        return {"endpoint": endpoint, "planned": True}
    data = answer["Body"].read()
    answer_type = answer.get("ContentType", "")
    return {
        "endpoint": endpoint,
        "variant": answer.get("InvokedProductionVariant"),
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "content_type": answer_type,
        "body": decode(data, answer_type),
    }


def invoke_async(
    aws: Aws,
    endpoint: str,
    body: bytes,
    content_type: str,
    output_path: str,
    task: str | None,
    timeout_s: float,
    accept: str = "application/json",
) -> dict[str, Any]:
    """Upload the payload next to the endpoint's outputs, queue it, and wait for the result
    (or the failure) object SageMaker writes."""
    inference_id = uuid.uuid4().hex
    bucket, prefix = split_s3_uri(output_path.rstrip("/") + "/")
    input_key = f"{prefix}inputs/{inference_id}"
    aws.write("s3", "PutObject", Bucket=bucket, Key=input_key, Body=body, ContentType=content_type)
    started = time.perf_counter()
    answer = aws.write(
        "sagemaker-runtime",
        "InvokeEndpointAsync",
        EndpointName=endpoint,
        InputLocation=f"s3://{bucket}/{input_key}",
        ContentType=content_type,
        Accept=accept,
        InferenceId=inference_id,
        **custom_attributes(task),
    )
    if aws.dry_run:
        aws.note("wait for the output or failure object SageMaker writes")
        return {"endpoint": endpoint, "planned": True}
    locations = {"output": answer["OutputLocation"], "failure": answer.get("FailureLocation")}
    found: dict[str, Any] = {}

    def landed() -> tuple[bool, str]:
        for kind, uri in locations.items():
            if uri and (data := _get_if_present(aws, uri)) is not None:
                found.update(kind=kind, uri=uri, data=data)
                return True, kind
        return False, "queued"

    wait_until(aws, f"async inference {inference_id}", landed, timeout_s)
    result = {
        "endpoint": endpoint,
        "inference_id": inference_id,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "result": found["uri"],
        "body": decode(found["data"], "application/json"),
    }
    if found["kind"] == "failure":
        raise DeployError(f"async inference {inference_id} failed: {result['body']}")
    return result


def _get_if_present(aws: Aws, uri: str) -> bytes | None:
    bucket, key = split_s3_uri(uri)
    try:
        return aws.read("s3", "GetObject", Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def smoke_test(result: dict[str, Any], expect: str | None) -> None:
    """--expect TEXT: the answer must mention TEXT (e.g. a class label), or the test fails."""
    if expect and expect.lower() not in json.dumps(result.get("body"), ensure_ascii=False).lower():
        raise DeployError(f"smoke test failed: the answer does not mention {expect!r}: {result.get('body')}")
