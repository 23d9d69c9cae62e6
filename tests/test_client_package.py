"""The SDK as a package: what it depends on, what it imports, one method per endpoint on
both clients, result types that tolerate what newer servers add. No server needed."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import zipfile

import pytest

import pais
from pais import calls
from pais.results import Audio

from .servers import REPO

ENDPOINTS = [
    "classify",
    "embed",
    "detect",
    "detect_annotated",
    "analyze_video",
    "translate",
    "synthesize",
    "synthesize_stream",
    "recommend",
    "similar_items",
    "models",
]


def test_the_wheel_depends_on_httpx_only(tmp_path):
    """Built from a copy, so the worktree gets no build/ folder."""
    source = tmp_path / "client"
    shutil.copytree(
        REPO / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("pais_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
        entry_points = archive.read(
            next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        ).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert requires == ["httpx<1,>=0.25", 'boto3>=1.28; extra == "s3"']
    assert "pais = pais.cli:main" in entry_points


def test_importing_every_module_loads_no_torch_or_bentoml():
    code = (
        "import sys, pais, pais.batch, pais.cli, pais.sagemaker\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = sorted(loaded & {'torch', 'bentoml', 'numpy', 'PIL', 'boto3'})\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.strip() == ""  # boto3 too is imported only when S3 or SageMaker is used


def test_both_clients_have_one_method_per_endpoint_with_the_same_signature():
    for name in ENDPOINTS:
        builder = getattr(calls, name)
        for cls in (pais.Client, pais.AsyncClient):
            method = getattr(cls("http://127.0.0.1:1"), name)
            assert inspect.signature(method) == inspect.signature(builder), (cls.__name__, name)
            assert method.__doc__ == builder.__doc__ and method.__doc__


def test_async_methods_are_awaitable_and_sync_ones_are_not():
    client = pais.AsyncClient("http://127.0.0.1:1")
    pending = client.models()
    assert inspect.isawaitable(pending)
    pending.close()  # never awaited: nothing was sent


def test_results_keep_unknown_fields_and_accept_missing_optional_ones():
    answer = {
        "model": "efficientnet-lite0",
        "predictions": [{"label": "tabby", "score": 0.9, "calibrated": True}],  # no "index"
        "latency_ms": 12,
    }
    result = pais.Classification.from_json(answer)
    assert result.top.label == "tabby" and result.top.index is None
    assert result.extra == {"latency_ms": 12} and result.top.extra == {"calibrated": True}
    assert result.to_json() == {
        "model": "efficientnet-lite0",
        "predictions": [{"label": "tabby", "score": 0.9, "index": None, "calibrated": True}],
        "latency_ms": 12,
    }
    video = pais.VideoAnalysis.from_json(
        {
            "duration_s": 3.0,
            "frames": [{"time_s": 0.0, "detections": [{"label": "cat", "score": 0.8, "box": [1, 2, 3, 4]}]}],
            "summary": {"cat": {"first_s": 0.0, "last_s": 2.0, "max_count": 1, "frames": 3}},
            "width": 640,
        }
    )
    assert video.frames[0].detections[0].box == (1, 2, 3, 4) and video.frames[0].labels == []
    assert video.summary["cat"].last_s == 2.0 and video.extra == {"width": 640}


def test_a_missing_required_field_says_so():
    with pytest.raises(pais.ResponseFormatError, match="'predictions'"):
        pais.Classification.from_json({"model": "m"})
    with pytest.raises(pais.ResponseFormatError, match="JSON object"):
        pais.Detections.from_json(["not", "an", "object"])


def test_audio_reads_its_wav_header(tmp_path):
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        wav.writeframes(b"\0\0" * 11025)
    audio = Audio(buffer.getvalue(), "audio/wav")
    assert (audio.sample_rate, audio.duration_s, audio.extension) == (22050, 0.5, "wav")
    assert Audio(b"", "audio/wav", {"x-sample-rate": "16000"}).sample_rate == 16000
    assert audio.save(tmp_path / "a.wav").read_bytes() == audio.content


def test_arguments_are_checked_before_anything_is_sent():
    with pytest.raises(ValueError, match="exactly one"):
        calls.recommend()
    with pytest.raises(TypeError, match="strings"):
        calls.translate([1, 2], target="es")
    with pytest.raises(ValueError, match="no images"):
        calls.classify([])
    call = calls.detect([b"x"], classes=["person", "cup"], score_threshold=0.5)
    assert call.form == {"classes": "person,cup", "score_threshold": "0.5"}  # None options left to the server


def test_cli_help_lists_every_batch_task():
    from pais.batch import TASKS

    result = subprocess.run([sys.executable, "-m", "pais", "batch", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    # the built-in batch tasks are named in the help (any other operation the server
    # declares with a batch format is accepted too)
    for task in TASKS:
        assert task in result.stdout, task
    assert sorted(TASKS) == sorted(set(ENDPOINTS) - {"models", "synthesize_stream"})
