"""Interaction and item tables for training a recommender: CSV, TSV or Parquet, local or S3.

Interactions have one row per event with columns `user` and `item` (or `user_id`,
`item_id`) and optionally `rating` and `timestamp` (Unix seconds or an ISO 8601 date).
Items (optional) have `item` plus any of `title`, `year`, `genres`, `description`; their text
feeds the content embeddings. The first row is the header.

A malformed row stops reading with an error naming its line (CSV) or row (Parquet): a
model trained on silently skipped rows would report metrics for data nobody meant.
Nothing here imports torch.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..sources import fetch_s3_file

USER_COLUMNS = ("user", "user_id", "userid")
ITEM_COLUMNS = ("item", "item_id", "itemid")
RATING_COLUMNS = ("rating",)
TIME_COLUMNS = ("timestamp", "time")
TITLE_COLUMNS = ("title", "name", "movie_title")
YEAR_COLUMNS = ("year", "release_year")
GENRE_COLUMNS = ("genres", "genre", "class")
DESCRIPTION_COLUMNS = ("description", "text", "overview")
TAB_SUFFIXES = (".tsv", ".tab", ".inter", ".item")  # .inter/.item: RecBole atomic files
PARQUET_SUFFIXES = (".parquet", ".pq")
ACCEPTED = "accepted: .csv, .tsv (optionally .gz) or .parquet, a local path or an s3:// URI"


class DataError(ValueError):
    """Training data that cannot be used; the message names the file and the line or row."""


@dataclass
class Interactions:
    """Unique (user, item) pairs as indices into `user_ids` / `item_ids`."""

    users: np.ndarray  # int64, one entry per unique pair
    items: np.ndarray  # int64
    timestamps: np.ndarray | None  # float64 Unix seconds: the pair's earliest event; None if untimed
    user_ids: list[str]
    item_ids: list[str]
    rows_read: int  # rows in the file(s), before dropping duplicates and low ratings
    source: str = ""

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass
class ItemTable:
    item_ids: list[str]
    titles: list[str | None]
    texts: list[str]  # what the content encoder embeds


def read_interactions(location: str | Path, *, min_rating: float | None = None) -> Interactions:
    """Read interactions from a local path or s3:// URI; raises DataError naming the bad line."""
    name, header, columns, rows = _table(location, "user and item columns")
    user_col = _find(columns, USER_COLUMNS, name, header, required=True)
    item_col = _find(columns, ITEM_COLUMNS, name, header, required=True)
    rating_col = _find(columns, RATING_COLUMNS, name, header)
    time_col = _find(columns, TIME_COLUMNS, name, header)
    if min_rating is not None and rating_col is None:
        raise DataError(f"{name}: a minimum rating was given but the file has no rating column")
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    users: list[int] = []
    items: list[int] = []
    times: list[float] = []
    rows_read = 0
    for values, where in rows:
        rows_read += 1
        if len(values) != len(header):
            raise DataError(
                f"{where}: expected {len(header)} fields ({', '.join(map(str, header))}), found {len(values)}"
            )
        user = _identifier(values[user_col], "user", where)
        item = _identifier(values[item_col], "item", where)
        if rating_col is not None:
            rating = _number(values[rating_col], "rating", where)
            if min_rating is not None and rating < min_rating:
                continue
        if time_col is not None:
            times.append(_timestamp(values[time_col], where))
        users.append(user_index.setdefault(user, len(user_index)))
        items.append(item_index.setdefault(item, len(item_index)))
    if not users:
        raise DataError(
            f"{name} has no interactions" + (" at or above the minimum rating" if rows_read else "")
        )
    u, i, t = _unique_pairs(
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        np.asarray(times, np.float64) if time_col is not None else None,
        len(item_index),
    )
    return Interactions(u, i, t, list(user_index), list(item_index), rows_read, source=str(location))


def read_items(location: str | Path, *, genre_separator: str = "|") -> ItemTable:
    """Read an item table (item plus title/year/genres/description); DataError on bad rows."""
    name, header, columns, rows = _table(location, "an item column")
    item_col = _find(columns, ITEM_COLUMNS, name, header, required=True)
    optional = {
        key: _find(columns, aliases, name, header)
        for key, aliases in (
            ("title", TITLE_COLUMNS),
            ("year", YEAR_COLUMNS),
            ("genres", GENRE_COLUMNS),
            ("description", DESCRIPTION_COLUMNS),
        )
    }
    if all(col is None for col in optional.values()):
        raise DataError(
            f"{name}: no item text; header has {', '.join(map(str, header))}, "
            "expected at least one of title, year, genres, description"
        )
    first_seen: dict[str, str] = {}
    table = ItemTable([], [], [])
    for values, where in rows:
        if len(values) != len(header):
            raise DataError(f"{where}: expected {len(header)} fields, found {len(values)}")
        item = _identifier(values[item_col], "item", where)
        if item in first_seen:
            raise DataError(f"{where}: item {item!r} is listed twice (first on {first_seen[item]})")
        first_seen[item] = where.removeprefix(name + " ")
        fields = {key: _text(values[col]) if col is not None else "" for key, col in optional.items()}
        genres = [g.strip() for g in fields["genres"].split(genre_separator) if g.strip()]
        table.item_ids.append(item)
        table.titles.append(fields["title"] or None)
        table.texts.append(item_text(fields["title"], fields["year"], genres, fields["description"]))
    if not table.item_ids:
        raise DataError(f"{name} has no items")
    return table


def item_text(title: str, year: str, genres: list[str], description: str = "") -> str:
    """The sentence the content encoder embeds: "Toy Story (1995). Genres: Animation, Comedy.";
    empty when there is nothing to say."""
    head = f"{title} ({year})" if title and year.isdigit() else title
    parts = [head, f"Genres: {', '.join(genres)}" if genres else "", description.strip().rstrip(".")]
    parts = [p for p in parts if p]
    return ". ".join(parts) + "." if parts else ""


# --- files ---------------------------------------------------------------------------------


def _table(
    location: str | Path, expected: str
) -> tuple[str, list[Any], dict[str, int], Iterator[tuple[list[Any], str]]]:
    """(name for errors, header, column positions, the remaining rows) of a table file."""
    path, name = _local(location)
    rows = _rows(path, name)
    header, _ = next(rows, (None, ""))
    if header is None:
        raise DataError(f"{name} is empty; expected a header row with {expected}")
    return name, header, _columns(header, name), rows


def _local(location: str | Path) -> tuple[Path, str]:
    """A local path for `location` and the name errors use for it."""
    text = str(location)
    if text.startswith("s3://"):
        return fetch_s3_file(text), text.rsplit("/", 1)[-1]
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataError(f"{text}: no such file; {ACCEPTED}")
    return path, path.name


def _rows(path: Path, name: str) -> Iterator[tuple[list[Any], str]]:
    """(values, "name line N") for every row, the header first."""
    suffix = path.name.lower().removesuffix(".gz")
    if suffix.endswith(PARQUET_SUFFIXES):
        return _parquet_rows(path, name)
    if suffix.endswith(".csv") or suffix.endswith(TAB_SUFFIXES):
        return _csv_rows(path, name, "\t" if suffix.endswith(TAB_SUFFIXES) else ",")
    raise DataError(f"{name}: unknown file type; {ACCEPTED}")


def _csv_rows(path: Path, name: str, delimiter: str) -> Iterator[tuple[list[Any], str]]:
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        reader = csv.reader(_utf8_lines(handle, name), delimiter=delimiter, strict=True)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                kind = "TSV" if delimiter == "\t" else "CSV"
                raise DataError(f"{name} line {reader.line_num}: malformed {kind}: {exc}") from None
            except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
                raise DataError(f"{name}: cannot be read: {exc}") from None
            if values:  # blank lines carry nothing
                yield values, f"{name} line {reader.line_num}"


def _utf8_lines(handle: Any, name: str) -> Iterator[str]:
    """Lines decoded one at a time, so a decoding error names its own line."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{name} line {number}: not UTF-8 text") from None


def _parquet_rows(path: Path, name: str) -> Iterator[tuple[list[Any], str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{name}: not a readable Parquet file: {exc}") from None
    yield list(table.column_names), f"{name} schema"
    columns = [column.to_pylist() for column in table.columns]
    for row, values in enumerate(zip(*columns, strict=True), start=1):
        yield list(values), f"{name} row {row}"


def _columns(header: list[Any], name: str) -> dict[str, int]:
    """Column name -> position; RecBole's `name:type` headers count as `name`."""
    columns: dict[str, int] = {}
    for position, raw in enumerate(header):
        key = str(raw).strip().lower().partition(":")[0]
        if key in columns:
            raise DataError(f"{name}: column {key!r} appears twice in the header")
        columns[key] = position
    return columns


def _find(
    columns: dict[str, int], aliases: tuple[str, ...], name: str, header: list[Any], required: bool = False
) -> int | None:
    for alias in aliases:
        if alias in columns:
            return columns[alias]
    if required:
        raise DataError(
            f"{name}: no {aliases[0]!r} column; header has {', '.join(map(str, header))}; "
            f"expected {' or '.join(aliases)}"
        )
    return None


# --- values ---------------------------------------------------------------------------------


def _identifier(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise DataError(f"{where}: empty {what}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Parquet integer ids that went through a float column
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: empty {what}")
    return text


def _number(value: Any, what: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: {what} {value!r} is not a finite number")
    return number


def _timestamp(value: Any, where: str) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    try:
        return _number(value, "timestamp", where)
    except DataError:
        pass
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise DataError(
            f"{where}: timestamp {value!r} is neither a number (Unix seconds) nor an ISO 8601 date"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _unique_pairs(
    users: np.ndarray, items: np.ndarray, times: np.ndarray | None, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One entry per (user, item) pair, keeping its earliest time, in first-seen row order."""
    keys = users * n_items + items
    # sorted by pair, then time: the first of each run of equal keys is the earliest event
    order = np.lexsort((times, keys)) if times is not None else np.argsort(keys, kind="stable")
    _, first = np.unique(keys[order], return_index=True)
    keep = np.sort(order[first])
    return users[keep], items[keep], (times[keep] if times is not None else None)
