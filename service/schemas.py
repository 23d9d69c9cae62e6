"""Shapes every model service shares with the entry service."""

from pydantic import BaseModel


class ItemError(BaseModel):
    """Why one item of a batch failed; the other items of the batch are unaffected."""

    kind: str  # see models.image_header.ImageError and models.video.errors.VideoError
    message: str
