"""Phonemes from eSpeak NG without running eSpeak in this process.

eSpeak aborts its process on some texts and keeps reading state between calls, so it runs
in a sandbox child (models/sandbox.py) with a warm spare: a sentence that kills eSpeak gets
a SpeechError (unprocessable) in its slot, the other sentences of the batch are answered,
and the next call goes to the spare at once while a replacement starts.

Measured on this project's shared 2-core machine (tests/measure_sandboxes.py, p50): a
child is 22 MB resident and two are kept; a sentence's phonemes take 0.16 ms through the
pipes against 0.08 ms in process, next to 100-450 ms to synthesise its audio (the same
with either, within the noise); the sentence after a crash 0.5 ms (a warm child); a call
that has to start a child 65-240 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ErrorKind
from ..sandbox import Closing, Sandbox, SandboxError, WorkerSpec
from .text import SpeechError

# A sentence (at most text.MAX_SENTENCE_CHARS) takes eSpeak well under 10 ms; one that
# takes this long has hung it.
SENTENCE_TIMEOUT_S = 5.0


class Phonemizer(Closing):
    """eSpeak NG in a supervised child process: text -> IPA phonemes, Piper's way."""

    def __init__(
        self,
        voice: str | None = None,
        *,
        guard: bool = True,
        spares: int = 1,
        timeout_s: float = SENTENCE_TIMEOUT_S,
    ):
        """`voice` (an eSpeak voice) is loaded by each child as it starts, so that a spare
        answers its first sentence as fast as any other."""
        self.timeout_s = timeout_s
        spec = WorkerSpec("models.speech.espeak:EspeakWorker", {"guard": guard, "voice": voice})
        self.sandbox = Sandbox(spec, name="espeak", spares=spares)

    def phonemize_many(self, sentences: Sequence[str], voice: str) -> list[list[str] | SpeechError]:
        """The phonemes of each sentence, or a SpeechError (unprocessable: eSpeak crashed on
        it; timeout: it hung) in its slot."""
        results = self.sandbox.map("phonemize", sentences, voice, timeout_s=self.timeout_s)
        return [
            _speech_error(result, sentence) if isinstance(result, BaseException) else result
            for sentence, result in zip(sentences, results, strict=True)
        ]

    def phonemize(self, sentence: str, voice: str) -> list[str]:
        (result,) = self.phonemize_many([sentence], voice)
        if isinstance(result, SpeechError):
            raise result
        return result

    def close(self) -> None:
        self.sandbox.close()


def _speech_error(error: BaseException, sentence: str) -> SpeechError:
    if isinstance(error, SpeechError):
        return error
    if isinstance(error, SandboxError) and error.kind != ErrorKind.ENGINE:
        what = "crashed" if error.kind == ErrorKind.UNPROCESSABLE else "hung"
        message = (
            f"the phonemiser (eSpeak NG) {what} on the sentence {sentence[:60]!r}; "
            "rephrase it (unusual runs of punctuation or symbols)"
        )
        return SpeechError(error.kind, message, {"reason": str(error)})
    return SpeechError("engine", f"the phonemiser failed on {sentence[:60]!r}: {error}")
