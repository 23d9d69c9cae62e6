"""Where models run, with the CUDA code paths' decisions forced on the CPU: the placement
(device, dtype, layout, accelerated input path) choose_placement resolves, the batched
(nvJPEG) decode it selects, the device every task's model-service worker loads on, that
no service reserves a GPU, and onnxruntime's CUDA provider chosen and reported in the card.

No kernel runs on a GPU here: `torch.cuda.is_available` is patched where a decision reads
it, and calls that would touch a device are recorded instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from models.device import Placement, choose_placement
from service.model_service import model_service, worker_device
from service.runners import RemoteRunner
from service.settings import Settings
from service.tasks import TASKS
from tests.images import encode, photo

RUNTIME_TASKS = [task.name for task in TASKS.all() if task.runtime is not None]


@pytest.fixture
def cuda_present(monkeypatch):
    """torch believes in two GPUs; nothing may actually run on them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# --- placement: device, dtype, layout, input path -------------------------------------------


def test_auto_picks_cuda_fp16_channels_last_and_the_accelerated_inputs(cuda_present):
    placement = choose_placement()
    assert placement.device == torch.device("cuda")
    assert placement.dtype == torch.float16
    assert placement.channels_last and placement.accelerated
    assert placement.describe() == "cuda float16, channels_last"


def test_every_choice_can_be_forced_on_cuda(cuda_present):
    assert choose_placement("cuda:1").device == torch.device("cuda:1")
    assert choose_placement("cuda", "bf16").dtype == torch.bfloat16
    assert choose_placement("cuda", "fp32").dtype == torch.float32
    assert choose_placement("cuda", torch.float16, channels_last=False).channels_last is False
    assert choose_placement("cuda", accelerated=False).accelerated is False


def test_cpu_defaults_to_fp32_without_the_accelerated_inputs(cuda_present):
    placement = choose_placement("cpu")
    assert (placement.device.type, placement.dtype, placement.accelerated) == ("cpu", torch.float32, False)


def test_without_cuda_auto_is_the_cpu_and_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_placement("auto").device.type == "cpu"
    assert choose_placement("auto").dtype == torch.float32
    with pytest.raises(ValueError, match="CUDA is not available"):
        choose_placement("cuda")
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        choose_placement("cpu", "fp8")


def test_the_placement_names_the_gpu_a_worker_landed_on():
    placement = Placement(torch.device("cuda:1"), torch.float16, True, True)
    assert placement.describe().startswith("cuda:1 ")


# --- decoding: one batched decode_jpeg call (nvJPEG) on CUDA and accelerated placements --------


@pytest.fixture
def recorded_decode_jpeg(monkeypatch):
    """models.imaging.decode_jpeg recording its calls, decoding on the CPU whatever the
    device asked for (the device decoder is not here)."""
    import models.imaging as imaging

    real = imaging.decode_jpeg
    calls: list[dict[str, Any]] = []

    def decode_jpeg(data, mode=None, device="cpu"):
        calls.append({"batched": isinstance(data, list), "count": len(data) if isinstance(data, list) else 1,
                      "device": torch.device(device)})  # fmt: skip
        return real(data, mode=mode)

    monkeypatch.setattr(imaging, "decode_jpeg", decode_jpeg)
    return calls


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return [encode(photo(name), "JPEG", quality=85) for name in ("chelsea", "coffee", "astronaut")]


def test_cuda_decodes_all_jpegs_in_one_device_call(recorded_decode_jpeg, jpegs, monkeypatch):
    from models.imaging import decode_many

    # the decoded tensors stay on the CPU: moving them is the one step that needs the device
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *args, **kwargs: self)
    results = decode_many(jpegs, device="cuda")
    assert recorded_decode_jpeg == [{"batched": True, "count": 3, "device": torch.device("cuda")}]
    assert all(isinstance(r, torch.Tensor) and r.shape[0] == 3 for r in results)


def test_cpu_decodes_image_by_image_unless_told(recorded_decode_jpeg, jpegs):
    from models.imaging import decode_many

    decode_many(jpegs, device="cpu")
    assert recorded_decode_jpeg == []  # torchvision's decode_image per image, in the thread pool
    decode_many(jpegs, device="cpu", batched_jpeg=True)
    assert recorded_decode_jpeg == [{"batched": True, "count": 3, "device": torch.device("cpu")}]


@pytest.mark.parametrize("accelerated", [True, False])
def test_image_runtimes_take_the_batched_path_from_their_placement(recorded_decode_jpeg, jpegs, accelerated):
    from models.classification import ImageClassifier

    clf = ImageClassifier.load("default", device="cpu", dtype="fp32", accelerated=accelerated)
    recorded_decode_jpeg.clear()
    results = clf.classify_many(jpegs, 1)
    assert all(not isinstance(r, Exception) for r in results)
    assert bool(recorded_decode_jpeg) is accelerated
    if accelerated:
        assert recorded_decode_jpeg == [{"batched": True, "count": 3, "device": torch.device("cpu")}]


# --- model services: the same device choice for every task, no GPU reserved -------------------


def _worker_devices(monkeypatch, task_name: str, settings: Settings, workers: int) -> list[str]:
    """The device each model-service worker of `task_name` loads its runtime on."""
    import bentoml

    import service.model_service as module

    loaded: list[str] = []
    monkeypatch.setattr(module, "drain_on_sigterm", lambda *args: None, raising=False)  # a worker's, not ours
    monkeypatch.setattr(
        module, "load_task_runtime", lambda task, settings, device=None: loaded.append(device)
    )
    service = model_service(TASKS.get(task_name), settings)
    for index in range(1, workers + 1):
        monkeypatch.setattr(bentoml.server_context, "worker_index", index)
        service.inner()
    return loaded


@pytest.mark.parametrize("task", RUNTIME_TASKS)
def test_every_task_spreads_its_model_workers_over_the_gpus_alike(monkeypatch, cuda_present, task):
    settings = Settings.from_env({"PAIS_DEVICE": "cuda"})
    assert _worker_devices(monkeypatch, task, settings, 3) == ["cuda:0", "cuda:1", "cuda:0"]


@pytest.mark.parametrize("task", RUNTIME_TASKS)
def test_one_gpu_or_an_explicit_device_is_used_as_it_is(monkeypatch, task):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _worker_devices(monkeypatch, task, Settings.from_env({"PAIS_DEVICE": "cuda"}), 2) == ["cuda"] * 2
    explicit = Settings.from_env({"PAIS_DEVICE": "cuda:1"})
    assert _worker_devices(monkeypatch, task, explicit, 2) == ["cuda:1"] * 2
    assert _worker_devices(monkeypatch, task, Settings.from_env({"PAIS_DEVICE": "cpu"}), 2) == ["cpu"] * 2


@pytest.mark.parametrize("task", RUNTIME_TASKS)
def test_no_model_service_reserves_a_gpu(task):
    """BentoML gives a service with resources={"gpu": 1} a device of its own (the second
    such service on a one-GPU host gets CUDA_VISIBLE_DEVICES=1, which does not exist):
    services share GPUs by not asking for any."""
    service = model_service(TASKS.get(task), Settings.from_env({"PAIS_DEVICE": "cuda"}))
    assert "gpu" not in (service.config.get("resources") or {})


@pytest.mark.parametrize("task", ["translation", "recommendation"])
def test_entry_served_runtimes_spread_over_the_gpus_like_model_services(monkeypatch, cuda_present, task):
    import bentoml

    import service.gateway as gateway

    loaded: list[str | None] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)  # load_inline's, process-wide
    monkeypatch.setattr(
        gateway, "load_task_runtime", lambda task, settings, device=None: loaded.append(device)
    )
    settings = Settings.from_env({"PAIS_DEVICE": "cuda"})
    for index in (1, 2):
        monkeypatch.setattr(bentoml.server_context, "worker_index", index)
        gateway.load_inline(TASKS.get(task), settings)
    assert loaded == [worker_device("cuda", 1, 2), worker_device("cuda", 2, 2)] == ["cuda:0", "cuda:1"]


# --- the runner's GPU check reads the card's placement -----------------------------------------


def _gpu_placements() -> dict[str, str]:
    """What each kind of runtime reports as `placement` when it runs on a GPU."""
    from models.speech.piper import PiperVoice
    from models.speech.vits import VitsVoice

    piper = object.__new__(PiperVoice)
    piper.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    vits = object.__new__(VitsVoice)
    vits.placement = Placement(torch.device("cuda"), torch.float16, False, True)
    return {
        "torch (image, translation, recommendation)": Placement(
            torch.device("cuda"), torch.float16, True, True
        ).describe(),
        "speech: Piper on onnxruntime": piper.describe(),
        "speech: VITS on torch": vits.describe(),
    }


class _Proxy:
    def __init__(self, placement: str):
        placement_ = placement

        class ToAsync:
            async def cards(self) -> list[dict[str, Any]]:
                return [{"details": {"placement": placement_}}]

        self.to_async = ToAsync()


def _chunking(placement: str) -> tuple[int, int]:
    runner = RemoteRunner("task", _Proxy(placement), max_batch_size=64)
    asyncio.run(runner._auto_chunk())
    return runner.chunk, runner.in_flight


def test_a_torch_runtime_on_a_gpu_gets_the_gpu_chunking():
    assert _chunking(_gpu_placements()["torch (image, translation, recommendation)"]) == (16, 2)
    assert _chunking("cpu float32, channels_last") == (1, 1)


@pytest.mark.parametrize("kind", ["speech: Piper on onnxruntime", "speech: VITS on torch"])
def test_a_speech_voice_on_a_gpu_gets_the_gpu_chunking(kind):
    assert _chunking(_gpu_placements()[kind]) == (16, 2)


# --- onnxruntime: the CUDA provider chosen when present, and reported -------------------------


@pytest.fixture
def onnxruntime_with_cuda(monkeypatch):
    """onnxruntime listing a CUDA provider; sessions record the providers asked for and run
    on the CPU, reporting the providers a CUDA build would report."""
    import onnxruntime

    asked: list[list[Any]] = []
    real = onnxruntime.InferenceSession

    class Session(real):
        def __init__(self, model, options=None, providers=None, **kwargs):
            asked.append(list(providers or []))
            super().__init__(model, options, providers=["CPUExecutionProvider"], **kwargs)

        def get_providers(self) -> list[str]:
            return [p[0] if isinstance(p, tuple) else p for p in asked[-1]]

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    return asked


@pytest.mark.parametrize(("device", "device_id"), [("auto", 0), ("cuda", 0), ("cuda:1", 1)])
def test_the_voice_takes_the_cuda_provider_and_reports_it(onnxruntime_with_cuda, device, device_id):
    from models.speech import SpeechSynthesizer

    tts = SpeechSynthesizer.load("default", device=device)
    assert onnxruntime_with_cuda[-1][0] == ("CUDAExecutionProvider", {"device_id": device_id})
    assert tts.cards[0].details["placement"] == "onnxruntime CUDA, fp32"  # what GET /models shows


def test_the_voice_reports_the_provider_that_actually_runs(monkeypatch):
    """A CUDA provider listed but not loadable (no CUDA libraries): onnxruntime falls back
    to the CPU, and the card says so rather than what was asked for."""
    import onnxruntime

    from models.speech import SpeechSynthesizer

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    tts = SpeechSynthesizer.load("default", device="cuda")
    assert tts.cards[0].details["placement"] == "onnxruntime CPU, fp32"
