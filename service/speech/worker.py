"""The speech model service: one voice per worker, adaptive batching of sentences across
requests.

Items are sentences carrying their own speed, so sentences of different requests share a
batch (the runtime groups them by speed and length). An unspeakable sentence comes back
as an error in its slot and never fails the rest of its batch.
"""

import bentoml

from ..model_service import ModelService, model_service_options
from ..model_store import resolve_source
from ..settings import get_settings
from .schemas import ItemError, SentenceAudio, SentenceItem

settings = get_settings()


@bentoml.service(**model_service_options("pais-speech", settings.speech_workers, settings))
class SpeechSynthesis(ModelService):
    def __init__(self) -> None:
        from models.speech import SpeechSynthesizer  # onnxruntime/eSpeak only in model workers

        self.runtime = SpeechSynthesizer.load(
            resolve_source("speech", settings),
            device=settings.device,
            dtype=settings.dtype,
            max_batch_size=settings.speech_max_batch_size,
        )

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.speech_max_batch_size,
        max_latency_ms=settings.batch_max_latency_ms,
    )
    def synthesize_batch(self, items: list[SentenceItem]) -> list[SentenceAudio]:
        from models.speech import SpeechError
        from models.speech.audio import to_pcm16

        self.record_batch("synthesize_batch", len(items))
        results = self.runtime.synthesize_sentences([i.text for i in items], [i.speed for i in items])
        return [
            SentenceAudio(error=ItemError(kind=r.kind, message=r.message))
            if isinstance(r, SpeechError)
            else SentenceAudio(pcm=to_pcm16(r))
            for r in results
        ]
