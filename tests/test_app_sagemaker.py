"""SageMaker's /invocations decoding, in-process (tests/inprocess.py): raw file bodies,
custom attributes, JSON with base64, REST bodies, Batch Transform's JSON Lines, and the
error answers of each; on the real runtimes. tests/test_sagemaker.py runs the container's
entrypoint end to end; this file covers the decoder thoroughly and fast."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image

from service.sagemaker import BatchSettings, SageMakerRoutes

from .bad_requests import assert_error
from .conftest import TEST_MAX_REQUEST_BYTES
from .images import CAT_LABELS, COFFEE_LABELS, composite, encode, photo
from .inprocess import InProcessPais, settings_for

CAT = encode(photo("chelsea"), "JPEG", quality=90)
COFFEE = encode(photo("coffee"), "PNG")
SCENE = encode(composite(["astronaut", "chelsea", "coffee"])[0], "JPEG", quality=95)
BATCH_PAYLOAD_BYTES = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def invoke(
    client: httpx.Client, body: bytes, content_type: str, attributes: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    return client.post("/invocations", content=body, headers=headers)


def labels(result: dict[str, Any], top: int = 3) -> set[str]:
    return {p["label"] for p in result["predictions"][:top]}


@pytest.fixture(scope="module")
def app(pais_app: InProcessPais) -> InProcessPais:
    pais_app.require("classification", "detection", "translation")
    return pais_app


@pytest.fixture(scope="module")
def batch(app: InProcessPais) -> httpx.Client:
    """The same runners behind SageMakerRoutes configured as Batch Transform configures a
    container (SAGEMAKER_BATCH=true, a 1 MB payload, 4 concurrent transforms)."""
    settings = BatchSettings(
        enabled=True,
        max_payload_bytes=BATCH_PAYLOAD_BYTES,
        strategy="MULTI_RECORD",
        max_concurrent_transforms=4,
    )
    return app.with_routes(SageMakerRoutes(app.served, settings).routes())


def test_raw_image_bodies_go_to_the_default_operation(app):
    for body, media, expected in (
        (CAT, "image/jpeg", CAT_LABELS),
        (COFFEE, "image/png", COFFEE_LABELS),
        (CAT, "image/jpeg; charset=binary", CAT_LABELS),  # parameters of the media type are ignored
    ):
        response = invoke(app.client, body, media)
        assert response.status_code == 200, response.text
        (result,) = response.json()
        assert expected & labels(result), (media, result)
        assert len(result["predictions"]) == 5  # classify's default top_k


def test_custom_attributes_choose_the_operation_and_carry_its_options(app):
    two = invoke(app.client, CAT, "image/jpeg", "task=classify;top_k=2")
    assert two.status_code == 200 and len(two.json()[0]["predictions"]) == 2
    cups = invoke(app.client, SCENE, "image/jpeg", "task=detect;classes=cup")
    assert cups.status_code == 200, cups.text
    assert {d["label"] for d in cups.json()[0]["detections"]} == {"cup"}
    listed = invoke(app.client, SCENE, "image/jpeg", "task=detect;classes=cup,person;max_detections=1")
    assert len(listed.json()[0]["detections"]) == 1
    annotated = invoke(app.client, SCENE, "image/jpeg", "task=detect_annotated;format=png")
    assert annotated.status_code == 200 and annotated.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(annotated.content)).size == Image.open(io.BytesIO(SCENE)).size


def test_json_bodies_with_base64_files(app):
    as_list = invoke(
        app.client, json.dumps({"images": [b64(CAT), b64(COFFEE)], "top_k": 3}).encode(), "application/json"
    )
    assert as_list.status_code == 200, as_list.text
    cat, coffee = as_list.json()
    assert CAT_LABELS & labels(cat) and COFFEE_LABELS & labels(coffee)
    one = invoke(app.client, json.dumps({"images": b64(CAT), "top_k": 1}).encode(), "application/json")
    assert one.status_code == 200 and one.json()[0]["predictions"][0]["label"] in CAT_LABELS
    # the body's own task wins over the custom attribute's
    named = json.dumps({"task": "classify", "images": [b64(CAT)], "top_k": 2}).encode()
    response = invoke(app.client, named, "application/json", "task=paint")
    assert response.status_code == 200 and len(response.json()[0]["predictions"]) == 2
    # a JSON body without a Content-Type is still read as JSON
    untyped = invoke(app.client, json.dumps({"images": [b64(CAT)]}).encode(), "")
    assert untyped.status_code == 200 and CAT_LABELS & labels(untyped.json()[0])
    # an annotated image as JSON: one base64 file
    annotated = json.dumps({"task": "detect_annotated", "image": b64(SCENE)}).encode()
    drawn = invoke(app.client, annotated, "application/json")
    assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/jpeg"
    assert drawn.content[:2] == b"\xff\xd8"


def test_rest_bodies_as_they_are(app):
    multipart = app.client.post(
        "/invocations",
        files=[("images", ("a.jpg", CAT, "image/jpeg")), ("images", ("b.png", COFFEE, "image/png"))],
        data={"top_k": "1"},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "task=classify"},
    )
    assert multipart.status_code == 200, multipart.text
    cat, coffee = multipart.json()
    assert cat["predictions"][0]["label"] in CAT_LABELS and len(coffee["predictions"]) == 1
    text = {"texts": ["I would like to buy a new car."], "source": "en", "target": "es"}
    translated = invoke(app.client, json.dumps(text).encode(), "application/json", "task=translate")
    assert translated.status_code == 200, translated.text
    assert "coche nuevo" in translated.json()["translations"][0]


def test_the_default_operation_can_be_configured(app):
    from service.context import Served

    settings = settings_for(app.settings.tasks, PAIS_SAGEMAKER_DEFAULT_TASK="translate")
    routes = SageMakerRoutes(Served(settings, app.served.registry, app.served.runners))
    client = app.with_routes(routes.routes())
    body = json.dumps({"texts": ["The dog eats."], "source": "en", "target": "es"}).encode()
    response = invoke(client, body, "application/json")
    assert response.status_code == 200 and "perro" in response.json()["translations"][0]
    with pytest.raises(
        ValueError, match="PAIS_SAGEMAKER_DEFAULT_TASK='paint' is not an operation of the tasks served"
    ):
        SageMakerRoutes(
            Served(settings_for("all", PAIS_SAGEMAKER_DEFAULT_TASK="paint"), app.served.registry, {})
        )


@pytest.mark.parametrize(
    ("body", "media", "attributes", "status", "text"),
    [
        (b"hello", "text/plain", None, 415, "operation 'classify' accepts image/jpeg, image/png"),
        (CAT, "", None, 415, "got 'no Content-Type'"),
        (b"not an image", "image/jpeg", None, 415, "images[0]: not a recognised image"),
        (CAT, "image/jpeg", "task=paint", 404, "unknown task 'paint'; tasks: classify, embed, detect"),
        (CAT, "image/jpeg", "task=classify;tpo_k=2", 400, "unexpected field(s): tpo_k"),
        (CAT, "image/jpeg", "top_k=many", 400, "top_k"),
        (CAT, "image/jpeg", "top_k=0", 400, "top_k"),
        (CAT, "video/mp4", "task=classify", 415, "accepts image/jpeg"),
        (CAT, "image/jpeg", "task=translate", 415, "operation 'translate' accepts application/json"),
        (b'{"images": "@@@"}', "application/json", None, 400, "images is not valid base64"),
        (b'{"images": ["AAAA", 5]}', "application/json", None, 400, "images[1] must be a base64 string"),
        (b'{"top_k": 3}', "application/json", None, 400, "no images sent"),
        (b"[1, 2]", "application/json", None, 400, "body must be a JSON object"),
        (b"{", "application/json", None, 400, "body is not valid JSON"),
        (b"", "application/json", None, 400, "body is not valid JSON"),
        (b'{"images": [' * 40 + b"]" * 40 + b"}", "application/json", None, 400, "(PAIS_MAX_JSON_DEPTH)"),
        (b'{"images": ["\xff"]}', "application/json", None, 400, "not UTF-8"),
        (b'{"texts": ["a"]}', "application/json", "task=translate", 400, "target"),
        (
            b"\0" * (TEST_MAX_REQUEST_BYTES + 1),
            "image/jpeg",
            None,
            413,
            f"the limit is {TEST_MAX_REQUEST_BYTES} bytes (PAIS_MAX_REQUEST_BYTES)",
        ),
    ],
    ids=[
        "text",
        "no-content-type",
        "not-an-image",
        "unknown-task",
        "misspelt-option",
        "option-not-a-number",
        "option-out-of-range",
        "media-type-of-no-file-field",
        "file-for-a-json-operation",
        "bad-base64",
        "base64-not-a-string",
        "no-images",
        "json-array",
        "broken-json",
        "empty-json",
        "too-deep",
        "not-utf8",
        "missing-target",
        "too-large",
    ],
)
def test_bad_invocations_are_4xx_in_the_error_shape(app, body, media, attributes, status, text):
    assert_error(invoke(app.client, body, media, attributes), status, text)


def test_batch_lines_in_order_with_error_lines(batch):
    records = [
        json.dumps({"images": b64(CAT), "top_k": 1}),
        "this is not json",
        json.dumps({"images": b64(COFFEE), "top_k": 2}),
        json.dumps({"images": b64(b"text, not an image")}),
        "",
        json.dumps({"task": "paint", "images": "AAAA"}),
        json.dumps({"images": b64(CAT), "task": "classify"}),
        json.dumps({"task": "translate", "texts": ["The cat sleeps."], "source": "en", "target": "es"}),
        json.dumps({"task": "translate", "texts": ["hello"], "source": "en", "target": "fr"}),
        json.dumps([1, 2]),
        json.dumps({"images": b64(CAT), "top_k": 0}),
    ]
    response = invoke(batch, ("\n".join(records) + "\n").encode(), "application/jsonlines")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jsonlines"
    out = [json.loads(line) for line in response.text.splitlines()]
    assert len(out) == len(records)  # one line per record, the final newline starts none
    assert out[0][0]["predictions"][0]["label"] in CAT_LABELS and len(out[0][0]["predictions"]) == 1
    assert out[1]["status"] == 400 and "record is not valid JSON" in out[1]["error"]
    assert COFFEE_LABELS & labels(out[2][0]) and len(out[2][0]["predictions"]) == 2
    assert out[3]["status"] == 415 and "not a recognised image" in out[3]["error"]
    assert out[3]["detail"][0]["kind"] == "unsupported"
    assert out[4]["status"] == 400 and "empty record" in out[4]["error"]
    assert out[5]["status"] == 404 and "unknown task 'paint'" in out[5]["error"]
    assert out[6][0]["predictions"][0]["label"] in CAT_LABELS
    assert "gato" in out[7]["translations"][0]
    assert out[8]["status"] == 422 and "supported pairs" in out[8]["error"]
    assert out[9]["status"] == 400 and "record must be a JSON object" in out[9]["error"]
    assert out[10]["status"] == 400 and "top_k" in out[10]["error"]


def test_batch_records_keep_their_order(batch):
    # thumbnails, so that 30 records fit the 1 MB payload
    small_cat = encode(Image.fromarray(photo("chelsea")).resize((300, 200)), "JPEG", quality=85)
    small_coffee = encode(Image.fromarray(photo("coffee")).resize((300, 200)), "JPEG", quality=85)
    images = [small_cat if i % 3 else small_coffee for i in range(30)]
    body = "\n".join(json.dumps({"images": b64(image), "top_k": 3}) for image in images)
    response = invoke(batch, body.encode(), "application/jsonlines")
    assert response.status_code == 200, response.text[:300]
    out = [json.loads(line) for line in response.text.splitlines()]
    assert len(out) == 30
    for image, result in zip(images, out, strict=True):
        expected = CAT_LABELS if image is small_cat else COFFEE_LABELS
        assert expected & labels(result[0]), result


def test_batch_binary_answers_are_base64_lines(batch, app):
    app.require("speech")
    records = [
        json.dumps({"task": "synthesize", "text": "Hello there."}),
        json.dumps({"task": "detect_annotated", "image": b64(SCENE), "format": "png"}),
    ]
    response = invoke(batch, "\n".join(records).encode(), "application/x-ndjson")
    assert response.status_code == 200, response.text[:300]
    speech, drawn = (json.loads(line) for line in response.text.splitlines())
    assert speech["content_type"] == "audio/wav" and base64.b64decode(speech["base64"])[:4] == b"RIFF"
    assert drawn["content_type"] == "image/png" and base64.b64decode(drawn["base64"])[:4] == b"\x89PNG"


def test_batch_execution_parameters_payload_limit_and_raw_records(batch):
    assert batch.get("/execution-parameters").json() == {
        "MaxConcurrentTransforms": 4,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 1,
    }
    too_big = invoke(batch, b'{"images": "' + b"A" * BATCH_PAYLOAD_BYTES + b'"}', "application/jsonlines")
    assert_error(too_big, 413, f"the limit is {BATCH_PAYLOAD_BYTES} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
    # a raw record (SplitType None) is one call answered like real time
    raw = invoke(batch, CAT, "image/jpeg")
    assert raw.status_code == 200 and raw.json()[0]["predictions"][0]["label"] in CAT_LABELS
    # so is a body that is not JSON Lines
    multipart = batch.post("/invocations", files=[("images", ("a.jpg", CAT, "image/jpeg"))])
    assert multipart.status_code == 200 and len(multipart.json()) == 1


def test_batch_settings_from_the_environment():
    assert BatchSettings.from_env({}) == BatchSettings(False, 6 * 1024 * 1024, "MULTI_RECORD", 1)
    configured = BatchSettings.from_env(
        {
            "SAGEMAKER_BATCH": "TRUE",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.5",
            "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "8",
        }
    )
    assert configured == BatchSettings(True, 512 * 1024, "SINGLE_RECORD", 8)


class Overloaded:
    """Stands for a translation runner at capacity (service.runners.Unavailable: 503) for
    its first `refusals` calls, then answering: the overload path, which no real runtime
    here can be driven into on demand."""

    task = "translation"
    where = "entry"

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.calls = 0

    async def ready(self) -> bool:
        return True

    async def predict(self, items: list[Any]) -> list[Any]:
        from models.translation import Translation
        from service.runners import Unavailable

        self.calls += 1
        if self.calls <= self.refusals:
            raise Unavailable("the translation model is at capacity; retry shortly")
        return [
            Translation("fake", item.source, item.target, [], [t.upper() for t in item.texts])
            for item in items
        ]


@pytest.mark.parametrize(("refusals", "status"), [(2, 200), (3, 503)], ids=["retried", "given-up"])
def test_batch_records_refused_for_overload_are_retried_then_the_batch_is(monkeypatch, refusals, status):
    """A record refused for overload is retried with backoff; one still refused fails the
    whole mini-batch with a 503 (SageMaker retries it), never an error line: the record
    was fine."""
    import service.sagemaker

    from .inprocess import serving

    monkeypatch.setattr(service.sagemaker, "RETRY_DELAYS_S", (0.0, 0.0))  # three tries, no waiting
    runner = Overloaded(refusals)
    settings = BatchSettings(True, BATCH_PAYLOAD_BYTES, "MULTI_RECORD", 1)
    with serving(settings_for("translation"), {"translation": runner}) as app:
        client = app.with_routes(SageMakerRoutes(app.served, settings).routes())
        record = json.dumps({"texts": ["hello"], "source": "en", "target": "es"})
        response = invoke(client, record.encode(), "application/jsonlines")
    assert runner.calls == 3
    if status == 200:
        assert response.status_code == 200 and json.loads(response.text)["translations"] == ["HELLO"]
    else:
        assert_error(response, 503, "1 of 1 records were refused for overload; retry")
        assert response.headers["retry-after"] == "1"
