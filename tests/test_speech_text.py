"""Text normalisation and sentence splitting for speech synthesis: pure Python, no model."""

from __future__ import annotations

import pytest

from models.speech import numbers
from models.speech.normalize import normalize
from models.speech.text import MAX_SENTENCE_CHARS, SpeechError, sentences, split_sentences

from .linear import assert_linear


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (21, "twenty-one"),
        (105, "one hundred five"),
        (1_234_567, "one million two hundred thirty-four thousand five hundred sixty-seven"),
        (-40, "minus forty"),
    ],
)
def test_cardinals(n, words):
    assert numbers.cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (101, "one hundred first"),
    ],
)
def test_ordinals(n, words):
    assert numbers.ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1984, "nineteen eighty-four"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
        (2000, "two thousand"),
        (2008, "two thousand eight"),
        (2024, "twenty twenty-four"),
    ],
)
def test_years(n, words):
    assert numbers.year(n) == words


def test_digit_strings_beyond_quantities_are_read_digit_by_digit():
    assert numbers.cardinal(10**15) == "one " + " ".join(["zero"] * 15)


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("It costs $5.", "It costs five dollars."),
        ("Pay $5.50 now.", "Pay five dollars and fifty cents now."),
        ("Only $1.01 left.", "Only one dollar and one cent left."),
        ("A £3 fee and €2.", "A three pounds fee and two euros."),
        ("Sold for $1.5 million.", "Sold for one point five million dollars."),
        ("Up 25% today.", "Up twenty-five percent today."),
        ("On 3/4/2021 we met.", "On March fourth, twenty twenty-one we met."),
        ("Born 2024-03-15.", "Born March fifteenth, twenty twenty-four."),
        ("On May 5th, 2024 it rained.", "On May fifth, twenty twenty-four it rained."),
        ("It was the 21st of May 2021.", "It was the twenty-first of May, twenty twenty-one."),
        ("Due Jan. 5.", "Due January fifth."),
        ("Meet at 3:30 pm today.", "Meet at three thirty p m today."),
        ("Wake at 7:05.", "Wake at seven oh five."),
        ("At 10:00 sharp.", "At ten o'clock sharp."),
        ("It ends at 10 a.m. Then we eat.", "It ends at ten a m. Then we eat."),
        ("The 3rd and 22nd runners.", "The third and twenty-second runners."),
        ("In 1999 it was fine.", "In nineteen ninety-nine it was fine."),
        ("The 1990s were loud.", "The nineteen nineties were loud."),
        ("Walk 5 km or 1 mi.", "Walk five kilometers or one mile."),
        ("It was -5 °C outside.", "It was minus five degrees Celsius outside."),
        ("Pages 10-20 please.", "Pages ten to twenty please."),
        ("Add 1/2 cup.", "Add one half cup."),
        ("Pi is 3.14.", "Pi is three point one four."),
        ("We have 1,234 items.", "We have one thousand two hundred thirty-four items."),
        ("Call 555-1234.", "Call five five five, one two three four."),
        ("Dr. Smith and Mr. Jones.", "Doctor Smith and Mister Jones."),
        ("He lives in St. Louis.", "He lives in Saint Louis."),
        ("She lives on Baker St. The house is old.", "She lives on Baker Street. The house is old."),
        ("Fruit, e.g. apples.", "Fruit, for example apples."),
        ("Apples, pears etc. Then more.", "Apples, pears et cetera. Then more."),
        ("Apples etc., and more.", "Apples et cetera, and more."),
        ("Item No. 7 and #8.", "Item number seven and number eight."),
        ("Salt & pepper.", "Salt and pepper."),
        ("The U.S.A. is big.", "The U S A is big."),
        ("“Smart” quotes — and dashes…", '"Smart" quotes, and dashes...'),
        ("Fun 😀 times!", "Fun times!"),
        ("北京 is a city.", "is a city."),
    ],
)
def test_english_normalisation(text, spoken):
    assert normalize(text, "en-US") == spoken


def test_other_languages_get_only_the_language_neutral_cleanup():
    # A German voice reads its own numbers (eSpeak's German rules): no English words here.
    assert normalize("Das kostet 5 € 😀.", "de-DE") == "Das kostet 5 €."


def test_sentences_split_at_sentence_ends_not_at_abbreviations_or_initials():
    text = (
        'Dr. Smith came at 10 a.m. Then he left! "Really?" she asked. J. R. R. Tolkien wrote it.\nA new line'
    )
    assert sentences(text, "en") == [
        "Doctor Smith came at ten a m.",
        "Then he left!",
        '"Really?"',
        "she asked.",
        "J. R. R. Tolkien wrote it.",
        "A new line",
    ]


def test_full_stop_before_lower_case_does_not_split():
    assert split_sentences("It is 5 p.m. here. and there.") == ["It is 5 p.m. here. and there."]


def test_overlong_sentences_are_cut_at_clause_marks_then_spaces():
    text = "one two three, " * 60
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(len(piece) <= MAX_SENTENCE_CHARS for piece in pieces)
    assert all(piece.endswith(",") for piece in pieces[:-1])
    assert " ".join(pieces).split() == text.split()
    unbroken = split_sentences("x" * (MAX_SENTENCE_CHARS * 2 + 5))
    assert [len(p) for p in unbroken] == [MAX_SENTENCE_CHARS, MAX_SENTENCE_CHARS, 5]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "empty"),
        (" \n\t", "empty"),
        ("😀 🎉 !!!", "unspeakable"),
        ("... ???", "unspeakable"),
        ("漢字", "unspeakable"),
    ],
)
def test_empty_and_unspeakable_text(text, kind):
    with pytest.raises(SpeechError) as caught:
        sentences(text, "en-US")
    assert caught.value.kind == kind


def test_lone_punctuation_joins_the_word_before_it_and_unspeakable_lines_are_dropped():
    # eSpeak would read a lone "!!!" as "exclamation".
    assert sentences("Hello. 😀 !!! Goodbye.", "en") == ["Hello.!!!", "Goodbye."]
    assert sentences('Hello.\n" (…) "\nGoodbye.', "en") == ["Hello.", "Goodbye."]


def test_numbers_too_long_for_quantities_are_read_digit_by_digit():
    assert normalize("Call 12345678901234567890 now.", "en") == (
        "Call one two three four five six seven eight nine zero one two three four five six seven eight nine "
        "zero now."
    )
    assert normalize("Costs $12345678901234567.50 today.", "en").startswith("Costs one two three")
    assert (
        normalize("The 12345678901234567th time.", "en")
        == "The " + numbers.digits("12345678901234567") + "th time."
    )
    assert numbers.integer("007") == "seven" and numbers.integer("0" * 20) == " ".join(["zero"] * 20)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7" * 4400, "a number of 4400 digits; numbers of up to 100 digits"),
        ("1" + ",000" * 1500, "a number of 4501 digits"),
        ("Pi is " + "3." + "1" * 200, "a number of 201 digits"),
        ("word " * 30_000, "text has 150000 characters; at most 100000"),
        ("Yes. " * 2500, "text makes 2500 sentences; at most 2000"),
    ],
    ids=["digits", "grouped digits", "decimals", "characters", "sentences"],
)
def test_budgets_are_checked_before_the_work(text, message):
    with pytest.raises(SpeechError, match=message) as caught:
        sentences(text, "en")
    assert caught.value.kind == "too_large"


def test_budgets_are_parameters():
    assert len(sentences("Yes. " * 2500, "en", max_sentences=3000)) == 2500
    with pytest.raises(SpeechError, match="text has 12 characters; at most 10"):
        sentences("Hello there.", "en", max_text_chars=10)
    assert sentences("Call 1234567 now.", "en", max_number_digits=7)
    with pytest.raises(SpeechError, match="a number of 7 digits"):
        sentences("Call 1234567 now.", "en", max_number_digits=6)


# Text shapes that once cost the square of their length (each run ends in a letter: a run
# of marks must fail to end a sentence there): runs of marks, abbreviations,
# initials, dotted letters ("a.a.a." was tried from every letter), "St." and dates
# looking back over the whole text, and long digit runs tried from every digit.
SHAPES = {
    "dots": ".",
    "marks": "?!",
    "dotted letters": "a.",
    "initials": "A. ",
    "titles": "Dr. ",
    "abbreviations": "etc. ",
    "saints": "St. X ",
    "dates": "5 May ",
    "digits": "7",
    "grouped digits": "1,",
    "percent-less decimals": "1.",
    "line breaks": "\n",
    "clauses": "a, ",
}


@pytest.mark.parametrize("unit", SHAPES.values(), ids=SHAPES.keys())
def test_text_preparation_takes_linear_time(unit):
    def prepare(text: str) -> None:
        split_sentences(normalize(text, "en"))

    assert_linear(prepare, lambda n: unit * (n // len(unit)) + "x", 4000)
