"""--purge-artifacts: what teardown deletes beyond the running resources.

Only objects `push` wrote are ever deleted: under the release layout
`<repository>/<tag>/model.tar.gz` (deploy/artifacts.py, release_key), in a bucket the tool
made, and carrying the tool's tag on the object itself. Anything else a deployment's
model points at (`--model-data s3://your-bucket/...`) is the user's and is named in
`left_alone` instead. Log groups go only when tagged for the deployment.
"""

from __future__ import annotations

from .artifacts import is_release_key, split_s3_uri
from .aws import Aws
from .ownership import LOG_GROUP, S3_BUCKET, S3_OBJECT, Ownership, made_by_tool


def purge(aws: Aws, owner: Ownership, objects: list[str], log_groups: list[str]) -> list[str]:
    """Delete the artifacts and log groups the tool made (absent ones are skipped). Another
    deployment made from the same `push` shares its artifacts: they go for it too."""
    purged = []
    for uri in objects:
        if _pushed_by_tool(aws, owner, uri):
            bucket, key = split_s3_uri(uri)
            aws.write("s3", "DeleteObject", Bucket=bucket, Key=key)
            purged.append(uri)
    for group in log_groups:
        if owner.may_change(LOG_GROUP, group, "be deleted"):
            aws.write("logs", "DeleteLogGroup", logGroupName=group)
            purged.append(f"log group {group}")
    return purged


def _pushed_by_tool(aws: Aws, owner: Ownership, uri: str) -> bool:
    """Whether `uri` is an artifact `push` stored; records why not in `owner.left_alone`."""
    bucket, key = split_s3_uri(uri)
    reason = None
    if not is_release_key(key):
        reason = "not under the tool's release layout <repository>/<tag>/model.tar.gz"
    else:
        bucket_tags = S3_BUCKET.read(aws, bucket)
        object_tags = S3_OBJECT.read(aws, uri) if bucket_tags is not None else None
        if object_tags is None:
            return False  # already gone
        if not made_by_tool(bucket_tags):
            reason = f"bucket {bucket} was not made by this tool"
        elif not made_by_tool(object_tags):
            reason = "the object was not uploaded by `push` (it lacks the tool's tag)"
    if reason:
        owner.left_alone.append({"kind": S3_OBJECT.label, "name": uri, "reason": reason})
        return False
    return True
