"""POST /analyze_video against a real `bentoml serve` on 127.0.0.1, with videos made here
from real photos on a script (who is on screen when)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import TEST_MAX_VIDEO_BYTES, TEST_MAX_VIDEO_DURATION_S, TEST_MAX_VIDEO_FRAMES
from .images import CAT_LABELS, PHOTO_LABELS
from .videos import Appearance, scripted_video

pytestmark = pytest.mark.server

# A person leaves at 2.5 s, a cat shows from 1 s to 4 s, a cup from 2 s to 5 s; 6 s long.
SCRIPT = [
    Appearance("astronaut", 0.0, 2.5, (20, 20, 260, 260)),
    Appearance("chelsea", 1.0, 4.0, (340, 40, 280, 200)),
    Appearance("coffee", 2.0, 5.0, (60, 300, 240, 160)),
]
DURATION_S = 6.0


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Path:
    return scripted_video(tmp_path_factory.mktemp("video") / "scripted.mp4", SCRIPT, DURATION_S, fps=10)


def analyze(url: str, video: bytes, name: str = "clip.mp4", **form: str) -> httpx.Response:
    files = [("video", (name, video, "application/octet-stream"))]
    return httpx.post(f"{url}/analyze_video", files=files, data=form, timeout=180)


@pytest.mark.parametrize("sample_fps", [2.0, 1.0])
def test_summary_follows_the_script_within_one_sampling_step(pais_server, scripted, sample_fps):
    response = analyze(pais_server, scripted.read_bytes(), sample_fps=str(sample_fps))
    assert response.status_code == 200, response.text
    body = response.json()
    step = 1 / sample_fps
    assert body["duration_s"] == pytest.approx(DURATION_S)
    assert (body["width"], body["height"], body["sample_fps"]) == (640, 480, sample_fps)
    assert body["models"] == {"detect": "yolov3-tiny", "classify": "efficientnet-lite0"}
    assert [f["time_s"] for f in body["frames"]] == pytest.approx(
        [i * step for i in range(int(DURATION_S / step))]
    )
    for appearance in SCRIPT:
        entry = body["summary"][PHOTO_LABELS[appearance.photo]]
        assert appearance.start_s <= entry["first_s"] < appearance.start_s + step, (appearance, entry)
        assert appearance.end_s - step <= entry["last_s"] < appearance.end_s, (appearance, entry)
        assert entry["max_count"] >= 1
        assert entry["frames"] == pytest.approx((appearance.end_s - appearance.start_s) / step, abs=1)
    # frames where nothing is on screen (5 s and later) detect nothing
    assert all(f["detections"] == [] for f in body["frames"] if f["time_s"] >= 5.0)
    cat_frames = [f for f in body["frames"] if 2.5 <= f["time_s"] < 4.0]  # the cat's tile is the largest
    assert cat_frames and all(f["labels"][0]["label"] in CAT_LABELS for f in cat_frames)
    assert all(len(f["labels"]) == 3 for f in body["frames"])  # top_k defaults to 3


def test_classify_only_summarises_each_frames_top_label(pais_server, scripted):
    response = analyze(pais_server, scripted.read_bytes(), sample_fps="1", tasks="classify", top_k="1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["models"] == {"classify": "efficientnet-lite0"}
    assert all(f["detections"] == [] and len(f["labels"]) == 1 for f in body["frames"])
    cat_seen = [body["summary"][label] for label in CAT_LABELS if label in body["summary"]]
    assert cat_seen and 1.0 <= min(entry["first_s"] for entry in cat_seen) <= 3.0


def test_detection_options_apply_to_every_frame(pais_server, scripted):
    response = analyze(
        pais_server, scripted.read_bytes(), sample_fps="1", tasks="detect", classes="cup", max_detections="1"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["summary"]) == {"cup"} and body["summary"]["cup"]["max_count"] == 1
    assert all(f["labels"] == [] for f in body["frames"])


@pytest.mark.parametrize("suffix", [".avi", ".webm"])
def test_other_containers(pais_server, tmp_path, suffix):
    video = scripted_video(
        tmp_path / f"cat{suffix}", [Appearance("chelsea", 1.0, 3.0, (100, 100, 300, 200))], 4.0
    )
    response = analyze(pais_server, video.read_bytes(), name=video.name, tasks="detect")
    assert response.status_code == 200, response.text
    cat = response.json()["summary"]["cat"]
    assert (cat["first_s"], cat["last_s"]) == (1.0, 2.0)


def _long_video(tmp_path: Path) -> bytes:
    """Longer than the test server's duration limit, small in bytes."""
    path = scripted_video(tmp_path / "long.mp4", [], TEST_MAX_VIDEO_DURATION_S + 2, fps=2, size=(64, 48))
    return path.read_bytes()


def test_bad_videos_are_a_clear_4xx_and_the_server_carries_on(pais_server, scripted, tmp_path):
    data = scripted.read_bytes()
    cases = [
        ("corrupt (truncated) video", {"video": data[: len(data) // 2]}, 400, "could not be opened"),
        ("corrupt (zeroed) video", {"video": data[:64] + bytes(len(data) - 64)}, 400, "video: "),
        ("not a video", {"video": b"just some text"}, 415, "not a recognised video container"),
        ("an image", {"video": (Path(__file__).parent / "images.py").read_bytes()}, 415, "MP4/MOV"),
        ("empty file", {"video": b""}, 400, "the video file is empty"),
        (
            "over the duration limit",
            {"video": _long_video(tmp_path)},
            413,
            f"the limit is {TEST_MAX_VIDEO_DURATION_S} s",
        ),
        (
            "too many frames",
            {"video": data, "sample_fps": "10"},
            413,
            f"the limit is {TEST_MAX_VIDEO_FRAMES} frames",
        ),
        (
            "over the byte limit",
            {"video": data[:64] + bytes(TEST_MAX_VIDEO_BYTES)},
            413,
            "PAIS_VIDEO_MAX_BYTES",
        ),
        (
            "sample_fps zero",
            {"video": data, "sample_fps": "0"},
            400,
            "sample_fps: Input should be greater than 0",
        ),
        ("sample_fps too high", {"video": data, "sample_fps": "31"}, 400, "sample_fps"),
        (
            "unknown task",
            {"video": data, "tasks": "detect,segment"},
            400,
            "Input should be 'detect' or 'classify'",
        ),
        ("unknown class", {"video": data, "classes": "unicorn"}, 400, "unknown class(es) 'unicorn'"),
        ("score_threshold out of range", {"video": data, "score_threshold": "2"}, 400, "score_threshold"),
    ]
    for name, form, status, text in cases:
        video = form.pop("video")
        response = analyze(pais_server, video, **form)
        assert response.status_code == status, (name, response.text)
        assert text in response.json()["error"], (name, response.json())
    follow_up = analyze(pais_server, data, sample_fps="1", tasks="detect")
    assert follow_up.status_code == 200 and "cat" in follow_up.json()["summary"]


def test_missing_video_and_text_instead_of_a_file(pais_server):
    missing = httpx.post(f"{pais_server}/analyze_video", data={"sample_fps": "1"}, timeout=60)
    assert missing.status_code == 400 and "no video sent" in missing.json()["error"]
    text = httpx.post(f"{pais_server}/analyze_video", data={"video": "http://example.com/a.mp4"}, timeout=60)
    assert text.status_code == 400 and "uploaded as files" in text.json()["error"]
