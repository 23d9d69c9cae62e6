"""Reading a deployment's CloudWatch Logs, once or following them by polling.

Where the logs are: a SageMaker endpoint writes to /aws/sagemaker/Endpoints/<endpoint>
(one stream per variant and instance), a transform job to /aws/sagemaker/TransformJobs
(streams `<job>/...`), and the EC2 container to /pais/<deployment> (docker's awslogs
driver, set up by the user-data script). The tool makes the endpoint's and the instance's
groups itself, before anything writes to them, so that they carry its tags (teardown's
--purge-artifacts deletes only tagged groups) and a retention.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, is_not_found
from .errors import DeployError
from .ownership import LOG_GROUP, Ownership

LOG_RETENTION_DAYS = 30
_SPAN = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ms: int | None = None) -> int:
    """`10m`, `2h`, `1d` or an ISO time -> epoch milliseconds."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    found = _SPAN.match(text.strip())
    if found:
        return now_ms - int(found.group(1)) * _UNIT_S[found.group(2)] * 1000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DeployError(f"--since {text!r}: use 30s, 10m, 2h, 1d or an ISO time") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def format_event(event: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(event["timestamp"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{when} {event.get('logStreamName', '')} {event['message'].rstrip()}"


def read_events(
    aws: Aws, group: str, since_ms: int, stream_prefix: str | None = None, seen: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every event in `group` from `since_ms` on, oldest first, minus ids in `seen`."""
    params: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
    if stream_prefix:
        params["logStreamNamePrefix"] = stream_prefix
    events: list[dict[str, Any]] = []
    while True:
        page = aws.read("logs", "FilterLogEvents", **params)
        events += [e for e in page.get("events", []) if not seen or e["eventId"] not in seen]
        if not page.get("nextToken"):
            break
        params["nextToken"] = page["nextToken"]
    return sorted(events, key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))


def show_logs(
    aws: Aws,
    group: str,
    since_ms: int,
    emit: Callable[[str], None],
    stream_prefix: str | None = None,
    follow_s: float | None = None,
) -> int:
    """Print the events; with `follow_s`, keep polling for new ones that long. Returns how
    many events were printed."""
    seen: set[str] = set()
    deadline = time.monotonic() + (follow_s or 0)
    printed = 0
    while True:
        try:
            events = read_events(aws, group, since_ms, stream_prefix, seen)
        except ClientError as error:
            if not is_not_found(error):
                raise
            if follow_s is None:
                raise DeployError(f"no log group {group} yet: the deployment has not written logs") from None
            events = []
        for event in events:
            seen.add(event["eventId"])
            since_ms = max(since_ms, event["timestamp"])
            emit(format_event(event))
            printed += 1
        if follow_s is None or time.monotonic() >= deadline:
            return printed
        aws.sleep()


def ensure_log_group(aws: Aws, owner: Ownership, group: str, tags: dict[str, str]) -> None:
    """Create the group with a retention; an existing one keeps its own unless it is the
    tool's (the deployment's logs go to it either way: adding events changes nothing else)."""
    listed = aws.read("logs", "DescribeLogGroups", logGroupNamePrefix=group)["logGroups"]
    if any(found["logGroupName"] == group for found in listed):
        if owner.may_change(LOG_GROUP, group, f"keep its events {LOG_RETENTION_DAYS} days"):
            aws.write("logs", "PutRetentionPolicy", logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
        return
    aws.write("logs", "CreateLogGroup", logGroupName=group, tags=tags)
    aws.write("logs", "PutRetentionPolicy", logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
