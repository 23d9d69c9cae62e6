"""benchmarks/gpu.py (make bench-gpu) cannot rot: its smoke mode runs end to end against a
real `bentoml serve` on the CPU and writes a complete report; its parts are tested alone:
the report check, the multi-process load generator, the GPU-memory probe (with a stand-in
nvidia-smi), the random-weight stand-ins through the real loaders, the lingua stand-in,
and the refusal to measure anything without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import pytest

from benchmarks.gpu import SCHEMA, validate
from benchmarks.gpu_kit import probe, standins
from benchmarks.gpu_kit.load import Request, http_load, json_request, multipart

REPO = Path(__file__).resolve().parents[1]
SMOKE_LIMIT_S = 180  # the bound for the smoke run


def _env(**overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(REPO / ".bentoml")),
        "BENTOML_DO_NOT_TRACK": "true",
        **overrides,
    }


@pytest.mark.server
def test_smoke_run_measures_every_model_raw_and_served(tmp_path):
    out = tmp_path / "gpu-smoke.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--require-gpu"],
        cwd=REPO,
        env=_env(PAIS_BENCH_SMOKE="1", PAIS_BENCH_OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    log = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, log
    report = json.loads(out.read_text())
    assert validate(report) == [], log
    assert report["mode"] == "smoke" and report["complete"], log
    assert report["elapsed_s"] < SMOKE_LIMIT_S and elapsed < SMOKE_LIMIT_S + 30, log
    for key, model in report["models"].items():
        assert model["placement"].startswith(("cpu", "onnxruntime CPU")), key
        assert model["gpu_memory_mib"] == probe.NO_GPU, key
        assert [w["gpu"] for w in model["workers"]] == [probe.NO_GPU], key
        assert model["weights"], key
    for server in report["servers"].values():
        assert server["entry_loaded_torch"] is False  # every model lives in a model service
        assert server["env"]["PAIS_TRANSLATION_SERVE_IN"] == "model-service"
    assert "ratio to raw" in done.stdout and "JSON written to" in done.stdout


def test_without_a_gpu_nothing_is_measured(tmp_path):
    env = _env(CUDA_VISIBLE_DEVICES="", PAIS_BENCH_OUT=str(tmp_path / "out.json"))
    env.pop("PAIS_BENCH_SMOKE", None)
    command = [sys.executable, "-m", "benchmarks.gpu"]
    required = subprocess.run([*command, "--require-gpu"], cwd=REPO, env=env, capture_output=True, text=True)
    assert required.returncode == 2 and "no CUDA device" in required.stdout
    optional = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert optional.returncode == 0 and "PAIS_BENCH_SMOKE=1" in optional.stdout  # `make bench` goes on
    assert not (tmp_path / "out.json").exists()


# --- the report's check ---------------------------------------------------------------------


def _figure(per_s: float, ratio: float) -> dict:
    return {"per_s": per_s, "ratio": ratio, "errors": 0, "error_sample": None, "p50_ms": 1.0}


def _report() -> dict:
    models = {}
    for key, task in (
        ("classification", "classification"),
        ("classification:torchvision:resnet50", "classification"),
        ("detection", "detection"),
        ("translation", "translation"),
        ("speech", "speech"),
        ("recommendation", "recommendation"),
    ):
        service = {"single": _figure(5.0, 0.5)}
        if task != "recommendation":
            service["batch"] = _figure(8.0, 0.8)
        models[key] = {
            "task": task,
            "server": "main",
            "model": "m",
            "weights": "random",
            "placement": "cuda float16",
            "raw": {"per_s": 10.0},
            "service": service,
            "gpu_memory_mib": 512.0,
            "workers": [{"pid": 1, "gpu": 0}],
        }
        if task == "classification":
            models[key]["raw_forward"] = {"per_s": 20.0}
    return {
        "schema": SCHEMA,
        "mode": "gpu",
        "machine": {},
        "plan": {},
        "models": models,
        "servers": {},
        "skipped": [],
        "errors": [],
        "complete": True,
    }


def test_a_complete_report_passes_the_check():
    assert validate(_report()) == []


def test_the_check_names_what_is_missing_or_wrong():
    report = _report()
    report["models"]["detection"]["service"]["batch"]["ratio"] = 0.0
    report["models"]["speech"]["raw"]["per_s"] = float("nan")
    del report["models"]["translation"]["service"]["single"]
    report["models"]["classification"]["service"]["single"]["errors"] = 3
    del report["models"]["recommendation"]["workers"]
    problems = validate(report)
    assert "detection: service batch ratio 0.0" in problems
    assert any(p.startswith("speech: raw per_s") for p in problems)
    assert ".models.speech.raw.per_s" in " ".join(problems)  # non-finite
    assert "translation: no service single figure" in problems
    assert any(p.startswith("classification: service single: 3 errors") for p in problems)
    assert "recommendation: no 'workers'" in problems


# --- the load generator ----------------------------------------------------------------------


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


@pytest.fixture
def little_server():
    """A threading HTTP server: /ok and /close answer a 0.5 s WAV, /fail a 503; it records
    the bodies."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append(body)
            status, data = (503, b"busy, retry") if self.path == "/fail" else (200, _wav(0.5))
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            # /close: the connection is dropped after each answer without saying so, as a
            # server does with a keep-alive connection idle past its timeout
            self.close_connection = self.path == "/close"

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()


def test_load_processes_count_answers_items_and_audio(little_server):
    url, bodies = little_server
    body, content_type = multipart("images", [b"jpeg-1", b"jpeg-2"])
    counted = http_load(
        url, Request("POST", "/ok", body, content_type, 2), clients=4, seconds=0.5, processes=2
    )
    assert counted["errors"] == 0 and counted["requests"] > 0 and counted["processes"] == 2
    assert counted["per_s"] == pytest.approx(2 * counted["requests"] / counted["seconds"])
    assert bodies[0].count(b'name="images"') == 2 and b"jpeg-2" in bodies[0]
    audio = http_load(
        url, json_request("/ok", {"text": "hi"}, 1, audio=True), clients=2, seconds=0.3, processes=1
    )
    assert audio["per_s"] == pytest.approx(0.5 * audio["requests"] / audio["seconds"])


def test_a_keep_alive_connection_the_server_dropped_is_retried_once(little_server):
    url, _ = little_server
    dropped = http_load(url, json_request("/close", {}, 1), clients=2, seconds=0.3, processes=1)
    assert dropped["errors"] == 0 and dropped["requests"] > 0


def test_load_errors_are_counted_with_a_sample(little_server):
    url, _ = little_server
    failed = http_load(url, json_request("/fail", {}, 1), clients=2, seconds=0.2, processes=1)
    assert failed["requests"] == 0 and failed["errors"] > 0
    assert failed["error_sample"] == "HTTP 503: busy, retry"


# --- GPU memory per service, from nvidia-smi ---------------------------------------------------


def test_without_nvidia_smi_memory_is_not_available(monkeypatch):
    monkeypatch.setattr(probe.shutil, "which", lambda name: None)
    workers = [{"pid": 10, "service": "pais-classification"}, {"pid": 11, "service": "pais"}]
    assert probe.memory_by_service(workers) == {"pais": probe.NO_GPU, "pais-classification": probe.NO_GPU}
    assert workers[0]["gpu"] == workers[0]["gpu_memory_mib"] == probe.NO_GPU


def test_nvidia_smi_processes_are_matched_to_workers(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  --query-gpu=*) echo "0, GPU-aaa, NVIDIA H100, 81559, 9000, 580.1"; '
        'echo "1, GPU-bbb, NVIDIA H100, 81559, 3000, 580.1";;\n'
        '  --query-compute-apps=*) echo "10, GPU-aaa, 2048"; echo "12, GPU-bbb, 1024"; '
        'echo "13, GPU-aaa, 512"; echo "99, GPU-aaa, 700"; echo "77, GPU-aaa, 300";;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    workers = [
        {"pid": 10, "service": "pais-classification"},
        {"pid": 12, "service": "pais-classification"},
        {"pid": 13, "service": "pais-speech"},
        {"pid": 14, "service": "pais"},
    ]
    memory = probe.memory_by_service(workers, own_pid=77)
    assert memory["pais-classification"] == 3072 and memory["pais-speech"] == 512 and memory["pais"] == 0
    assert [w["gpu"] for w in workers] == [0, 1, 0, None]
    assert memory["benchmark process"] == 300
    assert memory["unmapped"] == {"pids": [99], "used_memory_mib": 700}
    assert probe.gpus()[1]["memory_total_mib"] == 81559


def test_worker_processes_are_found_by_their_bentoml_command_line():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(30)",
            "--service-name",
            "pais-speech",
            "--worker-id",
            "2",
        ],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "0"},
    )
    try:
        time.sleep(0.3)
        (worker,) = probe.server_workers(os.getpid())
        assert (worker["pid"], worker["service"], worker["worker_id"]) == (child.pid, "pais-speech", "2")
        assert worker["cuda_visible_devices"] == "0" and worker["torch_loaded"] is False
    finally:
        child.kill()
        child.wait()


# --- stand-ins with random weights, through the real loaders -----------------------------------


def test_random_torchvision_weights_load_under_the_real_source_uri(tmp_path, monkeypatch):
    from models.classification import ImageClassifier

    home = tmp_path / "torch"
    path = standins.random_torchvision_checkpoint("resnet18", home)
    assert path == standins.hub_checkpoint("resnet18", home) and path.is_file()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # never the internet
    clf = ImageClassifier.load("torchvision:resnet18", device="cpu")
    assert clf.info.source == "torchvision:resnet18" and len(clf.labels) == 1000


def test_random_efficientnet_snapshot_is_the_default_architecture(tmp_path, cat_jpeg):
    from models.classification import ImageClassifier

    clf = ImageClassifier.load(str(standins.random_efficientnet_lite0(tmp_path / "eff")), device="cpu")
    assert clf.info.version == "random-weights" and clf.preprocess.output_size == (224, 224)
    assert len(clf.predict([cat_jpeg])[0].predictions) == 5


def test_random_marian_translates_through_the_neural_engine(tmp_path):
    from models.translation import Translator
    from models.translation.schema import TranslationRequest

    directory = standins.random_marian(tmp_path / "opus-mt-en-es-random", full=False)
    translator = Translator.load(str(directory), device="cpu")
    (answer,) = translator.predict_batch([TranslationRequest([standins.ENGLISH[0]], "en", "es")])
    assert answer.route[0].source == "en" and answer.route[0].target == "es"
    assert translator.cards[0].details["placement"] == "cpu float32"


def test_random_vits_speaks_at_about_the_pace_of_english(tmp_path):
    from models.speech import SpeechSynthesizer
    from models.speech.schema import SentenceItem

    tts = SpeechSynthesizer.load(str(standins.random_vits(tmp_path / "vits", full=False)), device="cpu")
    sentence = standins.ENGLISH[0]
    (pcm,) = tts.predict_batch([SentenceItem(sentence)])
    seconds = len(pcm) / 2 / tts.sample_rate
    assert seconds == pytest.approx(len(sentence) * standins.SECONDS_PER_CHARACTER, rel=0.35)


def test_synthetic_recommender_is_trained_by_the_training_cli(tmp_path):
    from models.recommendation import Recommender
    from models.recommendation.schema import Ask

    directory = standins.synthetic_recommender(
        tmp_path / "recs", users=40, items=30, per_user=6, device="cpu"
    )
    recommender = Recommender.load(str(directory), device="cpu")
    (answer,) = recommender.predict_batch([Ask(user_id="u3", k=5)])
    assert answer.strategy == "personal" and len(answer.items) == 5


def test_the_lingua_stand_in_loads_and_identifies_nothing(monkeypatch):
    from models.translation.detect import LanguageDetector

    shims = str(REPO / "benchmarks" / "gpu_kit" / "shims")
    monkeypatch.syspath_prepend(shims)
    monkeypatch.delitem(sys.modules, "lingua", raising=False)
    detector = LanguageDetector()
    detector.warm_up()
    assert detector.detect(["the red house"]).language is None
    assert sys.modules["lingua"].__file__.startswith(shims)
