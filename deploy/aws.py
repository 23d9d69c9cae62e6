"""One AWS session for a command, and the line between reading and changing AWS.

Every call goes through `Aws.read` (describe/get/list: made even in a dry run, because the
plan depends on what exists) or `Aws.write` (anything that creates, changes or deletes:
in a dry run it is validated against botocore's service model and recorded, not sent).
Both validate their parameters the same way, so a dry run's plan is exactly what a real
run would send.

Every S3 call that names a bucket also names the account that must own it
(ExpectedBucketOwner: this account), added here so that no call can forget it: S3 then
refuses, with 403, to read from or write to a bucket of anyone else, e.g. one made under a
name the tool uses before the tool made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from .errors import DeployError
from .plan import Unknown, has_member, plan_params, validate_call


@dataclass(frozen=True)
class AwsOptions:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    dry_run: bool = False
    max_attempts: int = 5
    poll_interval_s: float = 10.0


@dataclass
class PlannedCall:
    service: str
    operation: str
    params: dict[str, Any]
    read: bool

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "params": self.params}


@dataclass
class Aws:
    options: AwsOptions
    calls: list[PlannedCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    progress: Callable[[str], None] = print

    @cached_property
    def session(self) -> boto3.Session:
        session = boto3.Session(profile_name=self.options.profile, region_name=self.options.region)
        if not session.region_name:
            raise DeployError("no AWS region: pass --region or set AWS_DEFAULT_REGION / a profile region")
        return session

    @property
    def region(self) -> str:
        return self.session.region_name

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def client(self, service: str) -> Any:
        clients = self.__dict__.setdefault("_clients", {})
        if service not in clients:
            # SageMaker lets a real-time invocation run 60 s, botocore's whole default read
            # timeout: leave room for the answer to arrive.
            config = Config(
                retries={"max_attempts": self.options.max_attempts, "mode": "standard"}, read_timeout=120
            )
            clients[service] = self.session.client(
                service, endpoint_url=self.options.endpoint_url, config=config
            )
        return clients[service]

    @cached_property
    def account_id(self) -> str:
        return self.read("sts", "GetCallerIdentity")["Account"]

    @cached_property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region)

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account_id if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def read(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """A call that changes nothing: made in every mode."""
        return self._send(service, operation, params, read=True)

    def find(self, service: str, operation: str, **params: Any) -> dict[str, Any] | None:
        """A read whose "does not exist" is an answer: None."""
        try:
            return self.read(service, operation, **params)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    def write(self, service: str, operation: str, **params: Any) -> Any:
        """A call that changes AWS: recorded (and not sent) in a dry run, whose answer is then
        an `Unknown` standing for the values AWS would have returned."""
        params = self._owned_bucket(service, operation, params)
        if self.dry_run:
            recorded = plan_params(params)
            _raise_if_invalid(service, operation, recorded)
            self.calls.append(PlannedCall(service, operation, recorded, read=False))
            return Unknown(f"{service}.{operation}")
        return self._send(service, operation, params, read=False)

    def note(self, message: str) -> None:
        """Something a real run would do that is not an AWS call (a wait, an image push)."""
        if self.dry_run:
            self.notes.append(message)
        else:
            self.progress(message)

    def _owned_bucket(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if (
            service == "s3"
            and "Bucket" in params
            and "ExpectedBucketOwner" not in params
            and has_member(service, operation, "ExpectedBucketOwner")
        ):
            return {**params, "ExpectedBucketOwner": self.account_id}
        return params

    def _send(self, service: str, operation: str, params: dict[str, Any], read: bool) -> dict[str, Any]:
        params = self._owned_bucket(service, operation, params)
        _raise_if_invalid(service, operation, plan_params(params))
        return getattr(self.client(service), xform_name(operation))(**params)

    def planned(self) -> list[dict[str, Any]]:
        return [call.to_dict() for call in self.calls if not call.read]

    def sleep(self) -> None:
        time.sleep(self.options.poll_interval_s)


def _raise_if_invalid(service: str, operation: str, params: dict[str, Any]) -> None:
    problems = validate_call(service, operation, params)
    if problems:
        raise DeployError(f"{service}.{operation}: invalid parameters:\n  " + "\n  ".join(problems))


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_not_found(error: ClientError) -> bool:
    """AWS says "does not exist" in many dialects; these are the ones the tool meets."""
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    return code in {
        "NoSuchEntity",
        "NoSuchKey",
        "NoSuchBucket",
        "404",
        "NotFound",
        "RepositoryNotFoundException",
        "ImageNotFoundException",
        "ResourceNotFoundException",
        "ParameterNotFound",
        "InvalidGroup.NotFound",
        "InvalidInstanceID.NotFound",
        "LifecyclePolicyNotFoundException",
        "ObjectNotScalableException",
    } or (code == "ValidationException" and ("Could not find" in message or "does not exist" in message))
