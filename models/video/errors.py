"""The one error type of video inputs."""

from ..errors import ItemError


class VideoError(ItemError):
    """A video that cannot be analysed. `kind` is one of: empty, unsupported, corrupt,
    too_large (bytes, duration, frame size or frame count over a limit), timeout."""
