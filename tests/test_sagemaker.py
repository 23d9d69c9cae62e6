"""SageMaker's container contract, on the container's own entrypoint run as a process
(no Docker engine here): /ping, /invocations routing and bodies, Batch Transform's line
contract, payload limits, model artifacts from an /opt/ml/model-like directory, SIGTERM."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from .bad_requests import assert_error
from .images import CAT_LABELS, COFFEE_LABELS, encode, photo
from .servers import free_port, running_server, service_env

pytestmark = pytest.mark.server
REALTIME_MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An /opt/ml/model as `deploy` packs it: one PAIS snapshot directory per task."""
    from models.classification import ImageClassifier

    directory = tmp_path_factory.mktemp("opt-ml-model")
    ImageClassifier.load("default", device="cpu").save(directory / "classification")
    return directory


def entrypoint(*args: str) -> list[str]:
    return [sys.executable, "-m", "deploy.entrypoint", *args, "--host", "127.0.0.1"]


def serve_sagemaker(model_dir: Path, **env: str) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    environment = service_env(SAGEMAKER_BIND_TO_PORT=str(port), PAIS_MODEL_DIR=str(model_dir), **env)
    return running_server(entrypoint("serve"), port, environment, ready_path="/ping")


@pytest.fixture(scope="module")
def sagemaker(model_dir) -> Iterator[str]:
    with serve_sagemaker(model_dir, PAIS_MAX_REQUEST_BYTES=str(REALTIME_MAX_BYTES)) as url:
        yield url


@pytest.fixture(scope="module")
def batch_transform(model_dir) -> Iterator[str]:
    settings = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4",
        "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD",
    }
    with serve_sagemaker(model_dir, **settings) as url:
        yield url


CAT = encode(photo("chelsea"), "JPEG", quality=90)
COFFEE = encode(photo("coffee"), "PNG")


def invoke(url: str, body: bytes, content_type: str, attributes: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=120)


def test_ping_and_artifacts_from_the_model_dir(sagemaker, model_dir):
    response = httpx.get(f"{sagemaker}/ping", timeout=3)
    assert response.status_code == 200
    (card,) = [c for c in httpx.get(f"{sagemaker}/models").json()["models"] if c["task"] == "classification"]
    assert card["details"]["loaded_from"] == str(model_dir / "classification")
    assert card["source"] == "packaged:efficientnet-lite0"  # where the artifact's weights came from


def test_raw_image_bodies_go_to_the_default_task(sagemaker):
    for body, media, labels in ((CAT, "image/jpeg", CAT_LABELS), (COFFEE, "image/png", COFFEE_LABELS)):
        response = invoke(sagemaker, body, media)
        assert response.status_code == 200, response.text
        (result,) = response.json()
        assert labels & {p["label"] for p in result["predictions"][:3]}


def test_custom_attributes_route_and_carry_options(sagemaker):
    response = invoke(sagemaker, CAT, "image/jpeg", "task=classify;top_k=2")
    assert response.status_code == 200 and len(response.json()[0]["predictions"]) == 2
    unknown = invoke(sagemaker, CAT, "image/jpeg", "task=paint")
    assert_error(unknown, 404, "unknown task 'paint'; tasks: classify, embed, detect, detect_annotated")


def test_rest_and_json_bodies(sagemaker):
    multipart = httpx.post(
        f"{sagemaker}/invocations",
        files=[("images", ("a.jpg", CAT, "image/jpeg")), ("images", ("b.png", COFFEE, "image/png"))],
        data={"top_k": "1"},
        timeout=120,
    )
    assert multipart.status_code == 200 and len(multipart.json()) == 2
    as_json = json.dumps({"images": [base64.b64encode(CAT).decode()], "top_k": 3}).encode()
    response = invoke(sagemaker, as_json, "application/json")
    assert response.status_code == 200, response.text
    assert (
        response.json()[0]["predictions"][0]["label"] in CAT_LABELS
        and len(response.json()[0]["predictions"]) == 3
    )


def test_translate_through_invocations(sagemaker):
    body = json.dumps({"texts": ["I would like to buy a new car."], "source": "en", "target": "es"}).encode()
    response = invoke(sagemaker, body, "application/json", "task=translate")
    assert response.status_code == 200, response.text
    assert "coche nuevo" in response.json()["translations"][0]
    unsupported = invoke(sagemaker, body.replace(b'"es"}', b'"fr"}'), "application/json", "task=translate")
    assert_error(unsupported, 422, "supported pairs")


@pytest.mark.parametrize(
    ("body", "media", "status", "text"),
    [
        (b"hello", "text/plain", 415, "operation 'classify' accepts image/jpeg"),
        (b"not an image", "image/jpeg", 415, "not a recognised image"),
        (b'{"images": "@@@"}', "application/json", 400, "not valid base64"),
        (b'{"top_k": 3}', "application/json", 400, "no images sent"),
        (b"[1, 2]", "application/json", 400, "must be a JSON object"),
        (CAT, "image/jpeg;", 200, ""),
        (b"\0" * (REALTIME_MAX_BYTES + 1), "image/jpeg", 413, "PAIS_MAX_REQUEST_BYTES"),
    ],
    ids=["text", "not-an-image", "bad-base64", "no-images", "json-array", "media-type-params", "too-large"],
)
def test_bad_invocations_are_4xx(sagemaker, body, media, status, text):
    response = invoke(sagemaker, body, media)
    if status == 200:
        assert response.status_code == 200 and response.json()[0]["predictions"][0]["label"] in CAT_LABELS
    else:
        assert_error(response, status, text)


def test_batch_transform_lines_in_order_with_error_lines(batch_transform):
    records = [
        json.dumps({"images": base64.b64encode(CAT).decode(), "top_k": 1}),
        "this is not json",
        json.dumps({"images": base64.b64encode(COFFEE).decode(), "top_k": 2}),
        json.dumps({"images": base64.b64encode(b"text, not an image").decode()}),
        "",
        json.dumps({"task": "paint", "images": "AAAA"}),
        json.dumps({"images": base64.b64encode(CAT).decode(), "task": "classify"}),
    ]
    body = ("\n".join(records) + "\n").encode()
    response = invoke(batch_transform, body, "application/jsonlines")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert len(lines) == len(records)
    out = [json.loads(line) for line in lines]
    assert out[0][0]["predictions"][0]["label"] in CAT_LABELS and len(out[0][0]["predictions"]) == 1
    assert out[1]["status"] == 400 and "not valid JSON" in out[1]["error"]
    assert COFFEE_LABELS & {p["label"] for p in out[2][0]["predictions"]}
    assert out[3]["status"] == 415 and "not a recognised image" in out[3]["error"]
    assert out[4]["status"] == 400 and "empty record" in out[4]["error"]
    assert out[5]["status"] == 404 and "unknown task 'paint'" in out[5]["error"]
    assert out[6][0]["predictions"][0]["label"] in CAT_LABELS


def test_batch_transform_many_records_keep_their_order(batch_transform):
    from PIL import Image

    # thumbnails, so that 30 records fit the 1 MB payload this server is configured with
    small_cat = encode(Image.fromarray(photo("chelsea")).resize((300, 200)), "JPEG", quality=85)
    small_coffee = encode(Image.fromarray(photo("coffee")).resize((300, 200)), "JPEG", quality=85)
    images = [small_cat if i % 3 else small_coffee for i in range(30)]
    body = "\n".join(json.dumps({"images": base64.b64encode(image).decode(), "top_k": 3}) for image in images)
    response = invoke(batch_transform, body.encode(), "application/jsonlines")
    out = [json.loads(line) for line in response.text.splitlines()]
    assert len(out) == 30
    for image, result in zip(images, out, strict=True):
        expected = CAT_LABELS if image is small_cat else COFFEE_LABELS
        assert expected & {p["label"] for p in result[0]["predictions"]}


def test_batch_execution_parameters_and_payload_limit(batch_transform):
    assert httpx.get(f"{batch_transform}/execution-parameters").json() == {
        "MaxConcurrentTransforms": 4,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 1,
    }
    too_big = invoke(batch_transform, b'{"images": "' + b"A" * (1024 * 1024) + b'"}', "application/jsonlines")
    assert_error(too_big, 413, "SAGEMAKER_MAX_PAYLOAD_IN_MB")
    # a raw record (SplitType None) is one call answered like real time
    raw = invoke(batch_transform, CAT, "image/jpeg")
    assert raw.status_code == 200 and raw.json()[0]["predictions"][0]["label"] in CAT_LABELS


def test_sigterm_stops_everything_within_30_seconds(model_dir):
    port = free_port()
    env = service_env(SAGEMAKER_BIND_TO_PORT=str(port), PAIS_MODEL_DIR=str(model_dir))
    process = subprocess.Popen(
        entrypoint("serve"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=3).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("entrypoint never became ready")
        process.send_signal(signal.SIGTERM)  # what `docker stop` and SageMaker send to PID 1
        process.wait(timeout=30)
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
        leftovers = subprocess.run(
            ["pgrep", "-s", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert not leftovers, f"processes left behind: {leftovers}"
    finally:
        if process.poll() is None:
            process.kill()


def zombie_descendants(process: psutil.Process) -> list[int]:
    found = []
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # reaped meanwhile
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child.pid)
    return found


def test_entrypoint_as_pid_1_leaves_no_zombies():
    """In a container the server is PID 1 (the entrypoint execs it), so orphans are its to
    reap: an apertium pipeline killed by process group, as PAIS kills a stuck one, must leave
    no zombie stages. Run as PID 1 of a PID namespace of its own."""
    namespace = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    probe = subprocess.run([*namespace, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no PID namespace here (needs root or CAP_SYS_ADMIN): {probe.stderr.strip()}")
    port = free_port()
    env = service_env(PAIS_TASKS="translation", PORT=str(port))
    with running_server([*namespace, *entrypoint()], port, env) as url:

        def translate(text: str) -> str:
            body = {"texts": [text], "source": "en", "target": "es"}
            return httpx.post(f"{url}/translate", json=body, timeout=60).json()["translations"][0]

        assert "perro" in translate("The dog eats.")
        # PID 1 inside: the `bentoml serve` the entrypoint exec'd, a child of unshare
        command_end = ["--host", "127.0.0.1", "--port", str(port)]
        processes = psutil.process_iter(["cmdline"])
        (server,) = [p for p in processes if (p.info["cmdline"] or [])[-4:] == command_end]
        assert server.parent().name() == "unshare"
        pipeline = next(p for p in server.children(recursive=True) if p.cmdline()[:2] == ["bash", "-c"])
        stages = [p for p in server.children(recursive=True) if os.getpgid(p.pid) == pipeline.pid]
        assert len(stages) > 5  # lt-proc, apertium-transfer, ... all in the pipeline's group
        os.killpg(pipeline.pid, signal.SIGKILL)
        # BentoML's arbiter (circus) reaps any child, on its controller tick (10 s)
        deadline = time.monotonic() + 60
        while zombies := zombie_descendants(server):
            assert time.monotonic() < deadline, f"unreaped: {zombies}"
            time.sleep(1)
        assert "gato" in translate("The cat sleeps.")  # a fresh pipeline took over


def test_large_batch_then_rest_traffic_all_succeed(batch_transform):
    """More records than run at once, then concurrent REST calls on the same process: each
    in-process sub-request has its own upload directory, so none loses another's files."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    tiny = encode(Image.fromarray(photo("chelsea")).resize((96, 64)), "JPEG", quality=80)
    line = json.dumps({"images": base64.b64encode(tiny).decode(), "top_k": 1})
    response = invoke(batch_transform, ("\n".join([line] * 150)).encode(), "application/jsonlines")
    assert response.status_code == 200, response.text[:300]
    out = [json.loads(row) for row in response.text.splitlines()]
    assert len(out) == 150 and all(isinstance(row, list) for row in out), [
        r for r in out if isinstance(r, dict)
    ][:3]

    def rest(_: int) -> int:
        files = [("images", ("cat.jpg", CAT, "image/jpeg"))]
        return httpx.post(f"{batch_transform}/classify", files=files, timeout=120).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(rest, range(32))) == {200}


def test_odd_records_are_error_lines_and_the_answer_stays_json_lines(batch_transform):
    """Records are decoded straight into the request model (nothing is re-encoded as
    HTTP): a lone surrogate in a value and a header-like field name are refused as such,
    and echoing them back still gives one valid JSON line each."""
    good = json.dumps({"images": base64.b64encode(CAT).decode(), "top_k": 1})
    # valid JSON whose string holds a lone surrogate: decodable, not encodable as UTF-8
    surrogate = json.dumps({"images": base64.b64encode(CAT).decode()})[:-1] + ', "top_k": "\\ud800"}'
    injected = json.dumps({"images": base64.b64encode(CAT).decode(), 'x"\r\nEvil: 1': "1"})
    response = invoke(
        batch_transform, "\n".join([good, surrogate, injected, good]).encode(), "application/jsonlines"
    )
    assert response.status_code == 200, response.text[:300]
    out = [json.loads(row) for row in response.text.splitlines()]
    assert len(out) == 4 and isinstance(out[0], list) and isinstance(out[3], list)
    assert out[1]["status"] == 400 and "top_k" in out[1]["error"]
    assert out[2]["status"] == 400 and 'unexpected field(s): x"\r\nEvil: 1' in out[2]["error"]


def test_json_body_may_name_its_task(sagemaker):
    body = json.dumps({"task": "classify", "images": [base64.b64encode(CAT).decode()], "top_k": 2}).encode()
    response = invoke(sagemaker, body, "application/json", "task=paint")  # the body's task wins
    assert response.status_code == 200, response.text
    assert len(response.json()[0]["predictions"]) == 2


def test_detect_and_analyze_video_through_invocations(sagemaker, tmp_path):
    from .images import composite
    from .videos import Appearance, scripted_video

    scene = encode(composite(["astronaut", "chelsea", "coffee"])[0], "JPEG", quality=95)
    detected = invoke(sagemaker, scene, "image/jpeg", "task=detect;classes=cup")
    assert detected.status_code == 200, detected.text
    assert {d["label"] for d in detected.json()[0]["detections"]} == {"cup"}
    annotated = invoke(sagemaker, scene, "image/jpeg", "task=detect_annotated;format=png")
    assert annotated.status_code == 200 and annotated.headers["content-type"] == "image/png"
    assert annotated.content[:8] == b"\x89PNG\r\n\x1a\n"
    clip = scripted_video(tmp_path / "cat.mp4", [Appearance("chelsea", 1.0, 3.0, (100, 100, 300, 200))], 4.0)
    analysed = invoke(sagemaker, clip.read_bytes(), "video/mp4", "task=analyze_video;tasks=detect")
    assert analysed.status_code == 200, analysed.text
    assert analysed.json()["summary"]["cat"]["first_s"] == 1.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAIS_DEVICE": "cuda"}, "CUDA is not available"),
        (
            {"PAIS_CLASSIFICATION_MAX_BATCH_SIZE": "lots"},
            "PAIS_CLASSIFICATION_MAX_BATCH_SIZE='lots' is not an integer",
        ),
        ({"PAIS_MAX_BATCH_SIZE": "8"}, "PAIS_MAX_BATCH_SIZE is now PAIS_CLASSIFICATION_MAX_BATCH_SIZE"),
        (
            {"PAIS_TRANSLATION_MAX_TEXT_CHAR": "500"},
            "PAIS_TRANSLATION_MAX_TEXT_CHAR is not a setting of task",
        ),
    ],
    ids=["gpu-image-without-gpu", "bad-setting", "renamed-setting", "unknown-section-setting"],
)
def test_entrypoint_fails_fast_on_a_misconfiguration(model_dir, env, message):
    """BentoML restarts a failing model worker forever; the entrypoint checks first, so a
    container with a bad setting exits at once instead of failing health checks later."""
    port = free_port()
    result = subprocess.run(
        entrypoint("serve"),
        env=service_env(SAGEMAKER_BIND_TO_PORT=str(port), PAIS_MODEL_DIR=str(model_dir), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
