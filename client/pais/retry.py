"""When to send a request again, and after how long (no I/O here: the sync and async
clients and the SageMaker transport share it).

Retried: connection failures (nothing or only part was sent, or the server dropped the
connection: inference has no side effects, so sending again is safe) and the statuses
that mean "not now" (429, 503, and 502/504 from a load balancer in front). Never
retried: 4xx (the request is wrong) and read timeouts (the server may still be working;
sending again would double its load). Waits use exponential backoff with full jitter
(uniform in [0, min(cap, base * 2^attempt)]) so many clients do not retry in step; a
Retry-After header is honoured as the least wait.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from .errors import PaisConnectionError, PaisTimeoutError

RETRYABLE_TRANSPORT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4  # attempts after the first
    backoff_s: float = 0.5  # the first wait's upper bound
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is not waited for: the error is raised
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))

    def delay_after_status(self, status: int, headers: Mapping[str, str], attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up."""
        if status not in self.statuses or attempt >= self.max_retries:
            return None
        wait = retry_after_s(headers)
        if wait is None:
            return self.backoff(attempt)
        if wait > self.max_retry_after_s:
            return None
        return wait + random.uniform(0, self.backoff_s)

    def delay_after_error(self, error: Exception, attempt: int) -> float | None:
        if not isinstance(error, RETRYABLE_TRANSPORT_ERRORS) or attempt >= self.max_retries:
            return None
        return self.backoff(attempt)


NO_RETRIES = RetryPolicy(max_retries=0)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(error: httpx.TransportError, url: str) -> PaisConnectionError:
    """The SDK's exception for an httpx transport failure."""
    if isinstance(error, httpx.TimeoutException):
        return PaisTimeoutError(f"{url}: no answer in time ({type(error).__name__}); raise `timeout=`?")
    return PaisConnectionError(f"{url}: {type(error).__name__}: {error}")
