"""The one exception the CLI turns into a message and an exit status."""

from __future__ import annotations


class DeployError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_status = 1


class WaitTimeout(DeployError):
    """A wait ran past --timeout; AWS may still finish the operation on its own."""

    exit_status = 3
