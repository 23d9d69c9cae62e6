"""Plain text <-> apertium's stream format, for one sentence at a time.

Apertium's own text deformatter (`apertium-destxt`) drops NUL bytes, so it cannot sit in a
null-flush pipeline; this module does its job. In the stream format these characters are
syntax and must be backslash-escaped: \\ ^ $ / < > @ * # [ ] { }. Text in square
brackets is a "superblank": format that the engine carries through untouched, which is
how characters that some stage would otherwise eat are protected: `~` (the
post-generation mark), an apostrophe opening a quotation (the English analyser reads
`'s` in `'single'` as a clitic), tabs and runs of spaces, control characters.

Apertium's time is quadratic in the length of a word: a 1000-character "x.x.x..." took
1.1 s, 2000 characters 6.6 s (ordinary text runs at ~40,000 characters a second). Runs of
more than MAX_WORD_CHARS non-space characters are cut with an empty superblank `[]`, a
word boundary for the analyser that leaves nothing in the output: such a run is then
translated piece by piece, in linear time (8,000 characters of "x." in 0.1 s).

Each sentence is framed as `<escaped text>.[<tag>]\\0`. Like apertium's own deformatter,
a period is added so the tagger and transfer rules always see a sentence end (analysis
also needs one character of look-ahead at the end of a flush); the superblank `[<tag>]`
comes back last and proves that the answer belongs to this sentence.
"""

from __future__ import annotations

import re

from .segment import valid_unicode

RESERVED = frozenset("\\^$/<>@*#[]{}")
MAX_WORD_CHARS = 64
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD_CHARS}}}(?=\S)")
# Protected as superblanks: runs of whitespace other than one space, `~`, an apostrophe
# at the start of a word, control characters. NUL is the frame delimiter and is dropped.
_PROTECT = re.compile(r"[^\S ]|\s{2,}|~|(?<!\w)'(?=\w)|[\x01-\x08\x0b-\x1f\x7f-\x9f]+")


class FrameError(RuntimeError):
    """An engine answer that is not the answer to the sentence it should be."""


def _escape_chars(text: str) -> str:
    return "".join("\\" + c if c in RESERVED else c for c in text)


def escape(sentence: str) -> str:
    """Plain text -> stream format (without the frame)."""
    sentence = valid_unicode(sentence.replace("\0", ""))
    pieces, last = [], 0
    for match in _LONG_WORD.finditer(sentence):
        pieces.append(sentence[last : match.end()])
        last = match.end()
    pieces.append(sentence[last:])
    return "[]".join(_escape_piece(piece) for piece in pieces)


def _escape_piece(sentence: str) -> str:
    out: list[str] = []
    last = 0
    for match in _PROTECT.finditer(sentence):
        out.append(_escape_chars(sentence[last : match.start()]))
        out.append("[" + _escape_chars(match.group()) + "]")
        last = match.end()
    out.append(_escape_chars(sentence[last:]))
    return "".join(out)


def frame(sentence: str, tag: int) -> bytes:
    return f"{escape(sentence)}.[{tag}]\0".encode()


def unframe(raw: str, tag: int) -> str:
    """The engine's answer for `frame(sentence, tag)` -> plain text."""
    end = f"[{tag}]"
    body = raw.rstrip()
    if not body.endswith(end):
        raise FrameError(f"answer does not end with its frame tag {end}: {raw[-80:]!r}")
    body = body[: -len(end)]
    if body.endswith(".") and not body.endswith("\\."):
        body = body[:-1]  # the period added by `frame`
    return unescape(body)


def unescape(stream: str) -> str:
    """Stream format -> plain text: escapes resolved, superblanks turned back into their
    text, the engine's own blanks (runs of spaces left where it dropped a word) collapsed."""
    out: list[str] = []
    i = 0
    in_superblank = False
    pending_space = False
    while i < len(stream):
        char = stream[i]
        if char == "\\" and i + 1 < len(stream):
            char = stream[i + 1]
            i += 2
        elif char == "[" and not in_superblank:
            in_superblank = True
            i += 1
            continue
        elif char == "]" and in_superblank:
            in_superblank = False
            i += 1
            continue
        else:
            i += 1
            if char == " " and not in_superblank:
                pending_space = True
                continue
        if pending_space:
            out.append(" ")
            pending_space = False
        out.append(char)
    return "".join(out).strip()
