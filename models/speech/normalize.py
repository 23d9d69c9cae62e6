"""Text normalisation: written text -> the words a speaker would say.

A phonemiser reads "$5" as "dollar five", "Dr." as the end of a sentence and "3/4/2021"
as "three slash four slash ...". English text is rewritten here first: currency, dates,
times, ordinals, percentages, units, numbers, abbreviations and symbols. Other languages
get only the language-neutral cleanup (Unicode forms, quotes, dashes, emoji); their
voices read numbers by their own rules (eSpeak's per-language number rules) or not at all.

Pure Python, no model: the HTTP entry service runs it to split a request into sentences.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from . import numbers

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
MONTH_ABBREVIATIONS = {m[:3].lower(): m for m in MONTHS} | {"sept": "September"}
MONTH_PATTERN = "|".join(MONTHS)

# Always followed by a name: the period never ends a sentence.
TITLES = {
    "mr": "Mister",
    "mrs": "Missus",
    "ms": "Miz",
    "dr": "Doctor",
    "prof": "Professor",
    "rev": "Reverend",
    "gen": "General",
    "capt": "Captain",
    "sgt": "Sergeant",
    "mt": "Mount",
}
# May end a sentence: the period is kept when what follows starts a new one.
ABBREVIATIONS = {
    "jr": "Junior",
    "sr": "Senior",
    "etc": "et cetera",
    "vs": "versus",
    "approx": "approximately",
    "inc": "Incorporated",
    "ltd": "Limited",
    "corp": "Corporation",
    "co": "Company",
    "dept": "Department",
    "est": "established",
    "ave": "Avenue",
    "blvd": "Boulevard",
    "rd": "Road",
}
LATIN = {"e.g.": "for example", "i.e.": "that is", "a.k.a.": "also known as", "cf.": "compare"}

CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "US$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
# Unit symbols after a number, matched case-sensitively ("5 M" is not five meters).
UNITS = {
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mi": ("mile", "miles"),
    "ml": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "ms": ("millisecond", "milliseconds"),
    "min": ("minute", "minutes"),
}
SYMBOLS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "×": " times ", "÷": " divided by "}
MAGNITUDES = "thousand|million|billion|trillion"
FRACTIONS = {(1, 2): "one half", (1, 4): "one quarter", (3, 4): "three quarters"}

NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
# Where a number may start: not inside another one ("12345" is tried from "1" only, not
# from each digit again: rules that fail after a number would otherwise cost the square
# of its length).
NUMBER_START = r"(?<!\d)(?<!\d[.,])"
Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]


def normalize(text: str, language: str = "en") -> str:
    """The speakable form of `text` for a voice of `language` (a BCP-47 tag or code)."""
    text = clean(text)
    if language.lower().replace("_", "-").split("-")[0] in ("en", "eng"):
        for pattern, replace in ENGLISH_RULES:
            text = pattern.sub(replace, text)
        text = drop_unreadable_scripts(text)
    return re.sub(r"[ \t]+", " ", text).strip()


def clean(text: str) -> str:
    """Language-neutral cleanup: compatibility forms (full-width digits, ligatures),
    typographic quotes and dashes, and characters no voice can say (emoji, pictographs,
    control and private-use characters) removed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_TYPOGRAPHY)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\t" or category[0] in "LNPZM" or category in ("Sc", "Sm") or char in "°":
            kept.append(char)
        elif category == "Cc" or category[0] == "S":
            kept.append(" ")
        # Cf (zero-width joiners, emoji variation selectors), Co, Cs, Cn are dropped
    # Punctuation standing alone ("Hello. !!!" once the emoji between is gone) would be
    # read out ("exclamation"): it joins the word before it, or goes at a line's start.
    text = _LONE_PUNCTUATION.sub(r"\1", "".join(kept))
    return _LEADING_PUNCTUATION.sub("", text)


_LONE_PUNCTUATION = re.compile(r"(?<=\S)[ \t]+([!?.,;:]+)(?=\s|$)")
_LEADING_PUNCTUATION = re.compile(r"^[ \t]*[!?.,;:]+(?:[ \t]+|$)", re.M)


_TYPOGRAPHY = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "–": "-",
        "—": ", ",
        "―": ", ",
        "…": "...",
        "\u00a0": " ",
        "\r": "\n",
    }
)

# CJK and Hangul letters: eSpeak's English reads each as "Chinese letter"/"Korean letter".
_UNREADABLE_IN_ENGLISH = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def drop_unreadable_scripts(text: str) -> str:
    return _UNREADABLE_IN_ENGLISH.sub(" ", text)


def _plural(n: str, one: str, many: str) -> str:
    return one if n.replace(",", "") in ("1", "1.0") else many


def _currency(match: re.Match[str]) -> str:
    one, many, cent, cents = CURRENCIES[match["symbol"]]
    amount, magnitude = match["amount"].replace(",", ""), match["magnitude"]
    if magnitude:  # "$1.5 million" -> "one point five million dollars"
        return f"{numbers.decimal(amount)} {magnitude} {many}"
    whole, _, fraction = amount.partition(".")
    spoken = f"{numbers.integer(whole or '0')} {_plural(whole or '0', one, many)}"
    if fraction and cent and int(fraction[:2].ljust(2, "0")):
        hundredths = int(fraction[:2].ljust(2, "0"))
        spoken += f" and {numbers.cardinal(hundredths)} {cent if hundredths == 1 else cents}"
    return spoken


def _date_iso(match: re.Match[str]) -> str:
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0]
    return f"{MONTHS[month - 1]} {numbers.ordinal(day)}, {numbers.year(year)}"


def _date_us(match: re.Match[str]) -> str:
    month, day, year = int(match[1]), int(match[2]), int(match[3])
    if len(match[3]) == 2:
        year += 2000 if year < 50 else 1900
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0]
    return f"{MONTHS[month - 1]} {numbers.ordinal(day)}, {numbers.year(year)}"


def _month_day_year(match: re.Match[str]) -> str:
    spoken = f"{match['month']} {numbers.ordinal(int(match['day']))}"
    return spoken + (f", {numbers.year(int(match['year']))}" if match["year"] else "")


def _day_month_year(match: re.Match[str]) -> str:
    before = match.string[max(0, match.start() - 4) : match.start()]
    article = "" if before.lower() == "the " else "the "
    spoken = f"{article}{numbers.ordinal(int(match['day']))} of {match['month']}"
    return spoken + (f", {numbers.year(int(match['year']))}" if match["year"] else "")


def _title(match: re.Match[str]) -> str:
    return TITLES[match[1].lower()]


def _abbreviation(match: re.Match[str]) -> str:
    word = ABBREVIATIONS[match[1].lower()]
    # "apples, pears etc. The next" keeps its full stop; "etc., and" does not.
    return word + ("." if _starts_sentence(match.string, match.end()) else "")


def _saint_or_street(match: re.Match[str]) -> str:
    # "Baker St." (after a capitalised word) is Street; "St. Louis", "in St. Louis" is Saint.
    before = _previous_word(match.string, match.start())
    if before[:1].isupper() and before[-1:].isalpha():
        return "Street" + ("." if _starts_sentence(match.string, match.end()) else "")
    return "Saint"


def _starts_sentence(text: str, position: int) -> bool:
    """Whether a new sentence starts after `position` (or the text ends there)."""
    return _SENTENCE_STARTS.match(text, position) is not None


_SENTENCE_STARTS = re.compile(r"\s*+$|\s+[\"'(]?[A-Z]")


def _previous_word(text: str, position: int) -> str:
    """The word before `position` (whitespace skipped), looked for without copying the
    text before it: rules call this once per match."""
    end = position
    while end and text[end - 1].isspace():
        end -= 1
    start = end
    while start and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _month_abbreviation(match: re.Match[str]) -> str:
    return MONTH_ABBREVIATIONS[match[1].lower()] + " "


def _unit(match: re.Match[str]) -> str:
    one, many = UNITS[match["unit"]]
    return f"{match['number']} {_plural(match['number'], one, many)}"


def _fraction(match: re.Match[str]) -> str:
    top, bottom = int(match[1]), int(match[2])
    if (top, bottom) in FRACTIONS:
        return FRACTIONS[(top, bottom)]
    if bottom < 2:
        return match[0]
    denominator = numbers.ordinal(bottom) if bottom > 2 else "half"
    return f"{numbers.cardinal(top)} {denominator}{'s' if top != 1 else ''}"


def _number(match: re.Match[str]) -> str:
    text = match[0]
    if "." in text:
        return numbers.decimal(text)
    return numbers.integer(text.replace(",", ""))


def _ordinal(match: re.Match[str]) -> str:
    return numbers.ordinal(int(match[1])) if len(match[1]) <= numbers.CARDINAL_DIGITS else match[0]


def _decade(match: re.Match[str]) -> str:
    spoken = numbers.year(int(match[1]))  # "nineteen ninety" -> "nineteen nineties"
    return spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"


def _spell_out(match: re.Match[str]) -> str:
    # "U.S.A." -> "U S A": letters said one by one, and no sentence break after the dots.
    return " ".join(match[0].replace(".", "").strip()) + " "


def _phone(match: re.Match[str]) -> str:
    return ", ".join(numbers.digits(group) for group in match.groups() if group)


def _clock(hour: str, minute: str, period: str | None) -> str:
    spoken = numbers.cardinal(int(hour))
    if int(minute or 0):
        spoken += (
            f" oh {numbers.cardinal(int(minute))}"
            if int(minute) < 10
            else f" {numbers.cardinal(int(minute))}"
        )
    elif not period:
        spoken += " o'clock"
    if period:
        spoken += " " + " ".join(period.replace(".", "").lower())
    return spoken


def _time(match: re.Match[str]) -> str:
    if int(match["hour"]) > 23 or int(match["minute"] or 0) > 59:
        return match[0]
    spoken = _clock(match["hour"], match["minute"], match["period"])
    # "at 10 a.m. Then" : the last dot of "a.m." is also the full stop.
    return spoken + ("." if match[0].endswith(".") and _starts_sentence(match.string, match.end()) else "")


_CURRENCY_SYMBOL = "|".join(re.escape(s) for s in sorted(CURRENCIES, key=len, reverse=True))
_UNIT_SYMBOL = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_PERIOD = r"(?P<period>[ap]\.?m\.?)(?![\w.])"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>\d{4})\b)?"

# Applied in order: each rule sees the output of the ones before it.
ENGLISH_RULES: list[Rule] = [
    (
        re.compile(r"(?<!\w)(?:" + "|".join(re.escape(k) for k in LATIN) + r")(?=\W|$)", re.I),
        lambda m: LATIN[m[0].lower()],
    ),
    (re.compile(r"\b(" + "|".join(TITLES) + r")\.(?=\s)", re.I), _title),
    (re.compile(r"\bSt\.(?=\s|$)"), _saint_or_street),
    (re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\.(?=\W|$)", re.I), _abbreviation),
    (re.compile(r"\b(" + "|".join(MONTH_ABBREVIATIONS) + r")\.?\s+(?=\d)", re.I), _month_abbreviation),
    (re.compile(r"\bNo\.\s*(?=\d)", re.I), lambda m: "number "),
    (re.compile(r"#\s*(?=\d)"), lambda m: "number "),
    (re.compile(r"\((\d{3})\)\s*(\d{3})-(\d{4})\b|\b(\d{3})-(\d{3})-(\d{4})\b|\b(\d{3})-(\d{4})\b"), _phone),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), _date_iso),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), _date_us),
    (re.compile(rf"\b(?P<month>{MONTH_PATTERN})\s+{_DAY}\b{_YEAR}"), _month_day_year),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?(?P<month>{MONTH_PATTERN})\b{_YEAR}"), _day_month_year),
    (re.compile(rf"\b(?P<hour>\d{{1,2}}):(?P<minute>\d{{2}})\b(?:\s*{_PERIOD})?", re.I), _time),
    (re.compile(rf"\b(?P<hour>\d{{1,2}})(?P<minute>)\s*{_PERIOD}", re.I), _time),
    (re.compile(r"(?<![\w.])(?:[A-Za-z]\.){2,}+(?:\s|$)"), _spell_out),
    (
        re.compile(
            rf"(?P<symbol>{_CURRENCY_SYMBOL})\s?(?P<amount>{NUMBER})(?:\s(?P<magnitude>{MAGNITUDES})\b)?"
        ),
        _currency,
    ),
    (re.compile(rf"{NUMBER_START}({NUMBER})\s?%"), lambda m: f"{m[1]} percent"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I), _ordinal),
    (re.compile(r"\b(1[1-9]\d0|20\d0)'?s\b"), _decade),
    (
        re.compile(
            r"\b(?P<before>(?:in|since|by|from|until|of|during|before|after|year|circa|around)\s+)"
            r"(?P<year>1[1-9]\d\d|20\d\d)\b(?![,.]\d)",
            re.I,
        ),
        lambda m: m["before"] + numbers.year(int(m["year"])),
    ),
    (re.compile(r"\b(1[1-9]\d\d|20\d\d)(?=\s*(?:AD|BC|BCE|CE)\b)"), lambda m: numbers.year(int(m[1]))),
    (re.compile(rf"{NUMBER_START}(?P<number>{NUMBER})\s?(?P<unit>{_UNIT_SYMBOL})(?![\w°/])"), _unit),
    (re.compile(r"(?<![\d/])(\d{1,3})/(\d{1,3})(?![\d/])"), _fraction),
    (re.compile(rf"(?<![\w.])({NUMBER})\s?-\s?(?=(?:{NUMBER}))"), lambda m: f"{m[1]} to "),
    (re.compile(rf"(?<![\w.])-(?={NUMBER})"), lambda m: "minus "),
    (re.compile(r"\band/or\b"), lambda m: "and or"),
    (re.compile("|".join(re.escape(s) for s in SYMBOLS)), lambda m: SYMBOLS[m[0]]),
    (re.compile(NUMBER), _number),
]
