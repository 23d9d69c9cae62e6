"""English number words: cardinals, ordinals, years, decimals, digit strings.

Written here (about 80 lines) rather than taken from a package: num2words is LGPL and
inflect pulls in typeguard and more-itertools for the same few functions.
"""

from __future__ import annotations

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
# Beyond this, numbers are read digit by digit (an account number, not a quantity).
LARGEST_CARDINAL = 10**15 - 1
CARDINAL_DIGITS = len(str(LARGEST_CARDINAL))

IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(TENS[tens] + (f"-{ONES[ones]}" if ones else ""))
    elif rest or not hundreds:
        words.append(ONES[rest])
    return " ".join(words)


def cardinal(n: int) -> str:
    """12345 -> "twelve thousand three hundred forty-five"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > LARGEST_CARDINAL:
        return digits(str(n))
    words = []
    for value, name in SCALES:
        if n >= value:
            count, n = divmod(n, value)
            words.append(f"{_below_thousand(count)} {name}")
    if n or not words:
        words.append(_below_thousand(n))
    return " ".join(words)


def integer(text: str) -> str:
    """A written integer ("12345", "007") read as a quantity, or digit by digit when it is
    longer than a quantity: never converted to an int whole (Python refuses to convert
    strings over 4,300 digits, and a long one costs quadratic time)."""
    if len(text) > CARDINAL_DIGITS:
        return digits(text)
    return cardinal(int(text))


def ordinal(n: int) -> str:
    """21 -> "twenty-first"."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-") if "-" in words.split()[-1] else words.rpartition(" ")
    if last in IRREGULAR_ORDINALS:
        last = IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """How years are read: 1984 "nineteen eighty-four", 1905 "nineteen oh five",
    2000 "two thousand", 2008 "two thousand eight", 2024 "twenty twenty-four"."""
    if not 1000 <= n <= 9999 or 2000 <= n <= 2009:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def digits(text: str) -> str:
    """ "0042" -> "zero zero four two"."""
    return " ".join(ONES[int(d)] for d in text if d.isdigit())


def decimal(text: str) -> str:
    """ "3.14" -> "three point one four"; "1,250.5" -> "one thousand two hundred fifty point five"."""
    whole, _, fraction = text.replace(",", "").partition(".")
    spoken = integer(whole) if whole else "zero"
    return f"{spoken} point {digits(fraction)}" if fraction else spoken
