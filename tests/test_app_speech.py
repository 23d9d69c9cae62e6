"""POST /synthesize, POST /synthesize/stream and GET /voices through the in-process app
(tests/inprocess.py) on the real voice: audio that decodes, at the declared rate, as long
as the text needs; the stream's framing; and the error answers. Hearing what was said
(pocketsphinx) and the stream's timing are the `bentoml serve` tests' part."""

from __future__ import annotations

import io
import wave
from typing import Any

import httpx
import pytest

from .bad_requests import assert_error
from .conftest import TEST_MAX_SPEECH_CHARS
from .inprocess import InProcessPais
from .speech import SILENCE_RMS, decode, pcm_samples, rms

TWO_SENTENCES = "The weather is lovely today. Shall we walk along the river after lunch?"
RATE = 22050
WAV_HEADER_BYTES = 44


@pytest.fixture(scope="module")
def client(pais_app: InProcessPais) -> httpx.Client:
    pais_app.require("speech")
    return pais_app.client


def plausible_seconds(text: str, seconds: float) -> bool:
    """Speech at a normal pace: 40 to 150 ms a character (this voice reads ~70)."""
    return 0.04 * len(text) <= seconds <= 0.15 * len(text)


def test_synthesize_gives_a_wav_of_speech_as_long_as_the_text_needs(client):
    response = client.post("/synthesize", json={"text": TWO_SENTENCES})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == str(RATE) and response.headers["x-sentences"] == "2"
    assert response.headers["x-voice"] == "en_US-joe-medium"
    assert response.headers["content-disposition"] == 'inline; filename="speech.wav"'
    samples, rate = decode(response.content)
    seconds = len(samples) / rate
    assert rate == RATE and plausible_seconds(TWO_SENTENCES, seconds), seconds
    assert abs(seconds - float(response.headers["x-audio-duration"])) < 0.01
    assert rms(samples) > SILENCE_RMS


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"), [("flac", "audio/flac", b"fLaC"), ("ogg", "audio/ogg", b"OggS")]
)
def test_other_file_formats(client, fmt, media_type, magic):
    response = client.post("/synthesize", json={"text": "Hello there.", "format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type and response.content[:4] == magic
    samples, rate = decode(response.content)
    assert rate == RATE and rms(samples) > SILENCE_RMS


def test_speed_changes_the_length_of_the_audio(client):
    seconds = {}
    for speed in (1.0, 2.0):
        response = client.post("/synthesize", json={"text": TWO_SENTENCES, "speed": speed})
        assert response.status_code == 200, response.text
        seconds[speed] = float(response.headers["x-audio-duration"])
    assert seconds[2.0] < 0.75 * seconds[1.0]


def test_the_wav_stream_is_a_header_of_open_length_then_pcm(client):
    text = "One sentence here. Another one there. And a third to end."
    response = client.post("/synthesize/stream", json={"text": text})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav" and response.headers["x-sentences"] == "3"
    assert (response.headers["x-sample-format"], response.headers["x-channels"]) == ("s16le", "1")
    header = response.content[:WAV_HEADER_BYTES]
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt " and header[36:40] == b"data"
    with wave.open(io.BytesIO(header + b"\0\0")) as parsed:  # the header alone is a valid WAV start
        assert (parsed.getframerate(), parsed.getnchannels(), parsed.getsampwidth()) == (RATE, 1, 2)
    pcm = response.content[WAV_HEADER_BYTES:]
    assert len(pcm) % 2 == 0 and plausible_seconds(text, len(pcm) / 2 / RATE)
    assert rms(pcm_samples(pcm)) > SILENCE_RMS


def test_the_raw_pcm_stream(client):
    response = client.post("/synthesize/stream", json={"text": "Hello there.", "format": "pcm"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/pcm" and response.content[:4] != b"RIFF"
    assert len(response.content) % 2 == 0 and plausible_seconds(
        "Hello there.", len(response.content) / 2 / RATE
    )
    assert rms(pcm_samples(response.content)) > SILENCE_RMS


def test_voices_and_naming_one(client):
    (voice,) = client.get("/voices").json()["voices"]
    assert (voice["id"], voice["language"], voice["sample_rate"]) == ("en_US-joe-medium", "en-US", RATE)
    assert voice["default"] is True and voice["licence"] and voice["origin"]
    assert set(voice["formats"]) == {"wav", "flac", "ogg"} and set(voice["stream_formats"]) == {"wav", "pcm"}
    assert voice["speed"][0] < 1 < voice["speed"][1]
    named = client.post("/synthesize", json={"text": "Hi.", "voice": "EN_US-JOE-MEDIUM"})
    assert named.status_code == 200 and named.headers["x-voice"] == "en_US-joe-medium"


# name -> (route, JSON body, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[str, Any, int, str]] = {
    "empty text": ("/synthesize", {"text": ""}, 400, "text: text is empty; send the words to speak"),
    "blank text": ("/synthesize/stream", {"text": " \n "}, 400, "text is empty"),
    "emoji only": ("/synthesize", {"text": "😀 🎉 !!!"}, 422, "text has nothing speakable"),
    "text too long": (
        "/synthesize",
        {"text": "a" * (TEST_MAX_SPEECH_CHARS + 1)},
        413,
        f"text: {TEST_MAX_SPEECH_CHARS + 1} characters; at most {TEST_MAX_SPEECH_CHARS} "
        "(PAIS_SPEECH_MAX_CHARS)",
    ),
    "stream text too long": (
        "/synthesize/stream",
        {"text": "a" * (TEST_MAX_SPEECH_CHARS + 1)},
        413,
        "(PAIS_SPEECH_MAX_CHARS)",
    ),
    "speed too fast": (
        "/synthesize",
        {"text": "Hi.", "speed": 9},
        400,
        "speed: Input should be less than or equal",
    ),
    "unknown format": ("/synthesize", {"text": "Hi.", "format": "mp3"}, 400, "'wav', 'flac' or 'ogg'"),
    "file format on the stream": (
        "/synthesize/stream",
        {"text": "Hi.", "format": "ogg"},
        400,
        "'wav' or 'pcm'",
    ),
    "unknown voice": (
        "/synthesize",
        {"text": "Hi.", "voice": "bob"},
        400,
        "unknown voice 'bob'; voices: en_US-joe-medium (GET /voices)",
    ),
    "misspelt option": ("/synthesize", {"text": "Hi.", "sped": 2}, 400, "unexpected field(s): sped"),
    "text not a string": ("/synthesize", {"text": 5}, 400, "text: Input should be a valid string"),
}


@pytest.mark.parametrize(("route", "body", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx(client, route, body, status, text):
    assert_error(client.post(route, json=body), status, text)


def test_a_text_of_only_unspeakable_sentences_is_422_but_one_bad_sentence_is_skipped(client):
    assert_error(client.post("/synthesize", json={"text": "漢字"}), 422, "nothing speakable")
    mixed = client.post("/synthesize", json={"text": "Hello there. 😀 🎉. Goodbye now."})
    assert mixed.status_code == 200, mixed.text
    assert rms(decode(mixed.content)[0]) > SILENCE_RMS
