"""GPU readiness in one run: each model's raw throughput next to the served one, over HTTP.

    make bench-gpu                       # on a machine with an NVIDIA GPU (PAIS_DEVICE=cuda)
    PAIS_BENCH_SMOKE=1 make bench-gpu    # the same script on the CPU, tiny counts (< 3 min)

For classification (the configured model and torchvision:resnet50), detection, translation
(a Marian model), speech and recommendation it prints and writes, in one run:

- raw: the runtime loaded in this process as a model service loads it
  (service.model_store.load_task_runtime, same settings and device), `predict_batch` timed
  at a few batch sizes on encoded inputs (JPEG bytes, sentences, user ids); the best batch
  is the raw figure. Classification also gets the forward pass alone on a prepared batch
  (the fp16 ceiling the targets are stated against).
- service: `bentoml serve service.gateway:PAIS` with PAIS_DEVICE=cuda (cpu in smoke mode),
  every model in a model service of its own (translation and recommendation too:
  PAIS_<TASK>_SERVE_IN=model-service, so the entry worker holds no CUDA context; printed),
  loaded over HTTP by keep-alive clients in several processes: 1 item per request at 64
  concurrent clients, and 64 items per request (JPEG uploads for images), each as a ratio
  to the raw figure;
- per model service: GPU memory (nvidia-smi's compute processes matched to the BentoML
  workers by PID; "n/a (no GPU)" without one), the GPU each worker landed on, its
  CUDA_VISIBLE_DEVICES and the placement /models reports; whether the entry worker
  loaded torch; the batch sizes the model services formed (/stats).

Weights: what is at hand is used (the BentoML store's copies made by `make models`, the
packages, the torch hub cache). What is not is replaced by the same architecture with
random weights, made here offline (benchmarks/gpu_kit/standins.py), and the output says
which: throughput does not depend on weight values. The translation model is a Marian
from PAIS_BENCH_MARIAN (a transformers directory named opus-mt-<src>-<tgt>...) when set,
else a random Marian-base-shaped one (the tests' tiny shape in smoke mode).

Budget: 8 minutes in all on a GPU (PAIS_BENCH_BUDGET_S, default 450 s of phases): phases
are short (PAIS_BENCH_SECONDS, default 10 s of load each) and a phase that would not end
inside the budget is skipped and named in the JSON, which is always written: to
PAIS_BENCH_OUT, default benchmarks/results/gpu.json (gpu-smoke.json in smoke mode).
Nothing is installed or downloaded: HF_HUB_OFFLINE=1, and https goes to a closed port.
Without a GPU and without PAIS_BENCH_SMOKE it says so and measures nothing (exit status 2
with --require-gpu, as `make bench-gpu` passes; 0 under `make bench`).

On a lent GPU machine (the device tool, /work/.library/device/README.md): its python3 is
3.12 with torch, torchvision, transformers, sentencepiece, onnxruntime (CPU build) and
more, but not bentoml; .venv (Python 3.11, made here) does not travel. So:

1. here, once: `mkdir -p .git/info && echo /.whl/ >> .git/info/exclude` and
   `.venv/bin/python -m benchmarks.gpu --download-wheels .whl`, which runs the README's
   `pip download --no-deps --only-binary=:all: --python-version 3.12 ...` for BentoML and
   each of its dependencies that the machine lacks (CARRY), at the versions .venv has
   (36 wheels, 8 MiB). With them, `import service.gateway` and `python -m bentoml` were
   checked on a Python 3.12 with only the packages the lent image lists;
2. one `run` (any kind; compare figures only with others from the same kind) with carry
   [".whl"], timeout_s 600 (the script's own budget ends it by ~8 minutes; the device
   time left must also cover the machine's start), and the command
   `python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
   --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit;
   export PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 PAIS_BENCH_OUT=$OUT/bench-gpu.json;
   set -o pipefail; if command -v make >/dev/null; then make bench-gpu PY=python3;
   else python3 -m benchmarks.gpu --require-gpu; fi 2>&1 | tee $OUT/bench-gpu.log`,
   then give_back. The JSON and the log come back under files_at; the log ends with the
   summary table.
   The model store (.bentoml, ~200 MB), the weight packages and lingua (96 MB) do not fit
   the 64 MiB that travels: there the script uses the random-weight stand-ins, serves
   speech with a VITS stand-in (onnxruntime there has no CUDA provider and eSpeak NG is
   not installed, so the Piper voice cannot load with PAIS_DEVICE=cuda), and puts a
   stand-in `lingua` (benchmarks/gpu_kit/shims) on the server's path, all said in the output.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.gpu_kit import probe
from benchmarks.gpu_kit.load import Request, http_load, json_request, multipart

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "pais-bench-gpu/1"
SHIMS = Path(__file__).resolve().parent / "gpu_kit" / "shims"
CLOSED_PROXY = "http://127.0.0.1:9"  # any https download fails at once instead of reaching out

# What the classification service is judged against on one H100/H200 (issue 18): not gates.
TARGETS = {"batch_ratio_to_forward": 0.6, "single_images_per_s": 5000}

# Distributions a lent GPU machine's image lacks (KINDS.md, read 2026-11-17) that serving needs.
CARRY = [
    "a2wsgi", "aiohttp-asgi-connector", "aiosqlite", "annotated-types", "asgiref", "bentoml", "cattrs",
    "cffi", "click-option-group", "httpx-ws", "kantoku", "opentelemetry-api", "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-aiohttp-client", "opentelemetry-instrumentation-asgi", "opentelemetry-sdk",
    "opentelemetry-semantic-conventions", "opentelemetry-util-http", "pip-requirements-parser", "pycparser",
    "pydantic", "pydantic-core", "python-json-logger", "python-multipart", "pyzmq", "rich-toolkit", "schema",
    "simple-di", "soundfile", "starlette", "tomli-w", "tornado", "typing-inspection", "uvicorn", "watchfiles",
    "wsproto",
]  # fmt: skip


@dataclass(frozen=True)
class Plan:
    smoke: bool
    device: str
    budget_s: float
    phase_s: float  # HTTP load per phase
    raw_s: float  # timed predict_batch per batch size
    clients: int  # concurrent clients sending 1 item per request
    batch_items: int  # items per request in the batch phase
    batch_clients: int
    processes: int  # load generator processes
    raw_batches: dict[str, list[int]]
    server_start_s: float

    @classmethod
    def make(cls, smoke: bool) -> Plan:
        cpus = os.cpu_count() or 2
        env = os.environ.get
        if smoke:
            return cls(
                smoke=True,
                device="cpu",
                budget_s=float(env("PAIS_BENCH_BUDGET_S", "170")),
                phase_s=float(env("PAIS_BENCH_SECONDS", "1")),
                raw_s=0.2,
                clients=int(env("PAIS_BENCH_CLIENTS", "4")),
                batch_items=4,
                batch_clients=2,
                processes=1,
                raw_batches={
                    "classification": [1, 2],
                    "forward": [1, 4],
                    "detection": [1, 2],
                    "translation": [1, 4],
                    "speech": [1, 2],
                    "recommendation": [1, 8],
                },
                server_start_s=150,
            )
        return cls(
            smoke=False,
            device="cuda",
            budget_s=float(env("PAIS_BENCH_BUDGET_S", "450")),
            phase_s=float(env("PAIS_BENCH_SECONDS", "10")),
            raw_s=2.0,
            clients=int(env("PAIS_BENCH_CLIENTS", "64")),
            batch_items=64,
            batch_clients=8,
            processes=max(1, min(8, cpus // 2)),
            raw_batches={
                "classification": [16, 64],
                "forward": [64, 128, 256],
                "detection": [1, 8, 32],
                "translation": [16, 64],
                "speech": [8, 32],
                "recommendation": [16, 64],
            },
            server_start_s=240,
        )


@dataclass
class Model:
    """One benchmarked model: its task, the PAIS_* settings that select it (for the raw
    runtime and the server alike), and what its weights are."""

    key: str
    task: str
    server: str
    env: dict[str, str] = field(default_factory=dict)
    weights: str = "configured source (BentoML store copy or package)"
    notes: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, plan: Plan, out: Path, workdir: Path):
        self.plan = plan
        self.out = out
        self.workdir = workdir
        self.started = time.monotonic()
        self.lingua_shim = False
        self.report: dict[str, Any] = {
            "schema": SCHEMA,
            "mode": "smoke" if plan.smoke else "gpu",
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "plan": {
                key: value for key, value in plan.__dict__.items() if key not in ("smoke", "raw_batches")
            }
            | {"raw_batches": plan.raw_batches},
            "machine": {},
            "models": {},
            "servers": {},
            "skipped": [],
            "errors": [],
            "complete": False,
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.plan.budget_s - self.elapsed()

    def log(self, message: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {message}", flush=True)

    def skip(self, phase: str, reason: str) -> None:
        self.log(f"SKIPPED {phase}: {reason}")
        self.report["skipped"].append({"phase": phase, "reason": reason})

    def error(self, phase: str, error: BaseException) -> None:
        self.log(f"FAILED {phase}: {type(error).__name__}: {error}")
        self.report["errors"].append(
            {"phase": phase, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        )

    def fits(self, phase: str, need_s: float) -> bool:
        if self.remaining() < need_s:
            self.skip(phase, f"the budget has {self.remaining():.0f} s left, the phase needs ~{need_s:.0f} s")
            return False
        return True

    def write(self) -> None:
        self.report["elapsed_s"] = round(self.elapsed(), 1)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        partial = self.out.with_name(self.out.name + ".partial")
        partial.write_text(json.dumps(_finite(self.report), indent=2, sort_keys=True))
        partial.replace(self.out)


def _finite(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- the machine and the weights --------------------------------------------------------------


def describe_machine(bench: Bench) -> None:
    import torch

    machine: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": probe.gpus(),
    }
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
        machine["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        machine["onnxruntime"] = None
    try:
        import bentoml

        machine["bentoml"] = bentoml.__version__
    except ImportError:
        machine["bentoml"] = None
    bench.report["machine"] = machine
    gpu = ", ".join(f"{g['name']} ({g['memory_total_mib']:.0f} MiB)" for g in machine["gpus"]) or "none"
    bench.log(
        f"machine: GPU {gpu}; torch {machine['torch']} (CUDA {machine['cuda']}); "
        f"onnxruntime {machine.get('onnxruntime')} {machine.get('onnxruntime_providers')}; "
        f"{machine['cpus']} CPUs; bentoml {machine['bentoml']}"
    )


def models_to_bench(bench: Bench) -> list[Model]:
    """Every model with the settings that select it. Translation is always a Marian;
    the rest start as configured and fall back to stand-ins in `raw_phase` when they do
    not load here."""
    marian_dir = os.environ.get("PAIS_BENCH_MARIAN")
    marian = Model("translation", "translation", "main")
    if marian_dir:
        marian.env["PAIS_TRANSLATION_MODEL"] = str(Path(marian_dir).resolve())
        marian.weights = f"pretrained: PAIS_BENCH_MARIAN={marian_dir}"
    else:
        full = not bench.plan.smoke
        path = bench.workdir / "opus-mt-en-es-random"
        bench.log(
            f"translation: making a random Marian ({'Marian-base shape' if full else 'tiny'}) in {path}"
        )
        from benchmarks.gpu_kit.standins import random_marian

        random_marian(path, full=full)
        marian.env["PAIS_TRANSLATION_MODEL"] = str(path)
        marian.weights = (
            "random: Marian-base shape (6+6 layers, d_model 512, 58,101-token output), made offline"
            if full
            else "random: the tests' tiny Marian shape (1+1 layers, d_model 32), made offline"
        )
        marian.notes.append(
            "random weights never predict end-of-sentence: each sentence is generated to the engine's cap "
            "(2 x input + 16 tokens), about twice a real translation's length"
        )
    resnet = Model(
        "classification:torchvision:resnet50",
        "classification",
        "resnet50",
        env={"PAIS_CLASSIFICATION_MODEL": "torchvision:resnet50"},
    )
    use_torchvision_weights(bench, resnet, "resnet50")
    return [
        Model("classification", "classification", "main"),
        resnet,
        Model("detection", "detection", "main"),
        marian,
        Model("speech", "speech", "main"),
        Model("recommendation", "recommendation", "main"),
    ]


def private_torch_home(bench: Bench) -> Path:
    """One TORCH_HOME for this run: real checkpoints linked in, stand-ins written there."""
    home = bench.workdir / "torch"
    (home / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    os.environ["TORCH_HOME"] = str(home)
    return home


def use_torchvision_weights(bench: Bench, model: Model, arch: str) -> None:
    from benchmarks.gpu_kit.standins import hub_checkpoint, random_torchvision_checkpoint

    real = hub_checkpoint(arch, Path(os.environ["PAIS_BENCH_REAL_TORCH_HOME"]))
    home = private_torch_home(bench)
    target = hub_checkpoint(arch, home)
    if real.is_file():
        if not target.exists():
            target.symlink_to(real)
        model.weights = f"pretrained: torch hub cache ({real})"
    else:
        bench.log(f"{model.key}: no weights in the torch hub cache; writing random ones ({arch})")
        random_torchvision_checkpoint(arch, home)
        model.weights = (
            f"random: torchvision {arch} architecture, random state_dict in a private torch hub cache"
        )
    model.env["TORCH_HOME"] = str(home)


def stand_in(bench: Bench, model: Model, reason: str) -> None:
    """Replace `model`'s configured source with a stand-in of the same task."""
    from benchmarks.gpu_kit import standins

    full = not bench.plan.smoke
    model.notes.append(f"configured model not loadable here: {reason}")
    if model.task == "classification":
        path = standins.random_efficientnet_lite0(bench.workdir / "efficientnet-lite0-random")
        model.env["PAIS_CLASSIFICATION_MODEL"] = str(path)
        model.weights = "random: EfficientNet-Lite0 architecture (the default's), PAIS snapshot made offline"
    elif model.task == "detection":
        arch = "fasterrcnn_resnet50_fpn_v2"  # the reference figure's model
        model.env["PAIS_DETECTION_MODEL"] = f"torchvision:{arch}"
        use_torchvision_weights(bench, model, arch)
        model.notes.append("stand-in: Faster R-CNN v2 (ResNet-50 FPN), the issue's reference detection model")
    elif model.task == "speech":
        path = standins.random_vits(bench.workdir / "vits-random", full=full)
        model.env["PAIS_SPEECH_MODEL"] = str(path)
        shape = "MMS-TTS shape" if full else "tiny shape"
        model.weights = f"random: transformers VITS ({shape}, 16 kHz), reading pace set to ~14 characters/s"
    elif model.task == "recommendation":
        users, items, per_user = (6000, 4000, 30) if full else (300, 200, 10)
        path = standins.synthetic_recommender(
            bench.workdir / "recommender-synthetic", users, items, per_user, bench.plan.device
        )
        model.env["PAIS_RECOMMENDATION_MODEL"] = str(path)
        model.weights = f"iALS trained here on synthetic interactions ({users} users, {items} items)"
    else:
        raise ValueError(f"no stand-in for {model.task}")
    bench.log(f"{model.key}: stand-in: {model.weights}")


def lingua_shim_needed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("lingua") is None
    except ImportError:
        return True


# --- raw throughput ----------------------------------------------------------------------------


def sample_images() -> list[bytes]:
    """640x480 JPEGs of three scikit-image photos."""
    from PIL import Image

    from tests.images import encode, photo

    return [
        encode(Image.fromarray(photo(name)).convert("RGB").resize((640, 480)), "JPEG", quality=90)
        for name in ("chelsea", "coffee", "astronaut")
    ]


SENTENCES = [
    "The weather is nice today and we are going to the beach.",
    "Could you send me the report before the meeting on Monday?",
    "The children played football in the park until it was dark.",
    "Our neighbours have a small black cat that sleeps all day.",
]


def raw_items(model: Model, runtime: Any, n: int, images: list[bytes]) -> list[Any]:
    if model.task == "classification":
        from models.classification.schema import ClassifyItem

        return [ClassifyItem(images[i % len(images)]) for i in range(n)]
    if model.task == "detection":
        from models.detection.schema import DetectItem

        return [DetectItem(images[i % len(images)]) for i in range(n)]
    if model.task == "translation":
        from models.translation.schema import TranslationRequest

        return [TranslationRequest([SENTENCES[i % len(SENTENCES)]], "en", "es") for i in range(n)]
    if model.task == "speech":
        from models.speech.schema import SentenceItem

        return [SentenceItem(SENTENCES[i % len(SENTENCES)]) for i in range(n)]
    if model.task == "recommendation":
        from models.recommendation.schema import Ask

        users = getattr(runtime, "default", runtime).state.user_ids
        return [Ask(user_id=users[(i * 7919) % len(users)], k=10) for i in range(n)]
    raise ValueError(model.task)


UNITS = {
    "classification": "images",
    "detection": "images",
    "translation": "sentences",
    "speech": "audio seconds",
    "recommendation": "requests",
}


def counted(model: Model, runtime: Any, results: list[Any]) -> float:
    """What a batch's answers count for: items, or seconds of audio for speech."""
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"the runtime answered {len(failed)} errors, e.g. {failed[0]}")
    if model.task == "speech":
        return sum(len(pcm) // 2 for pcm in results) / getattr(runtime, "default", runtime).sample_rate
    return float(len(results))


class TokenCounter:
    """Counts the tokens a seq2seq engine's generate() produces (end-of-sentence included;
    the decoder's start token and the padding after an early end not)."""

    def __init__(self, runtime: Any):
        self.tokens = 0
        self.engines = [e for e in getattr(runtime, "engines", []) if hasattr(e, "model")]
        for engine in self.engines:
            original = engine.model.generate
            pad = engine.model.config.pad_token_id

            def generate(
                *args: Any, _original: Callable[..., Any] = original, _pad: int = pad, **kwargs: Any
            ) -> Any:
                out = _original(*args, **kwargs)
                self.tokens += int((out[:, 1:] != _pad).sum())
                return out

            engine.model.generate = generate


def batch_call(model: Model, runtime: Any, items: list[Any], last: dict[str, Any]) -> Callable[[], float]:
    def call() -> float:
        last["results"] = runtime.predict_batch(items)
        return counted(model, runtime, last["results"])

    return call


def timed(
    bench: Bench, call: Callable[[], float], min_calls: int, warm_up: bool = True
) -> tuple[float, float, int]:
    """(counted, seconds, calls) of `call` repeated for plan.raw_s, after one warm-up call
    (smoke mode warms up once per runtime: its figures are not read)."""
    if warm_up:
        call()
    total, calls = 0.0, 0
    start = time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < bench.plan.raw_s:
        total += call()
        calls += 1
    return total, time.perf_counter() - start, calls


def raw_phase(bench: Bench, model: Model, images: list[bytes]) -> None:
    import torch

    from service.model_service import worker_device
    from service.model_store import load_task_runtime
    from service.settings import Settings
    from service.tasks import TASKS

    phase = f"{model.key} raw"
    if not bench.fits(phase, 30 if not bench.plan.smoke else 5):
        return
    task = TASKS.get(model.task)

    def load() -> Any:
        environ = {**os.environ, **model.env, "PAIS_DEVICE": bench.plan.device}
        settings = Settings.from_env(environ)
        if "TORCH_HOME" in model.env:
            os.environ["TORCH_HOME"] = model.env["TORCH_HOME"]
        return load_task_runtime(task, settings, device=worker_device(settings.device, 1))

    started = time.perf_counter()
    try:
        runtime = load()
    except Exception as error:  # not at hand here (package, store copy, system library)
        if model.key != model.task:
            raise
        stand_in(bench, model, f"{type(error).__name__}: {str(error).splitlines()[0][:300]}")
        started = time.perf_counter()
        runtime = load()
    load_s = time.perf_counter() - started
    cards = runtime.cards
    card = cards[0]
    raw: dict[str, Any] = {
        "unit": UNITS[model.task],
        "load_s": round(load_s, 2),
        "by_batch": {},
        "what": "predict_batch on encoded inputs (JPEG bytes, sentences, user ids), results on the host",
    }
    model.result.update(model=card.name, source=card.source, version=card.version, placement=None)
    if model.weights == Model.weights:  # as configured, and it loaded: its own weights
        where = card.details.get("loaded_from")
        model.weights = f"pretrained: {card.source} ({card.version})" + (f", from {where}" if where else "")
    model.result["placement_raw"] = card.details.get("placement")
    on_gpu = torch.cuda.is_available() and bench.plan.device.startswith("cuda")
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    counter = TokenCounter(runtime) if model.task == "translation" else None
    min_calls = 1 if bench.plan.smoke else 3
    last: dict[str, Any] = {}
    try:
        for n in bench.plan.raw_batches[model.task]:
            items = raw_items(model, runtime, n, images)
            before = counter.tokens if counter else 0
            warm_up = not bench.plan.smoke or not raw["by_batch"]
            total, seconds, calls = timed(bench, batch_call(model, runtime, items, last), min_calls, warm_up)
            row = {"per_s": total / seconds, "calls": calls, "seconds": round(seconds, 3)}
            if counter and counter.engines:
                # the warm-up call's tokens are not in `total`'s seconds: count the timed calls only
                row["output_tokens_per_s"] = (counter.tokens - before) * calls / (calls + warm_up) / seconds
            raw["by_batch"][str(n)] = row
            bench.log(f"{model.key} raw: batch {n}: {row['per_s']:.1f} {raw['unit']}/s")
        best = max(raw["by_batch"], key=lambda k: raw["by_batch"][k]["per_s"])
        raw["best_batch"] = int(best)
        raw["per_s"] = raw["by_batch"][best]["per_s"]
        if counter and counter.engines:
            raw["output_tokens_per_s"] = raw["by_batch"][best].get("output_tokens_per_s")
        if model.task == "detection":
            # post-processing and the answer grow with the boxes found (random weights find many)
            found = [len(result.detections) for result in last["results"]]
            raw["detections_per_image"] = sum(found) / len(found)
        if model.task == "classification":
            model.result["raw_forward"] = forward_ceiling(bench, model, runtime)
        if on_gpu:
            raw["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        model.result["raw"] = raw
    finally:
        close = getattr(runtime, "close", None)
        if close is not None:
            close()
        del runtime
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()


def forward_ceiling(bench: Bench, model: Model, runtime: Any) -> dict[str, Any]:
    """The network alone on a prepared batch in the compute dtype and layout: no decode,
    no resize, no host copies but the logits' top-5."""
    import torch

    base = getattr(runtime, "default", runtime)
    placement = base.placement
    height, width = base.preprocess.output_size
    result: dict[str, Any] = {"unit": "images", "by_batch": {}, "what": "network forward on a device batch"}
    for n in bench.plan.raw_batches["forward"]:
        batch = torch.randn(n, 3, height, width, device=placement.device).to(placement.dtype)
        if placement.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)

        def call(batch: torch.Tensor = batch, n: int = n) -> float:
            with torch.inference_mode():
                base.network(batch).topk(5, dim=1)[0].cpu()
            return float(n)

        warm_up = not bench.plan.smoke or not result["by_batch"]
        total, seconds, calls = timed(bench, call, 1 if bench.plan.smoke else 5, warm_up)
        result["by_batch"][str(n)] = {"per_s": total / seconds, "calls": calls, "seconds": round(seconds, 3)}
        bench.log(f"{model.key} forward: batch {n}: {total / seconds:.1f} images/s")
    best = max(result["by_batch"], key=lambda k: result["by_batch"][k]["per_s"])
    result.update(best_batch=int(best), per_s=result["by_batch"][best]["per_s"])
    return result


# --- the service -------------------------------------------------------------------------------


def server_env(bench: Bench, models: list[Model], tasks: list[str]) -> dict[str, str]:
    from tests.servers import service_env

    env = {
        "PAIS_DEVICE": bench.plan.device,
        "PAIS_TASKS": ",".join(tasks),
        "PAIS_TRANSLATION_SERVE_IN": "model-service",
        "PAIS_RECOMMENDATION_SERVE_IN": "model-service",
        "PAIS_CLASSIFICATION_MAX_IMAGES": str(max(64, bench.plan.batch_items)),
        "PAIS_DETECTION_MAX_IMAGES": str(max(64, bench.plan.batch_items)),
    }
    if bench.plan.smoke:
        env["OMP_NUM_THREADS"] = "1"
    for model in models:
        env.update(model.env)
    # service_env puts the repository on PYTHONPATH; keep what the caller's had (a lent
    # machine's carried packages live there) and the lingua stand-in where it is needed.
    paths = [str(REPO)]
    if "translation" in tasks and bench.lingua_shim:
        paths.append(str(SHIMS))
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return service_env(**env)


class Server:
    """`bentoml serve service.gateway:PAIS` as a subprocess: started, waited for, stopped."""

    def __init__(self, bench: Bench, name: str, models: list[Model]):
        self.bench, self.name, self.models = bench, name, models
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.info: dict[str, Any] = bench.report["servers"].setdefault(name, {})

    def start(self) -> None:
        from tests.servers import free_port

        bench = self.bench
        tasks = sorted({m.task for m in self.models})
        env = server_env(bench, self.models, tasks)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = bench.workdir / f"server-{self.name}.log"
        command = [sys.executable, "-m", "bentoml", "serve", "service.gateway:PAIS"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        shown = {k: v for k, v in env.items() if k.startswith("PAIS_") and not k.startswith("PAIS_BENCH")}
        shown |= {k: env[k] for k in ("TORCH_HOME", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in env}
        bench.log(f"server {self.name}: starting on port {port} with {json.dumps(shown, sort_keys=True)}")
        self.info.update(env=shown, log=str(self.log_path))
        self.started = time.perf_counter()
        self.info["started_at_s"] = round(bench.elapsed(), 1)  # startup_s overlaps raw phases if early
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self) -> None:
        from tests.servers import _wait_ready

        assert self.process is not None
        timeout = max(10.0, min(self.bench.plan.server_start_s, self.bench.remaining()))
        _wait_ready(self.process, self.url + "/readyz", str(self.log_path), timeout)
        self.info["startup_s"] = round(time.perf_counter() - self.started, 1)
        self.bench.log(f"server {self.name}: ready {self.info['startup_s']} s after its start")

    def stop(self) -> None:
        from tests.servers import stop

        if self.process is not None:
            stop(self.process, grace_s=20)
            self.process = None


def served_placements(url: str) -> dict[str, dict[str, Any]]:
    """{task: {"model", "placement", "source"}} from GET /models (the first card of each)."""
    answer = httpx.get(url + "/models", timeout=60).json()["models"]
    out: dict[str, dict[str, Any]] = {}
    for card in answer:
        out.setdefault(
            card["task"],
            {
                "model": card["name"],
                "source": card["source"],
                "placement": card.get("details", {}).get("placement"),
            },
        )
    return out


def requests_for(bench: Bench, model: Model, images: list[bytes], url: str) -> dict[str, Request]:
    """The two request shapes: one item, and plan.batch_items items per request."""
    n = bench.plan.batch_items
    if model.task in ("classification", "detection"):
        path = "/classify" if model.task == "classification" else "/detect"
        one_body, one_type = multipart("images", [images[0]])
        many_body, many_type = multipart("images", [images[i % len(images)] for i in range(n)])
        return {
            "single": Request("POST", path, one_body, one_type, 1),
            "batch": Request("POST", path, many_body, many_type, n),
        }
    if model.task == "translation":
        many = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
        return {
            "single": json_request("/translate", {"texts": SENTENCES[:1], "source": "en", "target": "es"}, 1),
            "batch": json_request("/translate", {"texts": many, "source": "en", "target": "es"}, n),
        }
    if model.task == "speech":
        many = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(n))
        return {
            "single": json_request("/synthesize", {"text": SENTENCES[0]}, 1, audio=True),
            "batch": json_request("/synthesize", {"text": many}, n, audio=True),
        }
    if model.task == "recommendation":
        user = recommendation_user(url)
        return {"single": json_request("/recommend", {"user_id": user, "k": 10}, 1)}
    raise ValueError(model.task)


def recommendation_user(url: str) -> str:
    """A user the served model knows (its /recommend answer is personal, not popular)."""
    for candidate in ("196", "1", "u0", "u1"):
        answer = httpx.post(url + "/recommend", json={"user_id": candidate, "k": 10}, timeout=60)
        if answer.status_code == 200 and answer.json().get("strategy") == "personal":
            return candidate
    return "196"


def service_phases(bench: Bench, model: Model, url: str, images: list[bytes]) -> None:
    raw = model.result.get("raw", {}).get("per_s")
    forward = model.result.get("raw_forward", {}).get("per_s")
    service: dict[str, Any] = model.result.setdefault("service", {})
    for shape, request in requests_for(bench, model, images, url).items():
        phase = f"{model.key} service {shape}"
        need = bench.plan.phase_s + (5 if bench.plan.smoke else 15)
        if not bench.fits(phase, need):
            continue
        clients = bench.plan.clients if shape == "single" else bench.plan.batch_clients
        try:
            measured = http_load(url, request, clients, bench.plan.phase_s, bench.plan.processes)
        except Exception as error:
            bench.error(phase, error)
            continue
        measured["ratio"] = measured["per_s"] / raw if raw else None
        if forward:
            measured["ratio_to_forward"] = measured["per_s"] / forward
        service[shape] = measured
        errors = f", {measured['errors']} errors ({measured['error_sample']})" if measured["errors"] else ""
        ratio = f"{measured['ratio']:.3f}" if measured["ratio"] is not None else "n/a"
        bench.log(
            f"{phase}: {clients} clients x {request.items}/request: {measured['per_s']:.1f} "
            f"{UNITS[model.task]}/s, ratio to raw {ratio}, p50 {measured['p50_ms']:.0f} ms{errors}"
        )
        bench.write()


def batch_sizes(url: str) -> dict[str, Any]:
    try:
        return httpx.get(url + "/stats", timeout=60).json()
    except Exception as error:  # a figure, not a gate
        return {"error": repr(error)}


def measure_server(bench: Bench, server: Server, images: list[bytes]) -> None:
    """Wait for `server` (started now unless it was already), run its models' phases, read
    its workers, GPU memory and batch statistics, stop it."""
    name = server.name
    models = [m for m in server.models if "raw" in m.result]
    try:
        if not models:
            bench.skip(f"server {name}", "no model of it loaded in the raw phase")
            return
        if server.process is None:
            if not bench.fits(f"server {name}", 60 if not bench.plan.smoke else 20):
                return
            server.start()
        server.wait_ready()
        url, info = server.url, server.info
        placements = served_placements(url)
        for model in models:
            model.result["placement"] = placements.get(model.task, {}).get("placement")
            bench.log(f"{model.key}: served as {placements.get(model.task)}")
        for model in models:
            service_phases(bench, model, url, images)
        info["batches_formed"] = batch_sizes(url)
        assert server.process is not None
        workers = probe.server_workers(server.process.pid)
        memory = probe.memory_by_service(workers, own_pid=os.getpid())
        info.update(workers=workers, gpu_memory_mib=memory)
        entry = [w for w in workers if w["service"] == "pais"]
        info["entry_loaded_torch"] = any(w["torch_loaded"] for w in entry) if entry else None
        for model in models:
            service_name = f"pais-{model.task}"
            model.result["gpu_memory_mib"] = memory.get(service_name)
            model.result["workers"] = [
                {k: w[k] for k in ("pid", "worker_id", "gpu", "gpu_memory_mib", "cuda_visible_devices")}
                for w in workers
                if w["service"] == service_name
            ]
        for line in describe_workers(workers, memory):
            bench.log(f"server {name}: {line}")
    except Exception as error:
        bench.error(f"server {name}", error)
    finally:
        server.stop()


def describe_workers(workers: list[dict[str, Any]], memory: dict[str, Any]) -> list[str]:
    lines = []
    for worker in workers:
        gpu = worker.get("gpu")
        lines.append(
            f"{worker['service']} worker {worker['worker_id']} (pid {worker['pid']}): GPU {gpu}, "
            f"{worker.get('gpu_memory_mib')} MiB, CUDA_VISIBLE_DEVICES={worker['cuda_visible_devices']}, "
            f"torch loaded: {worker['torch_loaded']}"
        )
    if "unmapped" in memory:
        lines.append(f"GPU memory of processes not matched to a worker: {memory['unmapped']}")
    return lines


# --- the run -----------------------------------------------------------------------------------


def run(bench: Bench) -> None:
    plan = bench.plan
    describe_machine(bench)
    bench.log(
        f"plan: {'SMOKE (CPU, tiny counts)' if plan.smoke else 'GPU'}; device {plan.device}; "
        f"{plan.phase_s:g} s per HTTP phase; {plan.clients} clients x 1 item and "
        f"{plan.batch_clients} clients x {plan.batch_items} items; {plan.processes} load processes; "
        f"budget {plan.budget_s:.0f} s"
    )
    bench.log(
        "serving: every task in a model service (PAIS_TRANSLATION_SERVE_IN=model-service and "
        "PAIS_RECOMMENDATION_SERVE_IN=model-service: a neural translator and any GPU model belong in one)"
    )
    if plan.smoke:
        import torch

        # A busy 2-core machine: two intra-op threads per process spin against each other
        # (EfficientNet-Lite0's forward went from ~70 ms to ~600 ms); one each, servers too.
        torch.set_num_threads(1)
    bench.lingua_shim = lingua_shim_needed()  # asked once: the shim is on sys.path after this
    if bench.lingua_shim:
        sys.path.insert(0, str(SHIMS))
        bench.log(
            "lingua is not installed: its stand-in (benchmarks/gpu_kit/shims) serves; "
            "source=auto is not measured"
        )
        bench.report["machine"]["lingua"] = "stand-in (benchmarks/gpu_kit/shims): no language identification"
    images = sample_images()
    models = models_to_bench(bench)
    for model in models:
        bench.report["models"][model.key] = model.result
        model.result.update(task=model.task, server=model.server)
    names = ("main", "resnet50")
    servers = {name: Server(bench, name, [m for m in models if m.server == name]) for name in names}
    # Smoke mode overlaps server start-up with raw phases (start-up is most of a CPU run's
    # time): the resnet50 server starts at once (its source is settled), the main one once
    # its models' raw phases have settled theirs (stand-ins). On a GPU nothing else runs
    # while a figure is taken.
    overlap = plan.smoke
    if overlap:
        servers["resnet50"].start()
    try:
        for name in names:
            if overlap and servers["main"].process is None and name != "main":
                servers["main"].start()
            for model in servers[name].models:
                try:
                    raw_phase(bench, model, images)
                except Exception as error:
                    bench.error(f"{model.key} raw", error)
                model.result.update(weights=model.weights, notes=model.notes, settings=model.env)
                bench.write()
        for server in servers.values():
            measure_server(bench, server, images)
            bench.write()
    finally:
        for server in servers.values():
            server.stop()
    bench.report["problems"] = problems = validate(_finite(bench.report))
    summary(bench, models)
    report = bench.report
    report["complete"] = not report["skipped"] and not report["errors"] and not problems


def summary(bench: Bench, models: list[Model]) -> None:
    print(f"\nPAIS GPU benchmark ({bench.report['mode']}), ratios against the raw runtime in this run")
    header = (
        f"{'model':38} {'unit':>13} {'raw':>10} {'1/request':>10} {'ratio':>6} {'batch':>10} {'ratio':>6}"
    )
    print(header + f" {'GPU MiB':>8}  placement")
    for model in models:
        result = model.result
        raw = result.get("raw", {}).get("per_s")
        single = result.get("service", {}).get("single", {})
        batch = result.get("service", {}).get("batch", {})

        def number(value: Any, width: int = 10, digits: int = 1) -> str:
            return f"{value:{width}.{digits}f}" if isinstance(value, int | float) else f"{'-':>{width}}"

        memory = result.get("gpu_memory_mib")
        print(
            f"{model.key:38} {UNITS[model.task]:>13} {number(raw)} {number(single.get('per_s'))} "
            f"{number(single.get('ratio'), 6, 3)} {number(batch.get('per_s'))} "
            f"{number(batch.get('ratio'), 6, 3)} "
            f"{memory if isinstance(memory, str) else number(memory, 8, 0):>8}  {result.get('placement')}"
        )
        forward = result.get("raw_forward", {}).get("per_s")
        if forward:
            print(
                f"{'  forward pass alone (ceiling)':38} {'images':>13} {number(forward)} "
                f"{'':>10} {number(single.get('ratio_to_forward'), 6, 3)} {'':>10} "
                f"{number(batch.get('ratio_to_forward'), 6, 3)}"
            )
        print(f"{'':38} weights: {model.weights}")
    classification = next((m for m in models if m.key == "classification"), None)
    if classification and not bench.plan.smoke:
        service = classification.result.get("service", {})
        checks = {
            "batch_ratio_to_forward": service.get("batch", {}).get("ratio_to_forward"),
            "single_images_per_s": service.get("single", {}).get("per_s"),
        }
        bench.report["targets"] = {
            key: {
                "target": TARGETS[key],
                "measured": value,
                "met": value is not None and value >= TARGETS[key],
            }
            for key, value in checks.items()
        }
        print(f"targets (issue 18, not gates): {json.dumps(bench.report['targets'])}")
    for name, server in bench.report["servers"].items():
        print(f"server {name}: GPU memory per service {server.get('gpu_memory_mib')}; entry loaded torch: "
              f"{server.get('entry_loaded_torch')}")  # fmt: skip
    for item in bench.report["skipped"]:
        print(f"skipped: {item['phase']}: {item['reason']}")
    for item in bench.report["errors"]:
        print(f"error: {item['phase']}: {item['error']}")
    for problem in bench.report["problems"]:
        print(f"incomplete: {problem}")


# --- the report's shape ------------------------------------------------------------------------
#
# {"schema": "pais-bench-gpu/1", "mode": "gpu" | "smoke", "started_at", "elapsed_s", "complete",
#  "plan": {device, budget_s, phase_s, raw_s, clients, batch_items, batch_clients, processes,
#           raw_batches, server_start_s},
#  "machine": {python, cpus, torch, cuda, gpus: [{index, uuid, name, memory_total_mib,
#              memory_used_mib, driver}], onnxruntime, onnxruntime_providers, bentoml, [lingua]},
#  "models": {"classification" | "classification:torchvision:resnet50" | "detection" |
#             "translation" | "speech" | "recommendation": {
#      task, server ("main" | "resnet50"), model, source, version, weights (what they are:
#      "pretrained: ..." or "random: ..."), notes, settings (the PAIS_* that select it),
#      placement (GET /models), placement_raw (the raw runtime's card),
#      raw: {unit, per_s, best_batch, by_batch: {n: {per_s, calls, seconds[, output_tokens_per_s]}},
#            load_s, what[, peak_gpu_memory_mib][, output_tokens_per_s][, detections_per_image]},
#      raw_forward (classification): {unit, per_s, best_batch, by_batch, what},
#      service: {"single" | "batch": {clients, processes, items_per_request, requests, errors,
#                error_sample, seconds, per_s, ratio (to raw), [ratio_to_forward], p50_ms, p95_ms}},
#      gpu_memory_mib: MiB summed over the service's workers | "n/a (no GPU)",
#      workers: [{pid, worker_id, gpu (index) | "n/a (no GPU)", gpu_memory_mib, cuda_visible_devices}]}},
#  "servers": {"main" | "resnet50": {env (PAIS_* etc.), log, startup_s, batches_formed (/stats),
#              workers: [{pid, service, worker_id, cuda_visible_devices, torch_loaded, gpu,
#              gpu_memory_mib}], gpu_memory_mib: {service: MiB, ["benchmark process"], ["unmapped"]},
#              entry_loaded_torch}},
#  "targets" (gpu mode): {batch_ratio_to_forward | single_images_per_s: {target, measured, met}},
#  "skipped": [{phase, reason}], "errors": [{phase, error, traceback}]}
# Units: images/s, sentences/s (translation), seconds of audio per second (speech),
# requests/s (recommendation). Unmeasurable figures are null.

MODEL_KEYS = (
    "task",
    "server",
    "model",
    "weights",
    "placement",
    "raw",
    "service",
    "gpu_memory_mib",
    "workers",
)


def validate(report: dict[str, Any]) -> list[str]:
    """What is missing or wrong in a report: every model measured raw and served in both
    shapes (one shape for recommendation), every figure finite, every ratio above 0."""
    problems = []
    for key in ("schema", "mode", "machine", "plan", "models", "servers", "skipped", "errors", "complete"):
        if key not in report:
            problems.append(f"no {key!r}")
    if report.get("schema") != SCHEMA:
        problems.append(f"schema {report.get('schema')!r}, expected {SCHEMA!r}")
    expected = {"classification", "classification:torchvision:resnet50", "detection", "translation", "speech",
                "recommendation"}  # fmt: skip
    if set(report.get("models", {})) != expected:
        problems.append(f"models {sorted(report.get('models', {}))}, expected {sorted(expected)}")
    for key, model in report.get("models", {}).items():
        for field_name in MODEL_KEYS:
            if field_name not in model:
                problems.append(f"{key}: no {field_name!r}")
        if not _positive(model.get("raw", {}).get("per_s")):
            problems.append(f"{key}: raw per_s {model.get('raw', {}).get('per_s')!r}")
        shapes = ("single",) if model.get("task") == "recommendation" else ("single", "batch")
        for shape in shapes:
            measured = model.get("service", {}).get(shape)
            if not measured:
                problems.append(f"{key}: no service {shape} figure")
                continue
            for name in ("per_s", "ratio"):
                if not _positive(measured.get(name)):
                    problems.append(f"{key}: service {shape} {name} {measured.get(name)!r}")
            if measured.get("errors"):
                problems.append(
                    f"{key}: service {shape}: {measured['errors']} errors: {measured.get('error_sample')}"
                )
        if model.get("task") == "classification" and not _positive(model.get("raw_forward", {}).get("per_s")):
            problems.append(f"{key}: no forward-pass ceiling")
        if not model.get("workers"):
            problems.append(f"{key}: no worker processes found")
    problems += [f"non-finite number at {path}" for path in _non_finite(report)]
    return problems


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _non_finite(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{index}]")


# --- carrying it to a lent machine -------------------------------------------------------------


def download_wheels(directory: Path) -> int:
    """The README's pip download, for CARRY at the versions this environment has."""
    from importlib import metadata

    directory.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={metadata.version(name)}" for name in CARRY]
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                 "manylinux2014_x86_64", "manylinux1_x86_64"]  # fmt: skip
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp", "-d", str(directory)]  # fmt: skip
    for platform in platforms:
        command += ["--platform", platform]
    done = subprocess.run(command + pins)
    total = sum(p.stat().st_size for p in directory.glob("*.whl"))
    print(f"{len(list(directory.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {directory}")
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--require-gpu", action="store_true", help="exit 2 without a GPU (unless smoke mode)")
    parser.add_argument(
        "--download-wheels", type=Path, metavar="DIR", help="fetch the wheels a lent GPU lacks"
    )
    args = parser.parse_args(argv)
    if args.download_wheels:
        return download_wheels(args.download_wheels)
    smoke = os.environ.get("PAIS_BENCH_SMOKE", "").strip().lower() in ("1", "true", "yes")
    os.environ.setdefault("PAIS_BENCH_REAL_TORCH_HOME", os.environ.get("TORCH_HOME", "") or _torch_home())
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[name] = "1"
    os.environ["https_proxy"] = os.environ["HTTPS_PROXY"] = CLOSED_PROXY
    import torch

    if not smoke and not torch.cuda.is_available():
        print(
            "benchmarks.gpu: no CUDA device here, nothing measured "
            "(PAIS_BENCH_SMOKE=1 runs the CPU smoke version)"
        )
        return 2 if args.require_gpu else 0
    name = "gpu-smoke.json" if smoke else "gpu.json"
    out = Path(os.environ.get("PAIS_BENCH_OUT") or REPO / "benchmarks" / "results" / name)
    keep = os.environ.get("PAIS_BENCH_WORKDIR")
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="pais-bench-gpu-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(Plan.make(smoke), out, workdir)
    # a timeout's SIGTERM unwinds like Ctrl-C: the servers are stopped and the JSON written
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        run(bench)
    except BaseException as error:
        bench.error("run", error)
        if not isinstance(error, Exception):
            raise
    finally:
        bench.write()
        print(f"\nJSON written to {out} ({bench.elapsed():.0f} s)")
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    if bench.report["errors"] or (smoke and bench.report["skipped"]):
        return 1
    return 0


def _torch_home() -> str:
    return str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch")


if __name__ == "__main__":
    sys.exit(main())
