"""The one error type of video inputs."""


class VideoError(ValueError):
    """A video that cannot be analysed. `kind` is one of: empty, unsupported, corrupt,
    too_large (bytes, duration, frame size or frame count over a limit)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message
