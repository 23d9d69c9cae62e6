"""Detection and video analysis throughput: the raw runtimes against the served endpoints,
in one run.

    .venv/bin/python -m benchmarks.detection [--url http://host:3000] [--seconds 10]

Images: raw detector images/s at batch 1 and 16 (JPEG bytes in: decode + letterbox +
forward + NMS), the service's images/s with 1 and 16 concurrent clients sending one
640x480 JPEG per request to POST /detect, each as a ratio to the faster raw figure, and
the batch sizes the server formed. Video: frames analysed (detect + classify) per second of wall
time, raw (decode, sample, JPEG, both runtimes in this process) against POST
/analyze_video with 1 and 4 concurrent clients. Client and server share this machine's
cores, so the service figures include the load generator's own cost.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx

from benchmarks.common import Measurement, http_load, parser, report, served, timed
from models.classification import ImageClassifier
from models.detection import ObjectDetector
from models.video.frames import Limits, VideoFile, encode_jpeg
from service.settings import get_settings
from tests.images import composite, encode
from tests.videos import Appearance, scripted_video

VIDEO_SAMPLE_FPS = 5.0
VIDEO_SCRIPT = [
    Appearance("astronaut", 0.0, 6.0, (20, 20, 260, 260)),
    Appearance("chelsea", 3.0, 12.0, (340, 40, 280, 200)),
    Appearance("coffee", 8.0, 16.0, (60, 300, 240, 160)),
]


def test_image() -> bytes:
    from PIL import Image

    image, _ = composite(["astronaut", "chelsea", "coffee"])
    return encode(Image.fromarray(image).resize((640, 480)), "JPEG", quality=90)


def formed_batches(label: str, start: dict, end: dict) -> None:
    formed = {int(k): v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}
    batches = sum(formed.values())
    average = sum(k * v for k, v in formed.items()) / batches if batches else 0
    sizes = dict(sorted(formed.items()))
    print(f"batches formed with {label}: {batches}, mean size {average:.1f}, sizes {sizes}")


def raw_video(video: bytes, detector: ObjectDetector, classifier: ImageClassifier, chunk: int = 16) -> int:
    """What /analyze_video does, in this process: sample, JPEG, detect and classify by chunk."""
    limits = Limits(3600, 100_000, 50_000_000)
    frames = 0
    with VideoFile(video) as opened:
        batch: list[bytes] = []
        for frame in opened.sample(VIDEO_SAMPLE_FPS, limits):
            batch.append(encode_jpeg(frame))
            if len(batch) == chunk:
                detector.detect_many(batch)
                classifier.classify_many(batch, 3)
                frames, batch = frames + len(batch), []
        if batch:
            detector.detect_many(batch)
            classifier.classify_many(batch, 3)
            frames += len(batch)
    return frames


def main() -> None:
    args = parser(__doc__).parse_args()
    jpeg = test_image()
    settings = get_settings()
    detector = ObjectDetector.load(settings.detection_model, device=settings.device, dtype=settings.dtype)
    classifier = ImageClassifier.load(
        settings.classification_model, device=settings.device, dtype=settings.dtype
    )
    print(f"model {detector.info.name} on {detector.placement.describe()}, {os.cpu_count()} CPUs")
    raw1 = timed("raw detector, batch 1", 1, lambda: detector.detect_many([jpeg]), args.seconds)
    raw16 = timed("raw detector, batch 16", 16, lambda: detector.detect_many([jpeg] * 16), args.seconds)

    with tempfile.TemporaryDirectory() as folder:
        video = scripted_video(Path(folder) / "bench.mp4", VIDEO_SCRIPT, 16.0, fps=25).read_bytes()
    frames_per_video = raw_video(video, detector, classifier)
    raw_video_rate = timed(
        "raw video (detect + classify)",
        frames_per_video,
        lambda: raw_video(video, detector, classifier),
        args.seconds,
    )

    async def one_image(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(url + "/detect", files=[("images", ("x.jpg", jpeg, "image/jpeg"))])

    async def one_video(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            url + "/analyze_video",
            files=[("video", ("bench.mp4", video, "video/mp4"))],
            data={"sample_fps": str(VIDEO_SAMPLE_FPS)},
        )

    rows: list[Measurement] = [raw1, raw16]
    video_rows: list[Measurement] = [raw_video_rate]
    with served(args.url) as url:
        stats = [httpx.get(url + "/stats").json()["detection"].get("detect_batch", {})]
        rows.append(http_load("service, 1 client, 1 image/request", 1, args.seconds, 1, one_image))
        stats.append(httpx.get(url + "/stats").json()["detection"]["detect_batch"])
        rows.append(http_load("service, 16 clients, 1 image/request", 16, args.seconds, 1, one_image))
        stats.append(httpx.get(url + "/stats").json()["detection"]["detect_batch"])
        for clients in (1, 4):
            name = f"service /analyze_video, {clients} client{'s' if clients > 1 else ''}"
            video_rows.append(http_load(name, clients, args.seconds, frames_per_video, one_video))
    # on a CPU a batch of 16 can run slower per image than single images (activations
    # leave the caches): the ratios are against whichever raw figure is faster
    report("detection", "img", max(raw1, raw16, key=lambda m: m.items_per_s), rows)
    formed_batches("1 client", stats[0], stats[1])
    formed_batches("16 clients", stats[1], stats[2])
    print(f"\nvideo: {frames_per_video} frames of a 16 s 640x480 clip at {VIDEO_SAMPLE_FPS:g} frames/s")
    report("video analysis", "frame", raw_video_rate, video_rows)


if __name__ == "__main__":
    main()
