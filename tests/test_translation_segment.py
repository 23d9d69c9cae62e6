"""Sentence splitting and rejoining: every byte outside the sentences comes back as it was."""

from __future__ import annotations

import pytest

from models.translation.segment import split_text

from .linear import assert_linear


def roundtrip(text: str, **options) -> tuple[list[str], str]:
    split = split_text(text, **options)
    return list(split.segments), split.join(list(split.segments))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\n",
        "One sentence.",
        "First one. Second one! Third one?",
        "Para one.\n\nPara two, line one.\nLine two.\n",
        "  Indented.\tTabbed.  \r\nWindows line.\r\n",
        "Dr. Smith met J. Doe at 3.30 p.m. today. Then they left.",
        "¿Qué tal? ¡Muy bien! «Vale». Adiós.",
        "他来了。她走了！真的吗？",
    ],
)
def test_join_restores_the_text_exactly(text):
    _, joined = roundtrip(text)
    assert joined == text


def test_sentences_and_what_stays_outside():
    segments, _ = roundtrip("  First one.  Second one!\n\nThird, after a blank line?\n")
    assert segments == ["First one.", "Second one!", "Third, after a blank line?"]


def test_abbreviations_initials_and_lowercase_do_not_end_a_sentence():
    segments, _ = roundtrip("Mr. Brown lives on Main St. in town, e.g. near J. Doe. Is it far? yes it is.")
    assert segments == ["Mr. Brown lives on Main St. in town, e.g. near J. Doe.", "Is it far? yes it is."]


def test_empty_and_blank_texts_have_no_segments():
    for text in ("", " ", "\n\n\t"):
        split = split_text(text)
        assert split.segments == () and split.join([]) == text


def test_long_sentences_are_cut_at_clause_marks_then_spaces():
    sentence = "word, " * 50 + "end"
    segments, joined = roundtrip(sentence, max_segment_chars=60)
    assert joined == sentence
    assert all(len(s) <= 60 for s in segments) and len(segments) > 4
    assert all(s.endswith(",") for s in segments[:-1])


def test_join_refuses_the_wrong_number_of_translations():
    with pytest.raises(ValueError, match="expected 2 translations"):
        split_text("One. Two.").join(["Uno."])


# Texts whose sentence ends, abbreviations or line breaks once cost the square of their
# length to split (20 texts of 10,000 dots took 58 s).
PATHOLOGICAL = {
    "dots": ".",
    "exclamations": "!",
    "ellipses": "…",
    "marks then letter": "?.",
    "abbreviations": "Dr. ",
    "initials": "A. ",
    "blank lines": "\n",
    "one long word": "x",
    "clause marks": "a, ",
}


@pytest.mark.parametrize("unit", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_splitting_takes_linear_time(unit):
    assert_linear(split_text, lambda n: unit * (n // len(unit)) + "x", 4000)


def test_long_runs_of_marks_keep_their_text():
    text = "." * 10_000 + " Then. " + "!" * 5000
    assert split_text(text).join(list(split_text(text).segments)) == text
