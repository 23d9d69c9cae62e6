"""POST /classify, /detect, /detect/annotated and /analyze_video through the in-process
app (tests/inprocess.py) on the real models: one real answer per route, then how bodies
are read (multipart fields, form lists, files vs values) and the error answers. The
`bentoml serve` tests (test_service_*.py) run the same routes end to end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from .bad_requests import assert_error
from .conftest import TEST_MAX_IMAGES, TEST_MAX_VIDEO_DURATION_S
from .images import (
    CAT_LABELS,
    COFFEE_LABELS,
    assert_photos_in_their_tiles,
    composite,
    encode,
    photo,
    png_bomb,
)
from .inprocess import InProcessPais
from .videos import Appearance, scripted_video

CAT = encode(photo("chelsea"), "JPEG", quality=90)
COFFEE = encode(photo("coffee"), "PNG")
ORDER = ["astronaut", "chelsea", "coffee"]
SCENE, TILES = composite(ORDER)
SCENE_JPEG = encode(SCENE, "JPEG", quality=95)
CAT_ALONE = encode(composite(["chelsea"], tile=200, gap=100)[0], "PNG")  # what the detector sees as a cat


def files(*items: tuple[str, bytes], field: str = "images") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name, data, "application/octet-stream")) for name, data in items]


@pytest.fixture(scope="module")
def client(pais_app: InProcessPais) -> httpx.Client:
    pais_app.require("classification", "detection", "video")
    return pais_app.client


def found(result: dict[str, Any]) -> list[tuple[str, tuple[float, ...]]]:
    return [(d["label"], tuple(d["box"])) for d in result["detections"]]


def test_classify_knows_the_photos_in_order(client):
    response = client.post(
        "/classify", files=files(("coffee.png", COFFEE), ("cat.jpg", CAT)), data={"top_k": "3"}
    )
    assert response.status_code == 200, response.text
    coffee, cat = response.json()
    assert cat["model"] == "efficientnet-lite0"
    assert cat["predictions"][0]["label"] in CAT_LABELS
    assert COFFEE_LABELS & {p["label"] for p in coffee["predictions"]}
    assert len(cat["predictions"]) == 3 and set(cat["predictions"][0]) == {"label", "score", "index"}
    scores = [p["score"] for p in cat["predictions"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_detect_finds_each_photo_in_its_tile(client):
    response = client.post("/detect", files=files(("scene.jpg", SCENE_JPEG)))
    assert response.status_code == 200, response.text
    (result,) = response.json()
    assert (result["model"], result["width"], result["height"]) == ("yolov3-tiny", *SCENE.shape[1::-1])
    assert_photos_in_their_tiles(found(result), ORDER, TILES)


@pytest.mark.parametrize(
    "form",
    [
        {"classes": "cup, Cat"},  # comma-separated, any case
        {"classes": '["cup", "cat"]'},  # a JSON list
        {"classes": ["cup", "cat"]},  # the field once per class, as OpenAPI clients send arrays
    ],
    ids=["commas", "json-list", "repeated"],
)
def test_detect_classes_in_every_form_spelling(client, form):
    response = client.post("/detect", files=files(("scene.jpg", SCENE_JPEG)), data=form)
    assert response.status_code == 200, response.text
    assert {label for label, _ in found(response.json()[0])} == {"cat", "cup"}


def test_detect_options_apply_to_every_image(client):
    response = client.post(
        "/detect",
        files=files(("scene.jpg", SCENE_JPEG), ("cat.png", CAT_ALONE)),
        data={"max_detections": "1", "score_threshold": "0.3"},
    )
    scene, cat = response.json()
    assert len(scene["detections"]) == 1 and [label for label, _ in found(cat)] == ["cat"]
    assert all(d["score"] >= 0.3 for d in scene["detections"])
    strict = client.post("/detect", files=files(("scene.jpg", SCENE_JPEG)), data={"score_threshold": "1"})
    assert strict.status_code == 200 and strict.json()[0]["detections"] == []


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_annotated_image_has_the_boxes_drawn(client, fmt):
    response = client.post(
        "/detect/annotated", files=files(("scene.jpg", SCENE_JPEG), field="image"), data={"format": fmt}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/{fmt}"
    drawn = Image.open(io.BytesIO(response.content))
    assert drawn.format == fmt.upper() and drawn.size == SCENE.shape[1::-1]
    # the photo is unchanged outside the boxes and changed on them: compare with the input
    original = Image.open(io.BytesIO(SCENE_JPEG)).convert("RGB")
    difference = sum(
        abs(a - b)
        for a, b in zip(drawn.convert("RGB").tobytes()[::97], original.tobytes()[::97], strict=True)
    )
    assert difference > 0


@pytest.fixture(scope="module")
def cat_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """4 s of white with the cat on screen from 1 s to 3 s."""
    path = tmp_path_factory.mktemp("video") / "cat.mp4"
    return scripted_video(path, [Appearance("chelsea", 1.0, 3.0, (100, 100, 300, 200))], 4.0).read_bytes()


def test_analyze_video_summarises_when_the_cat_is_seen(client, cat_clip):
    response = client.post(
        "/analyze_video",
        files=files(("cat.mp4", cat_clip), field="video"),
        data={"sample_fps": "2", "tasks": "detect"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["duration_s"] == pytest.approx(4.0, abs=0.2) and (body["width"], body["height"]) == (640, 480)
    assert body["models"] == {"detect": "yolov3-tiny"}
    assert len(body["frames"]) == 8 and all(frame["labels"] == [] for frame in body["frames"])
    assert body["summary"]["cat"]["first_s"] == 1.0 and body["summary"]["cat"]["last_s"] == 2.5
    classified = client.post(
        "/analyze_video",
        files=files(("cat.mp4", cat_clip), field="video"),
        data={"sample_fps": "1", "tasks": "classify", "top_k": "2"},
    )
    assert classified.status_code == 200, classified.text
    frames = classified.json()["frames"]
    assert [len(frame["labels"]) for frame in frames] == [2, 2, 2, 2]
    assert frames[1]["labels"][0]["label"] in CAT_LABELS and frames[1]["detections"] == []


def test_stats_count_the_batches_each_runner_formed(client):
    before = client.get("/stats").json()["classification"]
    assert before["served_in"] == "entry"
    client.post("/classify", files=files(("a.jpg", CAT), ("b.png", COFFEE)))
    after = client.get("/stats").json()["classification"]["predict_batch"]
    formed = {size: count - before["predict_batch"].get(size, 0) for size, count in after.items()}
    assert sum(int(size) * count for size, count in formed.items()) == 2


# name -> (route, httpx.post keyword arguments, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    "no images": ("/classify", {"data": {"top_k": "2"}}, 400, "no images sent; send one or more files"),
    "urlencoded form": (
        "/classify",
        {"content": b"top_k=2", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        400,
        "no images sent",
    ),
    "json body": ("/classify", {"json": {"images": []}}, 415, "/classify takes multipart/form-data bodies"),
    "text body": (
        "/detect",
        {"content": b"x", "headers": {"content-type": "text/plain"}},
        415,
        "not 'text/plain'",
    ),
    "images as text": (
        "/classify",
        {"data": {"images": "http://example.com/cat.jpg"}},
        400,
        "field 'images' must be uploaded as files",
    ),
    "option as a file": (
        "/classify",
        {"files": [*files(("a.jpg", CAT)), ("top_k", ("k.txt", b"2", "text/plain"))]},
        400,
        "field 'top_k' must be a plain form value, not a file",
    ),
    "option twice": (
        "/classify",
        {"files": files(("a.jpg", CAT)), "data": {"top_k": ["2", "3"]}},
        400,
        "field 'top_k' was sent 2 times; send it once",
    ),
    "option out of range": (
        "/classify",
        {"files": files(("a.jpg", CAT)), "data": {"top_k": "0"}},
        400,
        "top_k",
    ),
    "option not a number": (
        "/classify",
        {"files": files(("a.jpg", CAT)), "data": {"top_k": "abc"}},
        400,
        "top_k: Input should be a valid integer",
    ),
    "unknown field": (
        "/classify",
        {"files": files(("a.jpg", CAT)), "data": {"topk": "1"}},
        400,
        "unexpected field(s): topk; this endpoint takes: images, top_k",
    ),
    "misspelt file field": (
        "/classify",
        {"files": files(("a.jpg", CAT), field="image")},
        400,
        "unexpected field(s): image",
    ),
    "too many images": (
        "/classify",
        {"files": files(*[("a.jpg", CAT)] * (TEST_MAX_IMAGES + 1))},
        413,
        f"images: {TEST_MAX_IMAGES + 1} images; at most {TEST_MAX_IMAGES} (PAIS_CLASSIFICATION_MAX_IMAGES)",
    ),
    "too many images to detect": (
        "/detect",
        {"files": files(*[("a.jpg", CAT)] * (TEST_MAX_IMAGES + 1))},
        413,
        "(PAIS_DETECTION_MAX_IMAGES)",
    ),
    "bad images among good": (
        "/classify",
        {"files": files(("a.jpg", CAT), ("b.txt", b"text"), ("c.jpg", b""))},
        415,
        "images[1]: not a recognised image; accepted: JPEG, PNG, WebP or GIF (first frame); "
        "images[2]: the file is empty",
    ),
    "truncated jpeg": ("/classify", {"files": files(("cut.jpg", CAT[: len(CAT) // 2]))}, 400, "truncated"),
    "decompression bomb": (
        "/detect",
        {"files": files(("bomb.png", png_bomb()))},
        413,
        "images[0]: image has 900000000 pixels; the limit is 50000000 pixels",
    ),
    "malformed multipart": (
        "/classify",
        {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
        400,
        "malformed multipart body",
    ),
    "unknown class": (
        "/detect",
        {"files": files(("a.jpg", CAT)), "data": {"classes": "cat,unicorn"}},
        400,
        "unknown class(es) 'unicorn'; this model detects: person, bicycle",
    ),
    "threshold over 1": (
        "/detect",
        {"files": files(("a.jpg", CAT)), "data": {"score_threshold": "2"}},
        400,
        "score_threshold: Input should be less than or equal to 1",
    ),
    "two files for one": (
        "/detect/annotated",
        {"files": files(("a.jpg", CAT), ("b.jpg", CAT), field="image")},
        400,
        "field 'image' takes one file; 2 were sent",
    ),
    "annotated format": (
        "/detect/annotated",
        {"files": files(("a.jpg", CAT), field="image"), "data": {"format": "gif"}},
        400,
        "format: Input should be 'jpeg' or 'png'",
    ),
    "annotated not an image": (
        "/detect/annotated",
        {"files": files(("a.txt", b"text"), field="image")},
        415,
        "not a recognised image; accepted: JPEG, PNG, WebP or GIF",
    ),
    "no video": ("/analyze_video", {"data": {"tasks": "detect"}}, 400, "no video sent; send a file"),
    "not a video": (
        "/analyze_video",
        {"files": files(("a.mp4", b"not a video"), field="video")},
        415,
        "video: not a recognised video container",
    ),
    "unknown video task": (
        "/analyze_video",
        {
            "files": files(("a.mp4", b"\0\0\0\x18ftypmp42" + bytes(100)), field="video"),
            "data": {"tasks": "paint"},
        },
        400,
        "tasks.0: Input should be 'detect' or 'classify'",
    ),
    "sample_fps zero": (
        "/analyze_video",
        {
            "files": files(("a.mp4", b"\0\0\0\x18ftypmp42" + bytes(100)), field="video"),
            "data": {"sample_fps": "0"},
        },
        400,
        "sample_fps: Input should be greater than 0",
    ),
}


@pytest.mark.parametrize(
    ("route", "kwargs", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
def test_bad_input_is_a_clear_4xx(client, route, kwargs, status, text):
    assert_error(client.post(route, **kwargs), status, text)


def test_each_bad_image_is_named_in_the_detail(client):
    body = assert_error(
        client.post("/classify", files=files(("a.jpg", CAT), ("b.txt", b"text"), ("c.jpg", b""))),
        415,
        "images[1]",
    )
    assert [(d["index"], d["kind"]) for d in body["detail"]] == [(1, "unsupported"), (2, "empty")]


def test_a_video_over_the_duration_limit(client, tmp_path: Path):
    long_clip = scripted_video(tmp_path / "long.avi", [], TEST_MAX_VIDEO_DURATION_S + 2, fps=2, size=(64, 48))
    response = client.post("/analyze_video", files=files(("long.avi", long_clip.read_bytes()), field="video"))
    body = assert_error(response, 413, f"video is 10.0 s long; the limit is {TEST_MAX_VIDEO_DURATION_S} s")
    assert body["detail"][0]["kind"] == "too_large"
