"""Listening to synthesised speech in tests: decoding, loudness, and an offline speech
recogniser (pocketsphinx with its bundled US English model) to check what was said."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator

import numpy as np

# Sentences the recogniser hears reliably when they are spoken well.
PANGRAM = "The quick brown fox jumps over the lazy dog."
REQUEST = "Please call me tomorrow morning at seven o'clock."
# RMS of a float signal in [-1, 1] below which it counts as silence (speech is ~0.1).
SILENCE_RMS = 0.01


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """A WAV, FLAC or Ogg file -> mono float samples and the sample rate its header says."""
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def pcm_samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def recognise(samples: np.ndarray, sample_rate: int) -> str:
    """What pocketsphinx hears, lower case (its acoustic model wants 16 kHz)."""
    from pocketsphinx import Decoder
    from scipy.signal import resample_poly

    audio = resample_poly(samples.astype(np.float64), 16000, sample_rate)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder = Decoder(samprate=16000, logfn="/dev/null")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.lower() if hypothesis else ""


def words_heard(expected: str, heard: str) -> float:
    """Share of the expected sentence's distinct words that the recogniser heard."""
    words = set(re.findall(r"[a-z']+", expected.lower()))
    return len(words & set(heard.split())) / len(words)


def http_chunks(url: str, path: str, body: bytes, content_type: str = "application/json") -> Iterator[bytes]:
    """POST over a plain socket and yield the answer's HTTP/1.1 chunks as the server wrote
    them (chunked transfer encoding frames each write): what a stream sends when, in
    bytes, whatever sizes the reads happen to have. Fails on a non-200 answer."""
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(request + body)
        stream = sock.makefile("rb")
        status = stream.readline()
        if b" 200 " not in status:
            raise AssertionError(f"stream answered {status!r}: {stream.read()!r}")
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers.get("transfer-encoding") == "chunked", headers
        while size := int(stream.readline().split(b";")[0], 16):
            yield stream.read(size)
            stream.readline()  # the CRLF after each chunk
