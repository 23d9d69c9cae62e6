"""SageMaker's runtime API in front of a PAIS container run locally: boto3's
`sagemaker-runtime` client, pointed here with `endpoint_url`, calls InvokeEndpoint
(`POST /endpoints/{name}/invocations`), and this shim forwards it to the container's
`POST /invocations`, as SageMaker's front end does. Nothing else runs SageMaker's real
runtime here (moto's fake answers canned bodies and fails on binary ones).

What it assumes of the real service (from botocore's sagemaker-runtime model and AWS's
documentation), and nothing more:
- the body, Content-Type, Accept and X-Amzn-SageMaker-Custom-Attributes reach the
  container unchanged; other request headers are not forwarded;
- a 2xx answer comes back with its body and Content-Type;
- a container error answer comes back as HTTP 424, error type `ModelError`, with the
  container's status and body in `OriginalStatusCode` and `OriginalMessage`;
- SigV4 signatures are not checked (a fake one from dummy credentials is accepted), and
  the endpoint name must be the one the shim serves (else a ValidationError, as for an
  unknown endpoint).
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from .scripted_server import LocalServer, reply

FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes")
INVOKE = re.compile(r"^/endpoints/([^/]+)/invocations$")


class SageMakerRuntimeShim(LocalServer):
    def __init__(self, container_url: str, endpoint_name: str):
        self.container_url = container_url.rstrip("/")
        self.endpoint_name = endpoint_name
        self.invocations = 0
        self._http = httpx.Client(timeout=120)
        super().__init__(self._handler_class())

    def closed(self) -> None:
        self._http.close()

    def _invoke(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if name != self.endpoint_name:
            error = {"message": f"Endpoint {name} of account 123456789012 not found."}
            return (
                400,
                {"x-amzn-ErrorType": "ValidationError", "Content-Type": "application/json"},
                _json(error),
            )
        self.invocations += 1
        forwarded = {k: v for k, v in headers.items() if k in FORWARDED}
        answer = self._http.post(f"{self.container_url}/invocations", content=body, headers=forwarded)
        if answer.status_code < 300:
            return (
                200,
                {
                    "Content-Type": answer.headers.get("content-type", "application/octet-stream"),
                    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                },
                answer.content,
            )
        kind = "client" if answer.status_code < 500 else "server"
        error = {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "Message": f"Received {kind} error ({answer.status_code}) from primary with message "
            f'"{answer.text}". See the CloudWatch logs for more information.',
            "OriginalStatusCode": answer.status_code,
            "OriginalMessage": answer.text,
            "LogStreamArn": f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{name}",
        }
        return 424, {"x-amzn-ErrorType": "ModelError", "Content-Type": "application/json"}, _json(error)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                match = INVOKE.match(self.path.split("?")[0])
                if match is None:
                    status, headers, payload = (
                        404,
                        {"Content-Type": "application/json"},
                        _json({"message": "no route"}),
                    )
                else:
                    headers_in = {k.lower(): v for k, v in self.headers.items()}
                    status, headers, payload = shim._invoke(match.group(1), headers_in, body)
                reply(self, status, headers, payload)

        return Handler


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
