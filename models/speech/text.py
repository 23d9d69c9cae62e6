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
# Budgets checked before any work (the service sets its own, smaller, per request):
MAX_TEXT_CHARS = 100_000
MAX_SENTENCES = 2_000
# Numbers are read as quantities up to 15 digits and digit by digit beyond; a longer one is
# refused: 4,400 digits read one by one would be half an hour of "seven seven seven".
MAX_NUMBER_DIGITS = 100

# A sentence ends at . ! ? (with closing quotes or brackets after it) before a space. After
# a full stop the next sentence must start with a capital, a digit or a quote. Possessive
# and anchored to the first mark of a run, so "......x" is one failed try, not one per dot.
_END = re.compile(r"""(?<![.!?])[.!?]++["')\]]*+(?=\s|$)""")
_NEXT_STARTS = re.compile(r"""\s*["'(]?[A-Z0-9]""")
_CLAUSE_END = re.compile(r"[,;:]\s")
# A number as it is written: digits, maybe grouped or with a decimal part ("1,234.5").
_NUMBER = re.compile(r"\d++(?:[,.]\d++)*+")


class SpeechError(ItemError):
    """Text, or a sentence, a voice cannot say; `kind` is "empty", "unspeakable",
    "too_large" (over a budget), or for a sentence the phonemiser failed on,
    "unprocessable" or "timeout"."""


def sentences(
    text: str,
    language: str = "en",
    max_chars: int = MAX_SENTENCE_CHARS,
    *,
    max_text_chars: int = MAX_TEXT_CHARS,
    max_sentences: int = MAX_SENTENCES,
    max_number_digits: int = MAX_NUMBER_DIGITS,
) -> list[str]:
    """The speakable sentences of `text`, normalised for a voice of `language`, in order.
    Raises SpeechError when the text is empty, holds nothing speakable, or is over a budget
    (characters, digits of one number, sentences); each is checked before the work it
    bounds, and everything here runs in time linear in the text's length."""
    if not text or not text.strip():
        raise SpeechError("empty", "text is empty; send the words to speak in the 'text' field")
    if len(text) > max_text_chars:
        raise SpeechError(
            "too_large", f"text has {len(text)} characters; at most {max_text_chars} are read at once"
        )
    longest = max((_digits(m[0]) for m in _NUMBER.finditer(text)), default=0)
    if longest > max_number_digits:
        raise SpeechError(
            "too_large",
            f"text holds a number of {longest} digits; numbers of up to {max_number_digits} digits "
            "are read (digit by digit beyond 15)",
        )
    found = [s for s in split_sentences(normalize(text, language), max_chars) if speakable(s)]
    if not found:
        raise SpeechError(
            "unspeakable",
            "text has nothing speakable (no letters or digits a voice for "
            f"{language!r} can read, after removing symbols and emoji)",
        )
    if len(found) > max_sentences:
        raise SpeechError(
            "too_large", f"text makes {len(found)} sentences; at most {max_sentences} are read at once"
        )
    return found


def _digits(number: str) -> int:
    return sum(char.isdigit() for char in number)


def speakable(sentence: str) -> bool:
    return any(char.isalnum() for char in sentence)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split normalised text at line breaks and sentence ends; cut overlong sentences."""
    result: list[str] = []
    for line in text.splitlines():
        start = 0
        last_word_end = len(line.rstrip())
        for end_mark in _END.finditer(line):
            end = end_mark.end()
            strong = "!" in end_mark[0] or "?" in end_mark[0]
            weak = not strong and (_after_initial(line, end) or not _NEXT_STARTS.match(line, end))
            if weak and end < last_word_end:
                continue
            result.extend(_cut(line[start:end].strip(), max_chars))
            start = end
        result.extend(_cut(line[start:].strip(), max_chars))
    return [s for s in result if s]


def _after_initial(line: str, end: int) -> bool:
    """Whether `line[:end]` ends with an initial: "J. R. R. Tolkien" is one sentence."""
    return (
        end >= 2
        and line[end - 1] == "."
        and "A" <= line[end - 2] <= "Z"
        and (end == 2 or line[end - 3].isspace())
    )


def _cut(sentence: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars`, cut after the last clause mark (, ; :) or space that
    fits, so that each piece still reads naturally."""
    pieces = []
    start = 0
    while len(sentence) - start > max_chars:
        window_end = start + max_chars + 1
        clause_ends = [m.end() for m in _CLAUSE_END.finditer(sentence, start, window_end)]
        if clause_ends and clause_ends[-1] - start > max_chars // 3:
            cut = clause_ends[-1]
        else:
            cut = sentence.rfind(" ", start, window_end) + 1
        if cut <= start:
            cut = start + max_chars  # one unbroken token: cut it where it must be
        pieces.append(sentence[start:cut].strip())
        start = cut
        while start < len(sentence) and sentence[start].isspace():
            start += 1
    pieces.append(sentence[start:])
    return pieces
