"""From a request's text to the sentences a voice synthesises, one by one or as a batch.

Sentences are the unit of work: a long text becomes a batch of sentences for the model,
and a stream sends each sentence's audio as soon as it is ready. Pure Python (no model),
so the HTTP entry service prepares requests without loading a runtime.
"""

from __future__ import annotations

import re

from ..errors import ItemError
from .normalize import normalize

# Longer sentences are cut at a clause boundary: bounds the memory of one padded batch row
# and the time before a stream's next chunk.
MAX_SENTENCE_CHARS = 400

# A sentence ends at . ! ? (with closing quotes or brackets after it) before a space. After
# a full stop the next sentence must start with a capital, a digit or a quote.
_END = re.compile(r"""[.!?]+["')\]]*(?=\s|$)""")
_NEXT_STARTS = re.compile(r"""\s*["'(]?[A-Z0-9]""")
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")  # "J. R. R. Tolkien" is one sentence
_CLAUSE_END = re.compile(r"[,;:]\s")


class SpeechError(ItemError):
    """Text, or a sentence, with nothing a voice can say; `kind` is "empty" or
    "unspeakable"."""


def sentences(text: str, language: str = "en", max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """The speakable sentences of `text`, normalised for a voice of `language`, in order.
    Raises SpeechError when the text is empty or holds nothing speakable."""
    if not text or not text.strip():
        raise SpeechError("empty", "text is empty; send the words to speak in the 'text' field")
    found = [s for s in split_sentences(normalize(text, language), max_chars) if speakable(s)]
    if not found:
        raise SpeechError(
            "unspeakable",
            "text has nothing speakable (no letters or digits a voice for "
            f"{language!r} can read, after removing symbols and emoji)",
        )
    return found


def speakable(sentence: str) -> bool:
    return any(char.isalnum() for char in sentence)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split normalised text at line breaks and sentence ends; cut overlong sentences."""
    result: list[str] = []
    for line in text.splitlines():
        start = 0
        for end_mark in _END.finditer(line):
            end = end_mark.end()
            strong = "!" in end_mark[0] or "?" in end_mark[0]
            weak = not strong and (_INITIAL.search(line[:end]) or not _NEXT_STARTS.match(line, end))
            if weak and line[end:].strip():
                continue
            result.extend(_cut(line[start:end].strip(), max_chars))
            start = end
        result.extend(_cut(line[start:].strip(), max_chars))
    return [s for s in result if s]


def _cut(sentence: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars`, cut after the last clause mark (, ; :) or space that
    fits, so that each piece still reads naturally."""
    pieces = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        clause_ends = [m.end() for m in _CLAUSE_END.finditer(window)]
        cut = clause_ends[-1] if clause_ends and clause_ends[-1] > max_chars // 3 else window.rfind(" ") + 1
        if cut <= 0:
            cut = max_chars  # one unbroken token: cut it where it must be
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return pieces
