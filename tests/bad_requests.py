"""Bad uploads every image endpoint must refuse the same way (the classification issue's
matrix), for the service tests to extend with their own options."""

from __future__ import annotations

import httpx

from .conftest import TEST_MAX_IMAGES, TEST_MAX_REQUEST_BYTES
from .images import encode, photo, png_bomb

CAT_JPEG = encode(photo("chelsea"), "JPEG", quality=90)

# name -> (httpx.post keyword arguments, expected status, text the error must contain)
Cases = dict[str, tuple[dict, int, str]]


def files(*items: tuple[str, bytes], field: str = "images") -> list:
    return [(field, (name, data, "application/octet-stream")) for name, data in items]


def with_option(name: str, value: str) -> dict:
    """One good image and one form option."""
    return {"files": files(("cat.jpg", CAT_JPEG)), "data": {name: value}}


def image_upload_cases() -> Cases:
    return {
        "not an image": ({"files": files(("notes.txt", b"just some text"))}, 415, "not a recognised image"),
        "empty file": ({"files": files(("empty.jpg", b""))}, 400, "empty"),
        "truncated jpeg": ({"files": files(("cut.jpg", CAT_JPEG[: len(CAT_JPEG) // 2]))}, 400, "truncated"),
        "decompression bomb": (
            {"files": files(("bomb.png", png_bomb(30000, 30000)))},
            413,
            "900000000 pixels",
        ),
        "misspelt field": (
            {"files": [("image", ("x.jpg", CAT_JPEG))]},
            400,
            "unexpected field(s): image",
        ),
        "text instead of a file": (
            {"data": {"images": "http://example.com/cat.jpg"}},
            400,
            "uploaded as files",
        ),
        "json body": ({"json": {}}, 415, "multipart/form-data"),
        "malformed multipart": (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
            400,
            "malformed multipart body",
        ),
        "body over the byte limit": (
            {"files": files(("big.png", b"\x89PNG" + b"\0" * TEST_MAX_REQUEST_BYTES))},
            413,
            "PAIS_MAX_REQUEST_BYTES",
        ),
        "too many images": (
            {"files": files(*[("cat.jpg", CAT_JPEG)] * (TEST_MAX_IMAGES + 1))},
            413,
            f"at most {TEST_MAX_IMAGES}",
        ),
        "one bad among good": (
            {"files": files(("a.jpg", CAT_JPEG), ("b.txt", b"text"), ("c.jpg", CAT_JPEG))},
            415,
            "images[1]",
        ),
    }


def assert_error(response: httpx.Response, status: int, text: str) -> dict:
    """The status, and PAIS's error shape: {"error": str, "detail"?: [..]} naming the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) <= {"error", "detail"} and isinstance(body["error"], str), body
    assert text in body["error"], body
    return body


def assert_clear_4xx(response: httpx.Response, status: int, text: str) -> None:
    """The answer has the status and the project's error shape, naming what was wrong."""
    assert_error(response, status, text)
