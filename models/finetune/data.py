"""A user's labelled images: where they are, which label each has, and whether there are
enough of them to train and validate a classifier.

Three layouts are read, all ending as (file, label) pairs:

    DIR/<label>/<image>          a folder per label (images may sit in subfolders)
    s3://bucket/prefix/          the same layout under an S3 prefix (downloaded once, cached)
    manifest.csv                 a CSV with columns path,label; relative paths are relative
                                 to the CSV's folder (local, or s3://.../manifest.csv next to
                                 the images it names)

Bad data is reported, never crashed on: files that are missing or are not images are listed
and skipped (images.py decodes them), and the class checks below name each problem.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..sources import SourceError, fetch_s3

ACCEPTED = (
    "expected a folder of <label>/<image> files, an s3:// prefix laid out the same way, or a CSV "
    "manifest with columns path,label"
)


class DataError(ValueError):
    """Data that cannot train a classifier; the message names the problem and the fix."""


@dataclass(frozen=True)
class Example:
    path: Path
    label: str
    name: str  # as the user knows it: relative to the data folder, or as written in the CSV


@dataclass(frozen=True)
class Listing:
    source: str  # what the user passed
    examples: list[Example]
    labels: list[str]  # every class the data names, sorted (an empty folder is one too)
    ignored: list[str]  # files outside any label folder


def list_examples(data: str) -> Listing:
    """Every (file, label) the data names; raises DataError when it names none."""
    if data.startswith("s3://"):
        local = _fetch_s3_data(data)
    else:
        local = Path(data).expanduser()
        if not local.exists():
            raise DataError(f"{data}: no such file or folder; {ACCEPTED}")
    listing = _read_manifest(data, local) if local.is_file() else _read_folder(data, local)
    if not listing.examples:
        raise DataError(f"{data}: no labelled images found; {ACCEPTED}")
    return listing


def check_classes(counts: Counter[str], labels: list[str], min_per_class: int) -> None:
    """Raise a DataError naming every class problem at once: fewer than two classes, empty
    classes, classes under the minimum. `labels` are all classes the data names (a folder
    whose files were all unreadable still counts as a class, an empty one)."""
    problems = []
    usable = [label for label in labels if counts[label] > 0]
    if len(usable) < 2:
        named = f"only one class ({usable[0]!r})" if usable else "no usable images in any class"
        problems.append(f"{named}: a classifier needs at least two classes with images")
    empty = [label for label in labels if counts[label] == 0]
    if empty:
        problems.append(
            f"{_plural(len(empty), 'class')} without usable images: {', '.join(map(repr, empty))}"
        )
    small = [f"{label!r} ({counts[label]})" for label in labels if 0 < counts[label] < min_per_class]
    if small:
        problems.append(
            f"{_plural(len(small), 'class')} with fewer than {min_per_class} usable images "
            f"(--min-per-class): {', '.join(small)}"
        )
    if problems:
        raise DataError("; ".join(problems))


def fingerprint(entries: list[tuple[str, str, str]]) -> str:
    """sha256 over sorted (name, label, content digest) triples: changes exactly when an
    image, its label or the set of images changes (not when the folder moves)."""
    digest = hashlib.sha256()
    for name, label, content in sorted(entries):
        digest.update(f"{name}\0{label}\0{content}\n".encode())
    return "sha256:" + digest.hexdigest()


def _read_folder(data: str, root: Path) -> Listing:
    examples, ignored = [], []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue  # folders, and hidden files (.DS_Store, a download's markers)
        if len(relative.parts) < 2:
            ignored.append(str(relative))  # not inside a label folder
            continue
        examples.append(Example(path, relative.parts[0], str(relative)))
    # An empty label folder is a class with no images: named, so check_classes reports it.
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return Listing(data, examples, labels, ignored)


def _read_manifest(data: str, manifest: Path) -> Listing:
    if manifest.suffix.lower() != ".csv":
        raise DataError(f"{data}: a file must be a CSV manifest (path,label); {ACCEPTED}")
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in columns or "label" not in columns:
            raise DataError(f"{data}: the CSV needs a header with columns path and label, got {columns}")
        reader.fieldnames = columns
        examples = []
        for line, row in enumerate(reader, start=2):
            path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not path or not label:
                raise DataError(
                    f"{data} line {line}: both path and label are needed, got {path!r}, {label!r}"
                )
            resolved = Path(path).expanduser()
            examples.append(
                Example(resolved if resolved.is_absolute() else manifest.parent / path, label, path)
            )
    return Listing(data, examples, sorted({e.label for e in examples}), [])


def _fetch_s3_data(uri: str) -> Path:
    """The S3 prefix (or the prefix holding a manifest) as a local folder."""
    is_manifest = uri.lower().endswith(".csv")
    prefix = uri.rsplit("/", 1)[0] if is_manifest else uri.rstrip("/")
    try:
        local = fetch_s3(prefix)
    except SourceError as error:
        raise DataError(str(error)) from error
    return local / uri.rsplit("/", 1)[1] if is_manifest else local


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("es" if count != 1 and noun.endswith("s") else "s" if count != 1 else "")
