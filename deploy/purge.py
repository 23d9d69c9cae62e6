"""--purge-artifacts: what teardown deletes beyond the running resources."""

from __future__ import annotations

from botocore.exceptions import ClientError

from .artifacts import split_s3_uri
from .aws import Aws, is_not_found


def purge(aws: Aws, objects: list[str], log_groups: list[str]) -> list[str]:
    """Delete S3 objects (model artifacts) and log groups; absent ones are skipped. Another
    deployment made from the same `push` shares its artifacts: they go for it too."""
    purged = []
    for uri in objects:
        bucket, key = split_s3_uri(uri)
        aws.write("s3", "DeleteObject", Bucket=bucket, Key=key)
        purged.append(uri)
    for group in log_groups:
        try:
            aws.write("logs", "DeleteLogGroup", logGroupName=group)
            purged.append(f"log group {group}")
        except ClientError as error:
            if not is_not_found(error):
                raise
    return purged
