"""What the sandboxes cost: latency (p50 of calls interleaved with the same work done in
this process, so both see the same load) and resident memory of their children. Prints a
table; asserts nothing.

    python -m tests.measure_sandboxes [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from models.speech import SpeechSynthesizer, espeak
from models.speech.phonemizer import Phonemizer
from models.video.decoder import VideoDecoder
from models.video.frames import Limits, VideoFile, encode_jpeg

from .hostile import ESPEAK_ABORTS
from .speech import PANGRAM
from .videos import Appearance, scripted_video


def interleaved_p50_ms(
    calls: dict[str, Callable[[], object]], repeats: int, between: Callable[[], object] = lambda: None
) -> dict[str, float]:
    """p50 of each call, the calls taking turns; `between` runs untimed after each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
            between()
    return {name: 1000 * statistics.median(values[1:]) for name, values in times.items()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def speech(repeats: int) -> None:
    tts = SpeechSynthesizer.load("default", device="cpu", seed=0)
    voice, phonemizer = tts.voice, tts.voice.phonemizer
    phonemizer.sandbox.wait_for_spares()
    espeak_voice = voice.config.espeak_voice

    def eSpeak_here() -> object:  # what synthesize_sentences did before
        return voice.generate([voice._to_ids(espeak.phonemize(PANGRAM, espeak_voice))], 1.0)

    phonemes = interleaved_p50_ms(
        {
            "here": lambda: espeak.phonemize(PANGRAM, espeak_voice),
            "sandboxed": lambda: phonemizer.phonemize(PANGRAM, espeak_voice),
        },
        repeats * 10,
    )
    synthesis = interleaved_p50_ms(
        {"here": eSpeak_here, "sandboxed": lambda: tts.synthesize_sentences([PANGRAM])}, repeats
    )
    print("speech, one sentence (the pangram), p50")
    print(f"  phonemes:  eSpeak here {phonemes['here']:7.2f} ms   sandboxed {phonemes['sandboxed']:7.2f} ms")
    print(
        f"  synthesis: eSpeak here {synthesis['here']:7.1f} ms   sandboxed {synthesis['sandboxed']:7.1f} ms"
    )
    children = phonemizer.sandbox.children()
    print(f"  children kept: {len(children)}, RSS {', '.join(f'{rss_mb(pid):.1f}' for pid in children)} MB")
    print(f"  this process (voice loaded): RSS {rss_mb(os.getpid()):.0f} MB")

    crash = ESPEAK_ABORTS["dotted letters, 169 characters"]
    with Phonemizer(espeak_voice, guard=False) as raw:
        raw.sandbox.wait_for_spares()
        after = interleaved_p50_ms(
            {
                "crash": lambda: raw.phonemize_many([crash], espeak_voice),
                "next": lambda: raw.phonemize(PANGRAM, espeak_voice),
            },
            10,
            between=raw.sandbox.wait_for_spares,
        )
    print(f"  the sentence after a crash: {after['next']:.2f} ms (the crash itself {after['crash']:.1f} ms)")
    starts = []
    for _ in range(5):
        started = time.perf_counter()
        with Phonemizer(espeak_voice, spares=0) as cold:
            cold.phonemize("Hello.", espeak_voice)
        starts.append(time.perf_counter() - started)
    print(f"  a call that must start its eSpeak child: {1000 * statistics.median(starts):.0f} ms")
    tts.close()


def video(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        script = [Appearance("chelsea", 1.0, 4.0, (40, 40, 280, 200))]
        data = scripted_video(Path(folder) / "clip.mp4", script, 10.0, fps=25).read_bytes()
    limits = Limits(600, 600, 50_000_000)

    def here() -> int:
        with VideoFile(data) as clip:
            return len([encode_jpeg(frame) for frame in clip.sample(2.0, limits)])

    with VideoDecoder() as decoder:
        decoder.sandbox.wait_for_spares()

        def sandboxed() -> int:
            with decoder.open(data, 2.0, limits) as clip:
                return sum(len(chunk) for chunk in clip)

        # a fresh child per video: the replacement starts between videos, untimed
        p50 = interleaved_p50_ms(
            {"here": here, "sandboxed": sandboxed}, max(5, repeats // 3), decoder.sandbox.wait_for_spares
        )
        pids = decoder.sandbox.children()
        print("video, 10 s 640x480 MP4 at 25 frames/s, sampled at 2 frames/s (20 JPEGs), p50")
        print(f"  decoded here {p50['here']:.0f} ms   in a warm child {p50['sandboxed']:.0f} ms")
        print(f"  children kept: {len(pids)}, RSS {', '.join(f'{rss_mb(pid):.1f}' for pid in pids)} MB")
    starts = []
    for _ in range(3):
        started = time.perf_counter()
        with VideoDecoder(spares=0) as cold, cold.open(data, 2.0, limits) as clip:
            sum(len(chunk) for chunk in clip)
        starts.append(time.perf_counter() - started)
    print(f"  a video that must start its child: {1000 * statistics.median(starts):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    speech(args.repeats)
    video(args.repeats)


if __name__ == "__main__":
    main()
