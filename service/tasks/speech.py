"""Speech synthesis: POST /synthesize, POST /synthesize/stream and GET /voices.

The entry service normalises the text and splits it into sentences (pure Python, linear
in the text's length); the sentences are the items the voice batches across requests.
The entry service joins and encodes the audio (soundfile), so the model workers only run
the voice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.speech import DEFAULT_SOURCE, MAX_SPEED, MIN_SPEED, audio
from models.speech.schema import SentenceItem, Voice, Voices
from models.speech.text import SpeechError, sentences

from ..config import ModelSettings, setting
from ..context import Context
from ..errors import RequestError, from_item_error
from ..task import BatchJob, Binary, BinaryAnswer, Limit, Operation, Query, Streamed, Task

log = logging.getLogger("pais.speech")


@dataclass(frozen=True)
class SpeechSettings(ModelSettings):
    model: str = setting(
        DEFAULT_SOURCE, "Source URI of the voice: packaged:piper-joe, hf:<id> (VITS), s3://, a directory."
    )
    max_batch_size: int = setting(32, "Most sentences in one batch of the voice.", 1)
    max_chars: int = setting(
        5000, "Most characters of text in one /synthesize or /synthesize/stream request (413 beyond).", 1
    )


Text = Annotated[
    str,
    Limit("max_chars", what="characters"),
    Field(
        description="the text to speak; long texts are split into sentences",
        # documented, and checked with a clearer message than a pattern's by the text rules
        json_schema_extra={"minLength": 1, "pattern": r"\S"},
    ),
]
VoiceId = Annotated[str | None, Field(description="a voice id from GET /voices (default: the served voice)")]
Speed = Annotated[
    float, Field(ge=MIN_SPEED, le=MAX_SPEED, description="reading speed, 1.0 = the voice's pace")
]


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt option ("sped") is an error, not the default

    text: Text
    voice: VoiceId = None
    speed: Speed = 1.0
    format: Annotated[Literal["wav", "flac", "ogg"], Field(description="audio file format")] = "wav"


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    voice: VoiceId = None
    speed: Speed = 1.0
    format: Annotated[
        Literal["wav", "pcm"],
        Field(
            description="wav: a WAV header of open length, then PCM; "
            "pcm: raw signed 16-bit little-endian mono"
        ),
    ] = "wav"


AUDIO_HEADERS = {
    "X-Sample-Rate": "samples per second",
    "X-Voice": "the voice that spoke",
    "X-Sentences": "sentences spoken",
}


async def synthesize(ctx: Context, request: SynthesizeRequest) -> Binary:
    """Speak a text: the whole audio file (WAV, FLAC or Ogg Vorbis) in one answer."""
    card, items = await _prepare(ctx, request)
    rate = card["details"]["sample_rate"]
    pcm = audio.join_sentences(_spoken(await ctx.predict(items), required=True), rate)
    body = await asyncio.to_thread(audio.encode, pcm, rate, request.format)
    return Binary(
        body,
        audio.FORMATS[request.format].media_type,
        {
            **_audio_headers(card, len(items)),
            "X-Audio-Duration": f"{audio.duration_s(pcm, rate):.3f}",
            "Content-Disposition": f'inline; filename="speech.{request.format}"',
        },
    )


async def synthesize_stream(ctx: Context, request: StreamRequest) -> Streamed:
    """Speak a text as a stream: audio is sent sentence by sentence as it is ready."""
    card, items = await _prepare(ctx, request)
    rate = card["details"]["sample_rate"]
    groups = _stream_groups(items, ctx.section.max_batch_size)
    # The first sentence is spoken before the answer starts, so that a failure is still a
    # proper error status; later groups run while earlier audio is sent.
    first = _spoken(await ctx.predict(groups[0]), required=len(groups) == 1)
    header = audio.streaming_wav_header(rate) if request.format == "wav" else b""
    return Streamed(
        _stream(ctx, header, first, groups[1:], rate),
        audio.STREAM_FORMATS[request.format],
        {**_audio_headers(card, len(items)), "X-Sample-Format": "s16le", "X-Channels": "1"},
    )


async def _stream(
    ctx: Context, header: bytes, first: list[bytes], groups: list[list[SentenceItem]], rate: int
) -> AsyncIterator[bytes]:
    gap = audio.silence(rate)
    upcoming = iter(groups)

    def start_next() -> asyncio.Future[list[Any]] | None:
        group = next(upcoming, None)
        return asyncio.ensure_future(ctx.predict(group)) if group else None

    pending = start_next()
    try:
        yield header + gap.join(first)
        while pending is not None:
            done = await pending
            pending = start_next()  # the next group is spoken while this one is sent
            for pcm in _spoken(done):
                yield gap + pcm
    finally:
        if pending is not None:
            pending.cancel()


async def _prepare(
    ctx: Context, request: SynthesizeRequest | StreamRequest
) -> tuple[dict[str, Any], list[SentenceItem]]:
    """The voice's card and the request's sentences. Normalising a long text takes
    milliseconds of regular expressions: off the event loop."""
    (card,) = await ctx.cards()
    voice_ids = [voice["id"] for voice in card["details"]["voices"]]
    if request.voice is not None and request.voice.lower() not in {v.lower() for v in voice_ids}:
        raise RequestError(
            400,
            f"unknown voice {request.voice!r}; voices: {', '.join(voice_ids)} (GET /voices)",
            [{"field": "voice", "kind": "invalid", "message": "unknown voice"}],
        )
    try:
        found = await asyncio.to_thread(sentences, request.text, card["details"]["language"])
    except SpeechError as error:
        raise from_item_error(error, "text") from None
    return card, [SentenceItem(sentence, request.speed) for sentence in found]


def _spoken(results: list[Any], required: bool = False) -> list[bytes]:
    """The audio of each spoken sentence. A sentence the voice could not say is left out,
    as a reader would skip it; with `required`, having none is a 422."""
    for result in results:
        if isinstance(result, SpeechError):
            log.info("sentence skipped: %s", result.message)
    spoken = [r for r in results if isinstance(r, bytes)]
    if required and not spoken:
        # the first sentence's reason, with its status (413 for a sentence over a budget)
        first = next((r for r in results if isinstance(r, SpeechError)), None)
        if first is None:
            raise RequestError(422, "nothing in the text could be spoken by this voice")
        error = from_item_error(first, "text")
        error.message = f"nothing in the text could be spoken by this voice: {first.message}"
        raise error
    return spoken


def _stream_groups(items: list[SentenceItem], largest: int) -> list[list[SentenceItem]]:
    """The first sentence alone (the first sound as early as possible), then groups that
    double in size up to the batch limit (batches keep the model busy while audio plays)."""
    groups, start, size = [], 0, 1
    while start < len(items):
        groups.append(items[start : start + size])
        start += size
        size = min(size * 2, largest)
    return groups


def _audio_headers(card: dict[str, Any], count: int) -> dict[str, str]:
    return {
        "X-Sample-Rate": str(card["details"]["sample_rate"]),
        "X-Voice": card["details"]["voices"][0]["id"],
        "X-Sentences": str(count),
    }


async def list_voices(ctx: Context) -> Voices:
    """The voices served, with language, sample rate, formats, speeds and licence."""
    (card,) = await ctx.cards()
    return Voices(
        voices=[
            Voice(
                **voice,
                model=card["name"],
                source=card["source"],
                version=card["version"],
                licence=card["licence"],
                origin=card["origin"],
                default=True,
                formats=sorted(audio.FORMATS),
                stream_formats=sorted(audio.STREAM_FORMATS),
                speed=[MIN_SPEED, MAX_SPEED],
            )
            for voice in card["details"]["voices"]
        ]
    )


async def voice_choices(ctx: Context) -> dict[str, list[str]]:
    """The voices `voice` may name."""
    (card,) = await ctx.cards()
    return {"voice": [voice["id"] for voice in card["details"]["voices"]]}


TASK = Task(
    name="speech",
    summary="Text to speech (US English voice, 22.05 kHz)",
    runtime="models.speech:SpeechSynthesizer",
    settings=SpeechSettings,
    operations=(
        Operation(
            "/synthesize",
            synthesize,
            answer=BinaryAnswer(
                tuple(f.media_type for f in audio.FORMATS.values()),
                "the spoken text as one audio file",
                {**AUDIO_HEADERS, "X-Audio-Duration": "seconds of audio"},
            ),
            statuses=(422,),
            batch=BatchJob("text", "text", split=None),
            choices=voice_choices,
        ),
        Operation(
            "/synthesize/stream",
            synthesize_stream,
            answer=BinaryAnswer(
                tuple(audio.STREAM_FORMATS.values()),
                "audio sent as each sentence is spoken",
                AUDIO_HEADERS,
                streamed=True,
            ),
            statuses=(422,),
            choices=voice_choices,
        ),
    ),
    queries=(Query("/voices", list_voices),),
    runtime_options=lambda section, settings: {"max_batch_size": section.max_batch_size},
)
