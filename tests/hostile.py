"""Hostile inputs, each with what it must get: texts that aborted eSpeak NG or cost the
square of their length, giant numbers, control characters, decompression bombs, truncated
and multi-picture images, videos whose headers lie.

`CORPUS` is for the HTTP suite: every entry names its task, how to build its payload and
the outcome the runtime gives it ("ok", or the ItemError kind of the item); the service
maps kinds to statuses in its one error table. tests/test_hostile.py checks each entry
against the runtimes. The raw eSpeak inputs (`ESPEAK_ABORTS`) are what eSpeak NG 1.51
itself dies on; through the service they are read out (models/speech/espeak_input.py).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What libespeak-ng 1.51 aborts (SIGABRT, "stack smashing detected") or segfaults on, as
# found by tests/fuzz_espeak.py; models/speech/espeak_input.py explains each shape.
ESPEAK_ABORTS: dict[str, str] = {
    "dotted letters, 169 characters": "z." * 84 + "z",
    "dotted letters ending in a dot": "z." * 85,
    "dotted Greek letters (bytes count)": "λ." * 57,
    "dotted ideographs": ".文" * 45,
    "dotted capitals": "ABCDEFGHIJKLMNOPQRSTUVWXYZ".replace("", ".")[1:] * 4,
    "letters and lone dots": "z . " * 100,
    "letters, skipped marks and dots": "c_." * 85,
    "a letter-dot word then Arabic": "Z." + "\u0639\u0639y" * 60,
    "hyphen before Devanagari at a clause start": "(-\u0939\u0939",
    "hyphen before Bengali after a sentence": "Hello. '-\u0995\u0995",
    "caret, hyphen, Devanagari": "^-\u0939\u0939",
}
# eSpeak keeps its look-ahead after this: the next text, in the same process, starts "dot".
ESPEAK_LEAK = "It ends here.."

# Letters eSpeak reads by name ("Oriya letter rra"): 400 characters make 5,185 phoneme ids,
# which took 76 s and 3.2 GB to synthesise.
LETTERS_READ_BY_NAME = "\u0b22\u0b3c " * 133
GIANT_NUMBER = "7" * 4400  # int() refuses strings over 4,300 digits: it was a 500
GROUPED_GIANT_NUMBER = "1" + ",000" * 1500


@dataclass(frozen=True)
class Hostile:
    name: str
    task: str  # "speech", "translation", "image" or "video"
    make: Callable[[], str | bytes]
    expect: str  # "ok", or the ItemError kind (models.errors.ErrorKind) the item gets
    why: str


def _text(value: str) -> Callable[[], str]:
    return lambda: value


# What an English voice makes of them (all are read out, but for what it cannot say).
_ESPEAK_ABORT_OUTCOMES = {
    "dotted ideographs": ("unspeakable", "an English voice drops CJK characters"),
    "a letter-dot word then Arabic": ("too_large", "Arabic letters read by name: 2,791 phoneme ids"),
}

SPEECH: list[Hostile] = [
    *(
        Hostile(
            f"eSpeak abort: {name}",
            "speech",
            _text(text),
            *_ESPEAK_ABORT_OUTCOMES.get(name, ("ok", "rewritten before eSpeak reads it")),
        )
        for name, text in ESPEAK_ABORTS.items()
    ),
    Hostile("eSpeak look-ahead leak", "speech", _text(ESPEAK_LEAK), "ok", "'..' read as '.'"),
    Hostile("4,400-digit number", "speech", _text(GIANT_NUMBER), "too_large", "over 100 digits"),
    Hostile(
        "grouped 4,501-digit number", "speech", _text(GROUPED_GIANT_NUMBER), "too_large", "over 100 digits"
    ),
    Hostile(
        "20-digit number", "speech", _text("Call 12345678901234567890 now."), "ok", "read digit by digit"
    ),
    Hostile("10,000 dots", "speech", _text("." * 10_000), "unspeakable", "nothing to say; linear split"),
    Hostile("exclamations and questions", "speech", _text("!?" * 2000), "unspeakable", "nothing to say"),
    Hostile(
        "control and format characters",
        "speech",
        _text("Hello\x00\x01\x07\x1b[31m world\x7f\u200b\u202e, fine\ufeff."),
        "ok",
        "controls dropped, eSpeak's embedded-command byte never reaches it",
    ),
    Hostile("lone surrogate", "speech", _text("Hello \ud800 world."), "ok", "dropped"),
    Hostile("only emoji", "speech", _text("😀🎉🙈"), "unspeakable", "nothing to say"),
    Hostile(
        "letters read by name", "speech", _text(LETTERS_READ_BY_NAME), "too_large", "over 1500 phoneme ids"
    ),
    Hostile("only line breaks", "speech", _text("\n" * 5000), "empty", "nothing at all"),
]

TRANSLATION_TEXTS: dict[str, str] = {
    "10,000 dots": "." * 10_000,
    "exclamations": "!" * 10_000,
    "ellipses": "…" * 10_000,
    "abbreviations": "Dr. " * 2500,
    "blank lines": "\n" * 20_000 + "Hello.",
    "dotted letters": "x." * 5000,
    "one long word": "x" * 10_000,
    "giant number": GIANT_NUMBER,
    "stream syntax": "^$/<>@*#[]{}\\~ " * 200,
    "control characters": "a\x00b\x01c\x07d\x1be\x7f. " * 100,
    "lone surrogate": "Hello \ud800 world.",
    "bidi and zero-width": "\u202eevil\u202c \u200bword\ufeff. " * 100,
}
TRANSLATION: list[Hostile] = [
    Hostile(name, "translation", _text(text), "ok", "translated, in time linear in its length")
    for name, text in TRANSLATION_TEXTS.items()
]


# -- images ------------------------------------------------------------------------------


def png_bomb() -> bytes:
    """A complete, valid 1-bit PNG: ~50 KB that decode to 400 million pixels."""
    from .images import png_bomb as bomb

    return bomb(20_000, 20_000)


def _photo_jpeg() -> bytes:
    from .images import encode, photo

    return encode(photo("chelsea"), "JPEG", quality=90)


def mpo_jpeg() -> bytes:
    """A multi-picture JPEG as phones write it (the photo, then a second image)."""
    from PIL import Image

    from .images import photo

    buffer = io.BytesIO()
    Image.fromarray(photo("chelsea")).save(
        buffer, "MPO", save_all=True, append_images=[Image.fromarray(photo("coffee"))], quality=90
    )
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    data = _photo_jpeg()
    return data[: len(data) * 9 // 10]


IMAGES: list[Hostile] = [
    Hostile("decompression bomb PNG, 400 MP", "image", png_bomb, "too_large", "refused from its header"),
    Hostile("truncated JPEG", "image", truncated_jpeg, "corrupt", "the last tenth is missing"),
    Hostile("multi-picture JPEG (MPO)", "image", mpo_jpeg, "ok", "a JPEG: its first picture is the photo"),
]


# -- videos ------------------------------------------------------------------------------


def _plain(suffix: str, frames: int, fps: float) -> bytes:
    from .videos import plain_video

    with tempfile.TemporaryDirectory() as folder:
        return plain_video(Path(folder) / f"plain{suffix}", frames, fps)


def forged_frame_rate_avi() -> bytes:
    from .videos import forged_avi

    return forged_avi(_plain(".avi", 50, 10), fps=10_000)


def forged_frame_count_avi() -> bytes:
    from .videos import forged_avi

    return forged_avi(_plain(".avi", 50, 10), frames=2**31 - 1)


def fast_mp4() -> bytes:
    """50 frames that OpenCV's muxer itself labels 10,000 frames a second."""
    return _plain(".mp4", 50, 10_000)


def truncated_mp4() -> bytes:
    data = _plain(".mp4", 50, 10)
    return data[: len(data) // 2]  # mp4v writes its index last


VIDEOS: list[Hostile] = [
    Hostile(
        "AVI header claiming 10,000 frames/s", "video", forged_frame_rate_avi, "too_large", "before decoding"
    ),
    Hostile(
        "AVI header claiming 2^31 frames", "video", forged_frame_count_avi, "too_large", "before decoding"
    ),
    Hostile("MP4 muxed at 10,000 frames/s", "video", fast_mp4, "too_large", "before decoding"),
    Hostile("MP4 cut in half", "video", truncated_mp4, "corrupt", "no index: cannot open"),
]

CORPUS: list[Hostile] = [*SPEECH, *TRANSLATION, *IMAGES, *VIDEOS]
