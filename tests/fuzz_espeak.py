"""Fuzz eSpeak NG in sandbox children, bounded in time: what aborts, segfaults or hangs it.

    python -m tests.fuzz_espeak --seconds 120            # through the input rules (as served)
    python -m tests.fuzz_espeak --seconds 120 --raw      # eSpeak as it is
    python -m tests.fuzz_espeak --seconds 60 --voice de --out crashes.json

Texts are random mixes of punctuation, digits, letters of several scripts, control and
format characters, and runs of a repeated short unit (the shape that overflows eSpeak's
word buffer). Each batch goes through Phonemizer.phonemize_many: a crash is pinned on its
text and costs one child. What it found is written down in models/speech/espeak_input.py.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from models.speech.phonemizer import Phonemizer
from models.speech.text import SpeechError

ALPHABET = [
    *".,;:!?-'\"()[]{}…·•/\\%$€£&@#*+=<>|~^_`",
    *"0123456789",
    *"abcxyzABCXYZ ",
    *("  ", "\n", "\t", "é", "ß", "ñ", "ç", "Ω", "λ", "ж", "中", "文", "ع", "ह", "ক"),
    *("\u0301", "\u200b", "\u00a0", "１", "½", "²", "Ⅻ", "ﬁ", "🙂", "\x00", "\x01", "\x7f", "\ufeff"),
]
WORDS = ["hello", "1", "12", "123456789", "3.14", "a", "I", "Dr", "x", "1st", "U.S.A", "e.g", "..", "...."]


def text(rng: random.Random) -> str:
    def some(count: int) -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(count))

    shape = rng.random()
    if shape < 0.6:  # a repeated unit between a few random characters
        return (
            some(rng.randint(0, 10))
            + some(rng.randint(1, 4)) * rng.randint(20, 250)
            + some(rng.randint(0, 10))
        )
    if shape < 0.75:
        return some(rng.randint(1, 300))
    if shape < 0.9:
        return "".join(rng.choice(WORDS) + rng.choice(ALPHABET) for _ in range(rng.randint(1, 80)))
    return "".join(chr(rng.randint(32, 0x3000)) for _ in range(rng.randint(1, 300)))


def fuzz(seconds: float, voice: str, guard: bool, seed: int, batch: int = 500) -> dict:
    rng = random.Random(seed)
    phonemizer = Phonemizer(guard=guard)
    tried, found = 0, []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            texts = [text(rng) for _ in range(batch)]
            for sample, result in zip(texts, phonemizer.phonemize_many(texts, voice), strict=True):
                if isinstance(result, SpeechError):
                    found.append(
                        {"text": sample, "kind": result.kind.value, "reason": result.detail.get("reason")}
                    )
            tried += batch
    finally:
        phonemizer.close()
    return {
        "voice": voice,
        "guard": guard,
        "seed": seed,
        "seconds": seconds,
        "tried": tried,
        "failures": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--raw", action="store_true", help="without the input rules (espeak_input.sanitize)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write every failing text here (JSON)")
    args = parser.parse_args()
    report = fuzz(args.seconds, args.voice, not args.raw, args.seed)
    failures = report["failures"]
    print(f"{report['tried']} texts, {len(failures)} failed ({len(failures) / max(report['tried'], 1):.3%})")
    for failure in failures[:10]:
        print(f"  {failure['kind']}: {failure['text'][:80]!r} ({failure['reason']})")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(report, file, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
