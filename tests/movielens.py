"""MovieLens-100K as shipped by the recbole package, read here with the csv module alone:
the ground truth the recommendation tests check the runtime's answers against."""

from __future__ import annotations

import csv
import functools
from collections import defaultdict
from pathlib import Path

from models.recommendation.loaders import PACKAGED
from models.sources import package_file

SPEC = PACKAGED["movielens-100k"]
STAR_WARS, EMPIRE_STRIKES_BACK, RETURN_OF_THE_JEDI = "50", "172", "181"
TOY_STORY, ALADDIN, LION_KING = "1", "95", "71"


def interactions_file() -> Path:
    return package_file(SPEC.distribution, SPEC.interactions)


def items_file() -> Path:
    return package_file(SPEC.distribution, SPEC.items)


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t"))[1:]


@functools.cache
def ratings() -> list[tuple[str, str, str, str]]:
    """(user, item, rating, timestamp) rows, in file order."""
    return [(u, i, r, t) for u, i, r, t in _rows(interactions_file())]


@functools.cache
def seen_by_user() -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for user, item, _, _ in ratings():
        seen[user].add(item)
    return dict(seen)


@functools.cache
def genres_by_item() -> dict[str, set[str]]:
    return {item: set(genres.split()) for item, _, _, genres in _rows(items_file())}


@functools.cache
def titles_by_item() -> dict[str, str]:
    return {item: title for item, title, _, _ in _rows(items_file())}


def write_csv(path: Path, header: list[str], rows: list[tuple | list]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
