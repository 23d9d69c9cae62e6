"""Split plain text into sentences for translation, and put the translations back in place.

Engines translate one sentence at a time (neural models have a length limit and work best
on sentences; apertium pipelines are fed sentence by sentence so that long texts spread
over a pool). Everything that is not a sentence — line breaks, blank lines between
paragraphs, indentation, the spaces between sentences — is kept verbatim and put back
around the translations. Segments never span a line break, so every line and paragraph
of the input is a line and paragraph of the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that end with a period without ending a sentence (lower-cased, without the period).
ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "sr", "sra", "srta", "dña", "st", "jr", "vs", "etc"),
        *("e.g", "i.e", "approx", "no", "núm", "nº", "fig", "vol", "ed", "eds", "p.ej", "aprox"),
        *("ca", "cf", "al", "dept", "inc", "ltd", "co", "corp", "av", "avda", "pág", "pp", "tel"),
    }
)

# A sentence ends at . ! ? … (possibly repeated, possibly followed by closing quotes or
# brackets) when whitespace and a word that is not lower-case follow; at CJK full stops
# no whitespace is needed. The marks are matched possessively from the first of a run
# only: "....x" is one failed try, not one per dot (10,000 dots cost 2 s, then 0.01 s).
_BOUNDARY = re.compile(
    r"""(?<![.!?…])(?P<end>[.!?…]++["'”’»)\]]*+)\s++(?=[¿¡"'“‘«(\[]*+(?P<next>\w))|[。！？]++"""
)
_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (JSON can carry one) replaced by U+FFFD: they cannot be
    encoded for an engine, a pipe or the language detector."""
    return _SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class SplitText:
    """A text as literal pieces (str) and sentence slots (int index into `segments`)."""

    pieces: tuple[str | int, ...]
    segments: tuple[str, ...]

    def join(self, translations: list[str]) -> str:
        if len(translations) != len(self.segments):
            raise ValueError(f"expected {len(self.segments)} translations, got {len(translations)}")
        return "".join(p if isinstance(p, str) else translations[p] for p in self.pieces)


def split_text(text: str, max_segment_chars: int = 1000) -> SplitText:
    """Sentences of `text` (outer whitespace removed) and the literal text around them.
    A sentence longer than `max_segment_chars` is cut at clause punctuation or spaces."""
    pieces: list[str | int] = []
    segments: list[str] = []
    for line in _LINE.findall(text):
        body = line.rstrip("\n")
        for sentence in _sentences(body):
            for part in _cut(sentence, max_segment_chars):
                stripped = part.strip()
                if not stripped:
                    pieces.append(part)
                    continue
                start = part.index(stripped[0])
                if start:
                    pieces.append(part[:start])
                pieces.append(len(segments))
                segments.append(stripped)
                trailing = part[start + len(stripped) :]
                if trailing:
                    pieces.append(trailing)
        if line.endswith("\n"):
            pieces.append("\n")
    return SplitText(tuple(_merge_literals(pieces)), tuple(segments))


def _sentences(line: str) -> list[str]:
    """`line` cut after each sentence end; the whitespace after an end stays with the
    sentence before it, so the parts concatenate back to `line`."""
    parts: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        end = match.group("end")
        if end and (
            match.group("next").islower() or _is_abbreviation(_last_word(line, start, match.start()), end)
        ):
            continue
        cut = match.end()
        parts.append(line[start:cut])
        start = cut
    if start < len(line):
        parts.append(line[start:])
    return parts


def _last_word(line: str, start: int, end: int) -> str:
    """The last whitespace-separated word of `line[start:end]`, found from the end (each
    word is looked at once, however long the sentence around it grows)."""
    cut = end
    while cut > start and not line[cut - 1].isspace():
        cut -= 1
    return line[cut:end]


def _is_abbreviation(word: str, end: str) -> bool:
    if not end.startswith(".") or len(end.rstrip("\"'”’»)]")) > 1:
        return False  # "!", "?", "..." always end a sentence
    word = word.lstrip("(\"'“‘«¿¡")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. Smith"
    return word.lower() in ABBREVIATIONS or word.lower().rstrip(".") in ABBREVIATIONS


def _cut(sentence: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut after ; : , or whitespace when possible."""
    if len(sentence) <= limit:
        return [sentence]
    parts = []
    start = 0
    while len(sentence) - start > limit:
        window_end = start + limit
        cut = max(sentence.rfind(mark, start, window_end) for mark in ("; ", ": ", ", ")) - start
        if cut <= limit // 4:
            cut = sentence.rfind(" ", start, window_end) - start
        cut = cut + 1 if cut > limit // 4 else limit
        parts.append(sentence[start : start + cut])
        start += cut
    parts.append(sentence[start:])
    return parts


def _merge_literals(pieces: list[str | int]) -> list[str | int]:
    """Adjacent literals joined into one (each run joined once: appending to a string held
    in a list copies it, which is quadratic over 100,000 blank lines)."""
    merged: list[str | int] = []
    run: list[str] = []
    for piece in [*pieces, -1]:  # -1: a sentinel slot that flushes the last run
        if isinstance(piece, str):
            run.append(piece)
            continue
        if literal := "".join(run):
            merged.append(literal)
        run = []
        merged.append(piece)
    return merged[:-1]
