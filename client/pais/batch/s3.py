"""S3 access for batch jobs (boto3, the optional `pais-client[s3]` extra).

The client is made once per process from the standard AWS configuration (credentials,
region, AWS_ENDPOINT_URL for S3-compatible stores); boto3 clients are thread-safe, and
every call here is blocking, so the batch engine runs them in threads.
"""

from __future__ import annotations

import email.utils
import functools
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def is_s3_uri(value: str) -> bool:
    return value.startswith("s3://")


@functools.lru_cache(maxsize=1)
def s3_client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - the extra is not installed
        raise RuntimeError("s3:// inputs and outputs need boto3: pip install 'pais-client[s3]'") from None
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)
    return boto3.client("s3", endpoint_url=os.environ.get("PAIS_S3_ENDPOINT_URL") or None, config=config)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not is_s3_uri(uri):
            raise ValueError(f"not an s3:// URI: {uri}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {uri}")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        """`name` under this location taken as a folder."""
        return S3Location(self.bucket, f"{self.key.rstrip('/')}/{name}" if self.key else name)

    def sibling(self, relative: str) -> S3Location:
        """`relative` next to this object (as a path beside a file)."""
        return S3Location(
            self.bucket, posixpath.normpath(posixpath.join(posixpath.dirname(self.key), relative))
        )

    def iter_keys(self) -> Iterator[str]:
        """Keys under this prefix, one listing page (1000 keys) at a time."""
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key)
        for page in pages:
            for item in page.get("Contents", ()):
                yield item["Key"]

    def iter_lines(self) -> Iterator[bytes]:
        """The object's lines, streamed (each ends with b"\\n" except perhaps the last)."""
        body = s3_client().get_object(Bucket=self.bucket, Key=self.key)["Body"]
        try:
            pending = b""
            for chunk in body.iter_chunks(1 << 16):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line + b"\n"
            if pending:
                yield pending
        finally:
            body.close()

    def read(self) -> bytes:
        return s3_client().get_object(Bucket=self.bucket, Key=self.key)["Body"].read()

    def write(
        self, data: bytes, content_type: str = "application/octet-stream", *, if_match: str | None = None
    ) -> str:
        """One PUT: S3 stores the whole object or nothing. `if_match`: only over the version
        with that ETag. Returns the new ETag."""
        condition = {"IfMatch": if_match} if if_match else {}
        answer = s3_client().put_object(
            Bucket=self.bucket, Key=self.key, Body=data, ContentType=content_type, **condition
        )
        return answer["ETag"]

    def create(self, data: bytes, content_type: str = "application/octet-stream") -> str | None:
        """PUT only if no object has this key (IfNoneMatch="*"): the new ETag, or None when
        one exists already (S3 answers 412, or 409 to a create racing another)."""
        try:
            answer = s3_client().put_object(
                Bucket=self.bucket, Key=self.key, Body=data, ContentType=content_type, IfNoneMatch="*"
            )
        except Exception as error:
            if http_status(error) in (409, 412):
                return None
            raise
        return answer["ETag"]

    def read_versioned(self) -> tuple[bytes, str, float] | None:
        """(content, ETag, age in seconds by S3's own clock), or None when absent."""
        try:
            answer = s3_client().get_object(Bucket=self.bucket, Key=self.key)
        except Exception as error:
            if http_status(error) == 404:
                return None
            raise
        served = email.utils.parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"])
        return answer["Body"].read(), answer["ETag"], (served - answer["LastModified"]).total_seconds()

    def delete(self, *, if_match: str | None = None) -> None:
        condition = {"IfMatch": if_match} if if_match else {}
        s3_client().delete_object(Bucket=self.bucket, Key=self.key, **condition)


def http_status(error: Exception) -> int | None:
    """The HTTP status of a botocore ClientError (412 PreconditionFailed, 404 NoSuchKey)."""
    response = getattr(error, "response", None)
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
