"""Request bodies of the speech endpoints, and the shapes exchanged with the speech model
service."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.speech import MAX_SPEED, MIN_SPEED


class SynthesizeRequest(BaseModel):
    # A misspelt option ("sped") is an error, not silently the default.
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the text to speak; long texts are split into sentences")
    voice: str | None = Field(None, description="a voice id from GET /voices (default: the served voice)")
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED, description="reading speed, 1.0 = the voice's pace")
    format: Literal["wav", "flac", "ogg"] = Field("wav", description="audio file format")


class StreamRequest(SynthesizeRequest):
    format: Literal["wav", "pcm"] = Field(  # type: ignore[assignment]
        "wav",
        description="wav: a WAV header of open length, then PCM; pcm: raw signed 16-bit little-endian mono",
    )


class SentenceItem(BaseModel):
    text: str  # one normalised sentence
    speed: float = 1.0


class ItemError(BaseModel):
    kind: str  # "unspeakable"
    message: str


class SentenceAudio(BaseModel):
    pcm: bytes | None = None  # 16-bit little-endian mono at the voice's sample rate
    error: ItemError | None = None
