"""Batch inputs: a folder, a glob, a JSONL file, or an s3:// prefix (or .jsonl object),
read lazily, one `Record` at a time, so a job over millions of files holds none of them.

Every record has an id, the key that makes resuming exact: the path relative to the
folder (or S3 prefix), the matched path for a glob, the "id" field of a JSONL record.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .s3 import S3Location, is_s3_uri

InputKind = Literal["image", "video", "text", "json"]

EXTENSIONS: dict[str, frozenset[str]] = {
    "image": frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"}),
    "video": frozenset({".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v"}),
    "text": frozenset({".txt"}),
}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# the JSONL field that holds a record's file, per input kind
FILE_FIELDS = {"image": "image", "video": "video"}


class InputError(ValueError):
    """The input cannot be read at all (not one record: the whole job)."""


@dataclass(frozen=True)
class LocalFile:
    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class S3File:
    location: S3Location

    def describe(self) -> str:
        return self.location.uri


@dataclass(frozen=True)
class InlineFile:
    data: bytes = field(repr=False)

    def describe(self) -> str:
        return f"<{len(self.data)} bytes inline>"


FileRef = LocalFile | S3File | InlineFile


@dataclass(frozen=True)
class Record:
    """One unit of work: an id, a file (image and video tasks) or fields (text and JSON
    tasks: "text", "user_id", ...), and per-record options (JSONL fields such as top_k)."""

    id: str
    file: FileRef | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a record that could not be read: written as failed, not sent


class Source:
    """An input, iterated lazily. `describe()` names it in messages."""

    def records(self) -> Iterator[Record]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def open_input(spec: str, kind: InputKind) -> Source:
    """The source that `spec` names: s3://bucket/prefix/, s3://bucket/records.jsonl, a
    folder, a JSONL file, a glob pattern ("photos/**/*.jpg") or a single file."""
    if is_s3_uri(spec):
        location = S3Location.parse(spec)
        if location.key.endswith(JSONL_SUFFIXES):
            return JsonlSource(spec, kind, s3=location)
        if kind == "json":
            raise InputError(f"{spec}: this task reads JSONL records (an s3://bucket/key.jsonl object)")
        return S3PrefixSource(location, kind)
    path = Path(spec)
    if path.is_dir():
        if kind == "json":
            raise InputError(f"{spec}: this task reads JSONL records, not a folder")
        return FolderSource(path, kind)
    if path.is_file() and path.name.endswith(JSONL_SUFFIXES):
        return JsonlSource(spec, kind)
    if glob.has_magic(spec) or path.is_file():
        if kind == "json":
            raise InputError(f"{spec}: this task reads JSONL records (a .jsonl file)")
        return GlobSource(spec, kind)
    raise InputError(f"{spec}: no such folder, file or matching glob")


class FolderSource(Source):
    """Files under a folder (recursively; hidden entries skipped) with the task's extensions.
    Directories are scanned entry by entry (os.scandir), never listed whole."""

    def __init__(self, root: Path, kind: InputKind):
        self.root, self.kind = root, kind

    def describe(self) -> str:
        return f"folder {self.root}"

    def records(self) -> Iterator[Record]:
        extensions = EXTENSIONS[self.kind]
        for path in _walk(self.root):
            if path.suffix.lower() in extensions:
                yield Record(path.relative_to(self.root).as_posix(), file=LocalFile(path))


def _walk(directory: Path) -> Iterator[Path]:
    try:
        entries = os.scandir(directory)
    except OSError as error:
        raise InputError(f"cannot read {directory}: {error}") from error
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)


class GlobSource(Source):
    """Files matching a glob (`**` recurses); the id is the matched path as written."""

    def __init__(self, pattern: str, kind: InputKind):
        self.pattern, self.kind = pattern, kind

    def describe(self) -> str:
        return f"glob {self.pattern}"

    def records(self) -> Iterator[Record]:
        for match in glob.iglob(self.pattern, recursive=True):
            path = Path(match)
            if path.is_file():
                yield Record(path.as_posix(), file=LocalFile(path))


class S3PrefixSource(Source):
    """Objects under an S3 prefix with the task's extensions, listed page by page."""

    def __init__(self, location: S3Location, kind: InputKind):
        self.location, self.kind = location, kind

    def describe(self) -> str:
        return self.location.uri

    def records(self) -> Iterator[Record]:
        extensions = EXTENSIONS[self.kind]
        prefix = self.location.key
        for key in self.location.iter_keys():
            if key.endswith("/") or os.path.splitext(key)[1].lower() not in extensions:
                continue
            record_id = key[len(prefix) :].lstrip("/") or key
            yield Record(record_id, file=S3File(S3Location(self.location.bucket, key)))


class JsonlSource(Source):
    """One JSON object per line, each with an "id". The file goes in "image" / "video" (a
    path relative to the JSONL file, an absolute path or an s3:// URI) or "image_base64" /
    "video_base64"; text tasks take "text"; other fields are the record's own options
    (e.g. "top_k", "target") or, for JSON tasks, the request itself ("user_id", "k")."""

    def __init__(self, spec: str, kind: InputKind, s3: S3Location | None = None):
        self.spec, self.kind, self.s3 = spec, kind, s3
        self.base = None if s3 else Path(spec).resolve().parent

    def describe(self) -> str:
        return f"JSONL {self.spec}"

    def _lines(self) -> Iterator[bytes]:
        if self.s3 is not None:
            yield from self.s3.iter_lines()
            return
        with open(self.spec, "rb") as handle:
            yield from handle

    def records(self) -> Iterator[Record]:
        for number, line in enumerate(self._lines(), start=1):
            if line.strip():
                yield self.parse(number, line)

    def parse(self, number: int, line: bytes) -> Record:
        where = f"#line-{number}"  # the id of a record that has none, so it is written once
        try:
            data = json.loads(line)
        except ValueError as error:
            return Record(where, error=f"line {number} is not JSON: {error}")
        if not isinstance(data, dict):
            return Record(where, error=f"line {number} is not a JSON object")
        record_id = data.pop("id", None)
        if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
            return Record(where, error=f'line {number} has no "id" (a string or an integer)')
        record_id = str(record_id)
        if self.kind not in FILE_FIELDS:
            return Record(record_id, fields=data)
        name = FILE_FIELDS[self.kind]
        try:
            ref = self._file_ref(data, name)
        except ValueError as error:
            return Record(record_id, error=f"line {number}: {error}")
        return Record(record_id, file=ref, fields=data)

    def _file_ref(self, data: dict[str, Any], name: str) -> FileRef:
        inline = data.pop(f"{name}_base64", None)
        where = data.pop(name, None)
        if (inline is None) == (where is None):
            raise ValueError(f'give exactly one of "{name}" (a path or s3:// URI) or "{name}_base64"')
        if inline is not None:
            try:
                return InlineFile(base64.b64decode(inline, validate=True))
            except (binascii.Error, ValueError, TypeError):
                raise ValueError(f'"{name}_base64" is not valid base64') from None
        if not isinstance(where, str) or not where:
            raise ValueError(f'"{name}" must be a path or an s3:// URI')
        if is_s3_uri(where):
            return S3File(S3Location.parse(where))
        if self.s3 is not None:  # relative to the JSONL object's "folder"
            return S3File(self.s3.sibling(where))
        path = Path(where)
        assert self.base is not None  # a local JSONL file
        return LocalFile(path if path.is_absolute() else self.base / path)


def read_file(ref: FileRef) -> bytes:
    """A file's bytes (blocking: call it in a thread)."""
    if isinstance(ref, LocalFile):
        return ref.path.read_bytes()
    if isinstance(ref, S3File):
        return ref.location.read()
    return ref.data


def read_text(ref: FileRef) -> str:
    """A text file's content (the record's text for translate and synthesize)."""
    try:
        return read_file(ref).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{ref.describe()} is not UTF-8 text: {error}") from None
