"""Send PAIS calls to a SageMaker endpoint (boto3 `sagemaker-runtime` InvokeEndpoint)
instead of a URL: batch jobs take `--sagemaker-endpoint NAME`.

The PAIS container answers /invocations with the task named in the custom attributes
(`X-Amzn-SageMaker-Custom-Attributes: task=classify`) and takes the REST endpoint's own
body (multipart or JSON), so a call is sent exactly as it would be over HTTP. SageMaker
wraps the container's error answers in a `ModelError` (HTTP 424) that carries the original
status and body; they are unwrapped here into the same typed errors as HTTP gives, and
retried by the same policy (connection errors, throttling, 429/503).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from .calls import Call
from .errors import APIError, PaisConnectionError, PaisError, PaisTimeoutError, api_error
from .retry import RetryPolicy

T = TypeVar("T")

# SageMaker's own errors that say "later" -> the status that the retry policy knows
_CODE_STATUS = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 503,
    "InternalFailure": 500,
}


class SageMakerError(PaisError):
    """SageMaker refused the call itself (unknown endpoint, no permission, bad credentials):
    every request would fail the same way, so a batch job stops."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(f"SageMaker {code} ({status}): {message}")
        self.code, self.status = code, status


class SageMakerTransport:
    """`await transport.send(call)`, as `AsyncClient.send` (blocking boto3 calls run in a
    thread pool of `max_workers`)."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 70.0,  # SageMaker gives a container 60 s per request
        max_workers: int = 16,
        client: Any = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.retry = retry or RetryPolicy()
        self.description = f"sagemaker endpoint {endpoint_name}"
        self._client = client or _runtime_client(region, endpoint_url, timeout_s, max_workers)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="pais-sagemaker")

    async def send(self, call: Call[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.send_sync, call)

    def send_sync(self, call: Call[T]) -> T:
        if call.task is None or call.stream:
            raise PaisError(f"{call.method} {call.path} cannot be reached through SageMaker's InvokeEndpoint")
        from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError

        body, content_type = call.render()
        attempt = 0
        while True:
            try:
                response = self._client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    Body=body,
                    ContentType=content_type,
                    CustomAttributes=f"task={call.task}",
                )
            except ClientError as error:
                failure = unwrap_error(error)
                if not isinstance(failure, APIError):
                    raise failure from error
                delay = self.retry.delay_after_status(failure.status, failure.headers, attempt)
                if delay is None:
                    raise failure from error
            except ReadTimeoutError as error:
                raise PaisTimeoutError(f"{self.description}: no answer in time") from error
            except HTTPClientError as error:  # could not connect, connection closed
                if attempt >= self.retry.max_retries:
                    raise PaisConnectionError(f"{self.description}: {error}") from error
                delay = self.retry.backoff(attempt)
            else:
                answer = httpx.Response(
                    200,
                    headers={"content-type": response.get("ContentType") or "application/octet-stream"},
                    content=response["Body"].read(),
                    request=httpx.Request("POST", f"sagemaker://{self.endpoint_name}{call.path}"),
                )
                return call.result(answer)
            attempt += 1
            time.sleep(delay)

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def unwrap_error(error: Any) -> PaisError:
    """What a botocore ClientError from InvokeEndpoint means: the container's own error
    answer (ModelError: its status and body), a "later" from SageMaker, an over-size
    payload (413, so batch jobs send smaller requests), or SageMaker refusing the call."""
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "") or str(error)
    if code == "ModelError":
        original = response.get("OriginalMessage") or message
        try:
            body: Any = json.loads(original)
        except (TypeError, ValueError):
            body = original
        return api_error(int(response.get("OriginalStatusCode") or 500), body)
    if code in _CODE_STATUS:
        return api_error(_CODE_STATUS[code], {"error": f"SageMaker {code}: {message}"})
    if code == "ValidationError" and re.search(r"payload|body|size|too large|exceed", message, re.I):
        return api_error(413, {"error": f"SageMaker {code}: {message}"})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400
    return SageMakerError(code or "error", message, int(status))


def _runtime_client(region: str | None, endpoint_url: str | None, timeout_s: float, pool: int) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover
        raise RuntimeError("SageMaker endpoints need boto3: pip install 'pais-client[s3]'") from None
    config = Config(
        retries={"max_attempts": 1},  # one retry policy for every transport: ours
        read_timeout=timeout_s,
        connect_timeout=10,
        max_pool_connections=pool,
    )
    return boto3.client("sagemaker-runtime", region_name=region, endpoint_url=endpoint_url, config=config)
