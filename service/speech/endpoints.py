"""POST /synthesize, POST /synthesize/stream and GET /voices, mixed into the entry service
(service.gateway.PAIS).

The entry service normalises the text and splits it into sentences (pure Python, no
model), sends the sentences to the speech model service, which batches them across
requests, and joins and encodes the audio itself (soundfile), so the model workers only
run the voice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Annotated, Any

import anyio.to_thread
import bentoml
from bentoml.validators import ContentType
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from models.speech import MAX_SPEED, MIN_SPEED, audio
from models.speech.text import SpeechError, sentences

from ..errors import RequestError, answers_request_errors
from ..model_calls import answers_model_service_errors, ask_once
from ..sagemaker import InvocationRoute
from ..settings import get_settings
from .schemas import SentenceAudio, SentenceItem, StreamRequest, SynthesizeRequest
from .worker import SpeechSynthesis

settings = get_settings()
log = logging.getLogger("pais.speech")

TEXT_ERROR_STATUS = {"empty": HTTPStatus.BAD_REQUEST, "unspeakable": HTTPStatus.UNPROCESSABLE_ENTITY}


class SpeechEndpoints:
    speech = bentoml.depends(SpeechSynthesis)
    # SageMaker /invocations with `task=synthesize`: the JSON body of POST /synthesize.
    invocation_routes = (InvocationRoute("synthesize", "/synthesize"),)

    @bentoml.api(route="/synthesize")
    @answers_request_errors
    async def synthesize(self, request: SynthesizeRequest, /) -> Annotated[bytes, ContentType("audio/*")]:
        """Speak a text: the whole audio file (WAV, FLAC or Ogg Vorbis) in one answer."""
        card, items, rate = await self._prepare(request)
        pcm = audio.join_sentences(_spoken(await self._synthesize(items), required=True), rate)
        body = await anyio.to_thread.run_sync(audio.encode, pcm, rate, request.format)
        return Response(
            body,
            media_type=audio.FORMATS[request.format].media_type,
            headers={
                **_audio_headers(card, len(items)),
                "X-Audio-Duration": f"{audio.duration_s(pcm, rate):.3f}",
                "Content-Disposition": f'inline; filename="speech.{request.format}"',
            },
        )

    @bentoml.api(route="/synthesize/stream")
    @answers_request_errors
    async def synthesize_stream(self, request: StreamRequest, /) -> Annotated[bytes, ContentType("audio/*")]:
        """Speak a text as a stream: audio is sent sentence by sentence as it is ready."""
        card, items, rate = await self._prepare(request)
        groups = _stream_groups(items, settings.speech_max_batch_size)
        # The first sentence is synthesised before the answer starts, so that a failure is
        # still a proper error status; later groups run while earlier audio is sent.
        first = _spoken(await self._synthesize(groups[0]), required=len(groups) == 1)
        header = audio.streaming_wav_header(rate) if request.format == "wav" else b""
        return StreamingResponse(
            self._stream(header, first, groups[1:], rate),
            media_type=audio.STREAM_FORMATS[request.format],
            headers={**_audio_headers(card, len(items)), "X-Sample-Format": "s16le", "X-Channels": "1"},
        )

    async def _stream(
        self, header: bytes, first: list[bytes], groups: list[list[SentenceItem]], rate: int
    ) -> AsyncIterator[bytes]:
        gap = audio.silence(rate)
        upcoming = iter(groups)
        pending = self._next_group(upcoming)
        try:
            yield header + gap.join(first)
            while pending is not None:
                done = await pending
                # start the next group before sending this one: synthesis overlaps sending
                pending = self._next_group(upcoming)
                for pcm in _spoken(done):
                    yield gap + pcm
        finally:
            if pending is not None:
                pending.cancel()

    def _next_group(self, groups: Iterator[list[SentenceItem]]) -> asyncio.Future[list[SentenceAudio]] | None:
        group = next(groups, None)
        return asyncio.ensure_future(self._synthesize(group)) if group else None

    async def _prepare(self, request: SynthesizeRequest) -> tuple[dict[str, Any], list[SentenceItem], int]:
        """The speech card, the request's sentences and the voice's sample rate. Normalising
        a long text takes milliseconds of regular expressions: off the event loop."""
        card = await self.speech_card()
        items = await anyio.to_thread.run_sync(_sentence_items, request, card)
        return card, items, card["details"]["sample_rate"]

    async def _synthesize(self, items: list[SentenceItem]) -> list[SentenceAudio]:
        outcomes = await self.speech.to_async.synthesize_batch(items)
        return [SentenceAudio.model_validate(o) if isinstance(o, dict) else o for o in outcomes]

    async def speech_card(self) -> dict[str, Any]:
        """The speech model's card (asked once per worker: the voice does not change)."""
        (card,) = await ask_once(self, "speech", self.speech, "model_info")
        return card

    async def speech_voices(self) -> list[dict[str, Any]]:
        card = await self.speech_card()
        return [
            {
                **voice,
                "model": card["name"],
                "source": card["source"],
                "version": card["version"],
                "licence": card["licence"],
                "origin": card["origin"],
                "default": True,
                "formats": sorted(audio.FORMATS),
                "stream_formats": sorted(audio.STREAM_FORMATS),
                "speed": [MIN_SPEED, MAX_SPEED],
            }
            for voice in card["details"]["voices"]
        ]


def _sentence_items(request: SynthesizeRequest, card: dict[str, Any]) -> list[SentenceItem]:
    """The request's sentences, or the RequestError that says what is wrong with it."""
    voice_ids = [voice["id"] for voice in card["details"]["voices"]]
    if request.voice is not None and request.voice.lower() not in {v.lower() for v in voice_ids}:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"unknown voice {request.voice!r}; voices: {', '.join(voice_ids)} (GET /voices)",
        )
    if len(request.text) > settings.max_speech_chars:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"text has {len(request.text)} characters; at most {settings.max_speech_chars} per request "
            "(PAIS_MAX_SPEECH_CHARS); send the text in several requests",
        )
    try:
        found = sentences(request.text, card["details"]["language"])
    except SpeechError as error:
        raise RequestError(TEXT_ERROR_STATUS[error.kind], error.message) from None
    return [SentenceItem(text=sentence, speed=request.speed) for sentence in found]


def _spoken(outcomes: list[SentenceAudio], required: bool = False) -> list[bytes]:
    """The audio of each spoken sentence. A sentence the voice could not say (its slot has
    an error) is left out, as a reader would skip it; with `required`, having none is a 422."""
    for outcome in outcomes:
        if outcome.error is not None:
            log.info("sentence skipped: %s", outcome.error.message)
    spoken = [o.pcm for o in outcomes if o.pcm is not None]
    if required and not spoken:
        reason = next((o.error.message for o in outcomes if o.error is not None), "no audio")
        raise RequestError(
            HTTPStatus.UNPROCESSABLE_ENTITY, f"nothing in the text could be spoken by this voice: {reason}"
        )
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


def _audio_headers(card: dict[str, Any], sentences_: int) -> dict[str, str]:
    return {
        "X-Sample-Rate": str(card["details"]["sample_rate"]),
        "X-Voice": card["details"]["voices"][0]["id"],
        "X-Sentences": str(sentences_),
    }


@answers_model_service_errors
async def list_voices(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    return JSONResponse({"voices": await service.speech_voices()})


ROUTES = [Route("/voices", list_voices, methods=["GET"])]
