"""Polling until AWS reaches a state, with a deadline, reporting each change of status."""

from __future__ import annotations

import time
from collections.abc import Callable

from .aws import Aws
from .errors import WaitTimeout


def wait_until(aws: Aws, what: str, check: Callable[[], tuple[bool, str]], timeout_s: float) -> str:
    """Call `check` until it answers done; return its last status. `check` raises
    DeployError itself when the state is a failure. In a dry run, only notes the wait."""
    if aws.dry_run:
        aws.note(f"wait until {what} (up to {timeout_s:g} s)")
        return "planned"
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        done, status = check()
        if status != last:
            aws.progress(f"{what}: {status}")
            last = status
        if done:
            return status
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"gave up waiting after {timeout_s:g} s until {what} (last status: {status}); "
                "AWS may still finish it: check with `status`, or rerun with a longer --timeout"
            )
        aws.sleep()
