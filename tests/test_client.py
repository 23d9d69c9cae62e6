"""`pais.Client` and `pais.AsyncClient` against the real server (`bentoml serve`), every
method both ways. The tests of each task's routes first check that the server documents
the route in its GET /docs.json, and fail, naming the route, when it does not."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage

import pais

from .client_media import side_by_side, write_cat_video
from .images import CAT_LABELS, COFFEE_LABELS
from .servers import free_port

pytestmark = pytest.mark.server

CAR_SENTENCE = "The weather is nice and I would like to buy a new car."


class Sync:
    """Calls a method on a fresh `pais.Client`."""

    def __init__(self, url: str, **options: Any):
        self.url, self.options = url, options

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with pais.Client(self.url, **self.options) as client:
            return getattr(client, method)(*args, **kwargs)


class Async(Sync):
    """Awaits a method on a fresh `pais.AsyncClient` (in its own event loop)."""

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            async with pais.AsyncClient(self.url, **self.options) as client:
                return await getattr(client, method)(*args, **kwargs)

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def call(request, pais_server) -> Sync:
    return (Sync if request.param == "sync" else Async)(pais_server)


@pytest.fixture(scope="session")
def server_routes(pais_server) -> set[str]:
    return set(httpx.get(f"{pais_server}/docs.json", timeout=30).json()["paths"])


def needs(routes: set[str], path: str) -> None:
    """Every task's route is served now: one missing from the server's GET /docs.json is a
    failure (a task dropped from the server or its OpenAPI document), never a skip."""
    if path not in routes:
        pytest.fail(
            f"the server does not document {path} in its GET /docs.json; it documents {sorted(routes)}"
        )


# -- on main: classification, models, operations ------------------------------------


def test_classify_takes_paths_bytes_and_files(call, cat_jpeg, coffee_jpeg, tmp_path):
    cat_path = tmp_path / "cat.jpg"
    cat_path.write_bytes(cat_jpeg)
    results = call("classify", [cat_path, coffee_jpeg, io.BytesIO(cat_jpeg)], top_k=3)
    assert [type(r) for r in results] == [pais.Classification] * 3
    assert results[0].top.label in CAT_LABELS and results[2].top.label in CAT_LABELS
    assert COFFEE_LABELS & {p.label for p in results[1].predictions}
    assert all(len(r.predictions) == 3 for r in results)
    scores = [p.score for p in results[0].predictions]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert results[0].model == "efficientnet-lite0"


def test_classify_one_image_and_the_server_default(call, cat_jpeg):
    (result,) = call("classify", cat_jpeg)  # a single image is a batch of one
    assert len(result.predictions) == 5 and result.top.label in CAT_LABELS


def test_bad_image_is_a_typed_4xx_with_the_servers_detail(call, cat_jpeg):
    with pytest.raises(pais.UnsupportedMediaTypeError) as raised:
        call("classify", [cat_jpeg, b"this is text, not an image"])
    error = raised.value
    assert error.status == 415 and not error.retryable
    assert "images[1]" in error.message and "accepted" in error.message
    assert error.detail == [
        {"field": "images", "index": 1, "kind": "unsupported", "message": error.detail[0]["message"]}
    ]


def test_bad_option_is_a_400(call, cat_jpeg):
    with pytest.raises(pais.BadRequestError) as raised:
        call("classify", [cat_jpeg], top_k=0)
    assert raised.value.status == 400 and "top_k" in raised.value.message


def test_models_stats_ready_openapi(call):
    cards = call("models")
    (classification,) = [card for card in cards if card.task == "classification"]
    assert classification.name == "efficientnet-lite0" and classification.licence
    assert classification.source.startswith("packaged:") and classification.version
    assert call("ready") is True
    assert "classification" in call("stats")
    assert "/classify" in call("openapi")["paths"]


def test_unreachable_server_is_a_connection_error():
    unreachable = Sync(
        f"http://127.0.0.1:{free_port()}", retry=pais.RetryPolicy(max_retries=1, backoff_s=0.01)
    )
    with pytest.raises(pais.PaisConnectionError):
        unreachable("models")


# -- detection and video (issue 3) --------------------------------------------------


def test_detect(call, server_routes):
    needs(server_routes, "/detect")
    image, (cat_tile, coffee_tile) = side_by_side(["chelsea", "coffee"])
    (result,) = call("detect", [image], score_threshold=0.2)
    assert isinstance(result, pais.Detections) and result.width == coffee_tile[2] + 40
    for label, (x1, y1, x2, y2) in (("cat", cat_tile), ("cup", coffee_tile)):
        boxes = [d.box for d in result.detections if d.label == label]
        assert boxes, (label, result)
        centre_x, centre_y = (boxes[0][0] + boxes[0][2]) / 2, (boxes[0][1] + boxes[0][3]) / 2
        assert x1 <= centre_x <= x2 and y1 <= centre_y <= y2, (label, boxes[0])
    (only_cups,) = call("detect", [image], classes=["cup"], score_threshold=0.2)
    assert only_cups.labels() == {"cup"}


def test_detect_annotated(call, server_routes):
    needs(server_routes, "/detect/annotated")
    image, _ = side_by_side(["chelsea", "coffee"])
    annotated = call("detect_annotated", image, format="png")
    assert isinstance(annotated, pais.Image) and annotated.content_type == "image/png"
    assert annotated.extension == "png"
    assert PILImage.open(io.BytesIO(annotated.content)).size == PILImage.open(io.BytesIO(image)).size


@pytest.fixture(scope="module")
def cat_video(tmp_path_factory) -> Path:
    return write_cat_video(tmp_path_factory.mktemp("video") / "cat-then-coffee.mp4")


def test_analyze_video(call, server_routes, cat_video):
    needs(server_routes, "/analyze_video")
    result = call("analyze_video", cat_video, sample_fps=2)
    assert isinstance(result, pais.VideoAnalysis)
    assert abs(result.duration_s - 3.0) < 0.3
    assert len(result.frames) >= 5
    assert {"cat", "cup"} <= set(result.summary), result.summary
    cat, cup = result.summary["cat"], result.summary["cup"]
    assert cat.first_s < 0.6 and 1.4 <= cat.last_s < 2.1 and cat.max_count == 1
    assert 1.9 <= cup.first_s < 2.6  # within one sampling step of the cut
    assert any(label.label in CAT_LABELS for label in result.frames[0].labels)  # classification too


# -- translation (issue 4) ----------------------------------------------------------


def test_translate(call, server_routes):
    needs(server_routes, "/translate")
    result = call("translate", [CAR_SENTENCE, ""], target="es", source="en")
    assert isinstance(result, pais.Translation) and (result.source, result.target) == ("en", "es")
    assert "coche nuevo" in result.translations[0].lower() and result.translations[1] == ""
    detected = call("translate", CAR_SENTENCE, target="es")  # source "auto"
    assert detected.source == "en" and "coche" in detected.translations[0].lower()


def test_translate_unsupported_pair_is_a_4xx(call, server_routes):
    needs(server_routes, "/translate")
    with pytest.raises(pais.ClientError) as raised:
        call("translate", ["hello"], target="xx", source="en")
    assert raised.value.status in (400, 404, 422) and raised.value.message


# -- speech (issue 5) ---------------------------------------------------------------

SPEECH = "The quick brown fox jumps over the lazy dog. It was a sunny day."


def test_synthesize(call, server_routes):
    needs(server_routes, "/synthesize")
    audio = call("synthesize", SPEECH)
    assert isinstance(audio, pais.Audio) and audio.content[:4] == b"RIFF" and audio.extension == "wav"
    assert audio.sample_rate and audio.sample_rate >= 8000
    assert 0.04 * len(SPEECH) < audio.duration_s < 0.15 * len(SPEECH)
    faster = call("synthesize", SPEECH, speed=2.0)
    assert faster.duration_s < audio.duration_s


def test_synthesize_stream_sync_and_async(pais_server, server_routes):
    needs(server_routes, "/synthesize/stream")
    with pais.Client(pais_server) as client, client.synthesize_stream(SPEECH) as stream:
        chunks = list(stream)
        rate = stream.sample_rate
    assert len(chunks) >= 1 and chunks[0][:4] == b"RIFF" and rate

    async def stream_async() -> pais.Audio:
        async with pais.AsyncClient(pais_server) as client:
            return await client.synthesize_stream(SPEECH).read()

    audio = asyncio.run(stream_async())
    assert audio.content[:4] == b"RIFF" and 0.04 * len(SPEECH) < audio.duration_s < 0.15 * len(SPEECH)


def test_synthesize_stream_error_is_typed(pais_server, server_routes):
    needs(server_routes, "/synthesize/stream")
    with pais.Client(pais_server) as client, pytest.raises(pais.ClientError):
        client.synthesize_stream("", speed=9.0).open()


# -- recommendation (issue 6) -------------------------------------------------------


def test_recommend_for_a_user_a_new_user_and_a_query(call, server_routes):
    needs(server_routes, "/recommend")
    personal = call("recommend", user_id="1", k=5, exclude_seen=True)
    assert isinstance(personal, pais.Recommendations)
    assert personal.strategy == "personal" and len(personal.items) == 5
    assert all(item.item_id and item.title for item in personal.items)
    fold_in = call("recommend", liked_items=personal.item_ids()[:2], k=3)
    assert len(fold_in.items) == 3
    content = call("recommend", query="animated film for children", k=5)
    assert content.strategy == "content" and len(content.items) == 5
    with pytest.raises(ValueError, match="exactly one"):
        call("recommend", user_id="1", query="both")


def test_similar_items(call, server_routes):
    needs(server_routes, "/similar_items")
    seed = call("recommend", query="space battle science fiction", k=1).items[0].item_id
    similar = call("similar_items", seed, k=4)
    assert len(similar.items) == 4 and seed not in similar.item_ids()
    with pytest.raises(pais.ClientError) as raised:
        call("similar_items", "no-such-item-id")
    assert raised.value.status in (400, 404)
