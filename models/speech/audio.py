"""Audio as the speech service hands it out: 16-bit PCM, joined sentence by sentence,
encoded as WAV, FLAC or Ogg Vorbis, or streamed as WAV / raw PCM.

numpy and soundfile (libsndfile, bundled in its wheel) only: the HTTP entry service
encodes responses itself, off the model workers.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A pause between sentences, as a reader would make.
SENTENCE_GAP_S = 0.2
# Peak level after normalisation: Piper scales each sentence to full scale; a little
# headroom keeps lossy encoders (Vorbis) from clipping on overshoot.
PEAK = 0.9


@dataclass(frozen=True)
class AudioFormat:
    name: str
    media_type: str
    container: str  # libsndfile format
    subtype: str


FORMATS = {
    "wav": AudioFormat("wav", "audio/wav", "WAV", "PCM_16"),
    "flac": AudioFormat("flac", "audio/flac", "FLAC", "PCM_16"),
    "ogg": AudioFormat("ogg", "audio/ogg", "OGG", "VORBIS"),
}
# Formats a stream can carry: WAV with an open-ended header, or headerless PCM.
STREAM_FORMATS = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",  # signed 16-bit little-endian mono; rate in the X-Sample-Rate header
}


def to_pcm16(samples: np.ndarray, peak: float = PEAK) -> bytes:
    """Float audio -> 16-bit little-endian PCM, its peak scaled to `peak` (as Piper does per
    sentence, so quiet and loud sentences come out alike)."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    scale = peak * 32767.0 / max(top, 0.01)
    return np.clip(samples * scale, -32768, 32767).astype("<i2").tobytes()


def silence(sample_rate: int, seconds: float = SENTENCE_GAP_S) -> bytes:
    return bytes(2 * round(sample_rate * seconds))


def join_sentences(pcm_sentences: Sequence[bytes], sample_rate: int, gap_s: float = SENTENCE_GAP_S) -> bytes:
    """One PCM stream: the sentences in order with a pause between them."""
    gap = silence(sample_rate, gap_s)
    return gap.join(pcm_sentences)


def encode(pcm: bytes, sample_rate: int, format: str) -> bytes:
    """16-bit mono PCM -> a complete file in `format` (a key of FORMATS)."""
    import soundfile

    spec = FORMATS[format]
    samples = np.frombuffer(pcm, dtype="<i2")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format=spec.container, subtype=spec.subtype)
    return buffer.getvalue()


def streaming_wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A WAV header for audio of unknown length: the RIFF and data sizes are 0xFFFFFFFF,
    which players and decoders (libsndfile, ffmpeg, browsers) read as "until the end of the
    stream". PCM follows the 44 header bytes directly."""
    block_align = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


def duration_s(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / 2 / sample_rate
