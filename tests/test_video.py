"""Video container checks, frame sampling and the per-label summary, on videos written
here with OpenCV from real photos."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.video.decoder import VideoDecoder
from models.video.errors import VideoError
from models.video.frames import Limits, VideoFile, encode_jpeg
from models.video.header import sniff_container
from models.video.summary import summarize

from .images import photo
from .videos import Appearance, forged_avi, plain_video, scripted_video

ROOMY = Limits(max_duration_s=60, max_frames=1000, max_pixels=10_000_000)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """The same 3 s, 10 frames/s script in each container OpenCV writes here."""
    folder = tmp_path_factory.mktemp("videos")
    script = [Appearance("chelsea", 1.0, 2.0, (10, 10, 150, 100))]
    return {
        suffix: scripted_video(folder / f"cat{suffix}", script, 3.0, fps=10, size=(320, 240))
        for suffix in (".mp4", ".avi", ".webm")
    }


@pytest.mark.parametrize(("suffix", "kind"), [(".mp4", "mp4"), (".avi", "avi"), (".webm", "webm")])
def test_containers_are_recognised_and_sampled_on_time(videos, suffix, kind):
    data = videos[suffix].read_bytes()
    assert sniff_container(data) == kind
    with VideoFile(data) as video:
        assert (video.info.width, video.info.height, video.info.fps) == (320, 240, 10)
        frames = list(video.sample(2.0, ROOMY))
        assert video.duration_s == pytest.approx(3.0)
    assert [f.time_s for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert [f.index for f in frames] == [0, 5, 10, 15, 20, 25]
    # the cat shows from 1.0 s to before 2.0 s: its tile is non-white exactly then
    showing = [bool((f.bgr[20:100, 20:150] < 200).any()) for f in frames]
    assert showing == [False, False, True, True, False, False]
    assert frames[2].bgr.shape == (240, 320, 3)


def test_sampling_faster_than_the_frame_rate_takes_each_frame_once(videos):
    with VideoFile(videos[".avi"].read_bytes()) as video:
        frames = list(video.sample(30.0, ROOMY))
    assert [f.index for f in frames] == list(range(30))


def test_odd_sampling_rates_pick_the_first_frame_at_or_after_each_time(videos):
    with VideoFile(videos[".mp4"].read_bytes()) as video:
        times = [f.time_s for f in video.sample(0.7, ROOMY)]  # due at 0, 1.43, 2.86 s
    assert times == pytest.approx([0.0, 1.5, 2.9])


def test_sampled_frames_encode_as_jpeg(videos):
    with VideoFile(videos[".mp4"].read_bytes()) as video:
        frame = next(iter(video.sample(1.0, ROOMY)))
    data = encode_jpeg(frame)
    assert data[:3] == b"\xff\xd8\xff" and Image.open(io.BytesIO(data)).size == (320, 240)


@pytest.mark.parametrize(
    ("limits", "sample_fps", "message"),
    [
        (Limits(2, 1000, 10_000_000), 1.0, "video is 3.0 s long; the limit is 2 s"),
        (Limits(60, 5, 10_000_000), 2.0, "means 7 frames or more; the limit is 5 frames"),
        (Limits(60, 1000, 320 * 240 - 1), 1.0, "video frames are 320x240; the limit is 76799 pixels"),
    ],
    ids=["duration", "frames", "frame size"],
)
def test_limits_are_checked_before_decoding(videos, limits, sample_fps, message):
    with VideoFile(videos[".mp4"].read_bytes()) as video, pytest.raises(VideoError, match=message) as info:
        next(iter(video.sample(sample_fps, limits)))
    assert info.value.kind == "too_large"


def test_limits_hold_while_decoding_when_the_container_says_no_length(videos, monkeypatch):
    """Metadata can be missing: the duration limit is then enforced frame by frame."""
    with VideoFile(videos[".mp4"].read_bytes()) as video:
        monkeypatch.setattr(video, "info", type(video.info)(10.0, 320, 240, None))
        sampled = video.sample(1.0, Limits(1.5, 1000, 10_000_000))
        assert [f.time_s for f in (next(sampled), next(sampled))] == [0.0, 1.0]
        with pytest.raises(VideoError, match=r"longer than the limit of 1\.5 s"):
            next(sampled)


def test_broken_videos_are_refused(videos):
    data = videos[".mp4"].read_bytes()
    with pytest.raises(VideoError) as info:
        VideoFile(data[: len(data) // 2])  # mp4v puts its index at the end: cut, it cannot open
    assert info.value.kind == "corrupt"
    with pytest.raises(VideoError) as info:
        VideoFile(data[:64] + bytes(4096))
    assert info.value.kind == "corrupt"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"just some text, not a video at all", "unsupported"),
        ((Path(__file__)).read_bytes(), "unsupported"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "unsupported"),
    ],
    ids=["empty", "text", "python", "png"],
)
def test_header_refusals(data, kind):
    with pytest.raises(VideoError) as info:
        sniff_container(data)
    assert info.value.kind == kind
    if kind == "unsupported":
        assert "MP4/MOV (ISO BMFF), WebM/Matroska or AVI" in info.value.message


def test_temporary_file_is_removed(videos):
    video = VideoFile(videos[".avi"].read_bytes())
    path = Path(video._path)
    assert path.exists()
    video.close()
    assert not path.exists()


def test_summary_per_label():
    observations = [
        (1.0, ["cat", "cup", "cup"]),
        (0.0, []),
        (2.0, ["cup"]),
        (3.0, ["cat"]),
        (0.5, ["cat"]),
    ]
    assert summarize(observations) == {
        "cat": {"first_s": 0.5, "last_s": 3.0, "max_count": 1, "frames": 3},
        "cup": {"first_s": 1.0, "last_s": 2.0, "max_count": 2, "frames": 2},
    }
    assert summarize([]) == {}


def test_scripted_video_shows_the_photo_in_its_box(tmp_path):
    path = scripted_video(tmp_path / "v.avi", [Appearance("coffee", 0.0, 1.0, (0, 0, 120, 80))], 1.0)
    with VideoFile(path.read_bytes()) as video:
        (frame,) = list(video.sample(1.0, ROOMY))
    rgb = frame.bgr[..., ::-1].astype(int)
    coffee = np.asarray(Image.fromarray(photo("coffee")).resize((120, 80)))
    assert np.abs(rgb[:80, :120] - coffee).mean() < 12  # MJPG is lossy
    assert (rgb[100:, 200:] > 240).all()  # background elsewhere


# -- decoding in a sandbox child -------------------------------------------------------


@pytest.fixture(scope="module")
def decoder():
    with VideoDecoder(frames_per_chunk=4, chunk_timeout_s=30) as decoder:
        assert decoder.sandbox.wait_for_spares()
        yield decoder


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> bytes:
    """300 frames at 10 frames/s: 30 s of flat grey."""
    return plain_video(tmp_path_factory.mktemp("plain") / "plain.avi", 300)


def test_the_decoder_gives_the_same_frames_as_decoding_here(decoder, videos):
    data = videos[".mp4"].read_bytes()
    with VideoFile(data) as video:
        expected = [(f.time_s, encode_jpeg(f)) for f in video.sample(2.0, ROOMY)]
    with decoder.open(data, 2.0, ROOMY) as video:
        assert (video.info.width, video.info.height, video.info.fps) == (320, 240, 10)
        chunks = list(video)
        assert video.duration_s == pytest.approx(3.0) and video.frames_decoded == 30
    assert [len(chunk) for chunk in chunks] == [4, 2]
    assert [(f.time_s, f.jpeg) for chunk in chunks for f in chunk] == expected


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda data: forged_avi(data, fps=10_000), "10000 frames per second; at most 1000"),
        (
            lambda data: forged_avi(data, frames=2**31 - 1),
            "2147483647 frames or more to decode; at most 3600",
        ),
    ],
    ids=["frame rate", "frame count"],
)
def test_forged_headers_are_refused_before_any_frame_is_decoded(decoder, plain, forge, message):
    with pytest.raises(VideoError, match=message) as info:
        decoder.open(forge(plain), 1.0, Limits(30, 1000, 10_000_000))
    assert info.value.kind == "too_large"


def test_a_forged_frame_rate_written_by_a_muxer_is_refused_too(decoder, tmp_path):
    data = plain_video(tmp_path / "fast.mp4", 50, fps=10_000)
    with pytest.raises(VideoError, match="10000 frames per second") as info:
        decoder.open(data, 1.0, ROOMY)
    assert info.value.kind == "too_large"


def test_frames_decoded_are_bounded_when_the_header_gives_no_count(plain, monkeypatch):
    """Without a frame count in the header the bound holds frame by frame: a forged rate
    below the refusal (1000/s) cannot make decoding run on."""
    with VideoFile(plain) as video:
        monkeypatch.setattr(video, "frame_count", None)
        sampled = video.sample(1.0, Limits(60, 1000, 10_000_000, max_decoded_frames=25))
        with pytest.raises(VideoError, match="26 frames or more to decode; at most 25") as info:
            list(sampled)
    assert info.value.kind == "too_large"


def test_decoding_time_is_bounded(decoder, plain):
    limits = Limits(60, 1000, 10_000_000, timeout_s=1e-6)
    with (
        decoder.open(plain, 10.0, limits) as video,
        pytest.raises(VideoError, match="longer than 1e-06 s") as info,
    ):
        list(video)
    assert info.value.kind == "timeout"


def test_decoding_stops_when_the_consumer_stops(decoder, plain):
    with decoder.open(plain, 10.0, ROOMY) as video:
        first = next(iter(video))
        child = _busy_child(decoder)
    assert len(first) == 4
    assert _state(child) is None  # the child of a closed video is stopped and reaped


def test_a_decoder_crash_costs_only_that_video(decoder, plain, videos):
    assert decoder.sandbox.wait_for_spares()  # earlier tests used children up quickly
    cold = decoder.sandbox.stats["cold_starts"]
    with decoder.open(plain, 10.0, ROOMY) as video:
        os.kill(_busy_child(decoder), signal.SIGSEGV)
        with pytest.raises(VideoError, match="crashed on this video") as info:
            list(video)
    assert info.value.kind == "unprocessable" and "SIGSEGV" in info.value.detail["reason"]
    with decoder.open(videos[".avi"].read_bytes(), 1.0, ROOMY) as video:
        assert [f.time_s for chunk in video for f in chunk] == [0.0, 1.0, 2.0]
    assert decoder.sandbox.stats["cold_starts"] == cold  # a started child was ready


def test_a_decoder_that_stops_answering_times_out(plain):
    with (
        VideoDecoder(frames_per_chunk=4, chunk_timeout_s=1.0) as decoder,
        decoder.open(plain, 10.0, ROOMY) as video,
    ):
        os.kill(_busy_child(decoder), signal.SIGSTOP)  # as FFmpeg stuck in a loop looks from outside
        with pytest.raises(VideoError, match="stopped answering") as info:
            list(video)
    assert info.value.kind == "timeout"


@pytest.mark.parametrize("cut", [0.5, 0.05], ids=["half", "head"])
def test_a_truncated_video_is_corrupt(decoder, videos, cut):
    data = videos[".mp4"].read_bytes()
    with pytest.raises(VideoError) as info:
        decoder.open(data[: int(len(data) * cut)], 1.0, ROOMY)
    assert info.value.kind == "corrupt"


def _busy_child(decoder: VideoDecoder) -> int:
    (pid,) = decoder.sandbox.busy()
    return pid


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
