"""Typed results of every endpoint.

Plain frozen dataclasses, built from the server's JSON by `Result.from_json`. Fields the
SDK does not know are kept in `extra` instead of failing, and fields with a default may be
missing, so a server that adds to its answers does not break older clients. A missing
required field raises `ResponseFormatError` (a server of another generation).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

from .errors import ResponseFormatError

R = TypeVar("R", bound="Result")


@dataclass(frozen=True)
class Result:
    """Base of the result types: `extra` holds the answer's fields this SDK does not know."""

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False, compare=False)

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        if not isinstance(data, dict):
            raise ResponseFormatError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
        hints = _hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name, spec in known.items():
            if name in data:
                values[name] = _convert(hints[name], data[name], f"{cls.__name__}.{name}")
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ResponseFormatError(f"{cls.__name__}: the answer has no {name!r} field: {data!r:.300}")
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The answer as the server sent it (unknown fields included)."""
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(self):
            if spec.name != "extra":
                out[spec.name] = _to_json(getattr(self, spec.name))
        out.update(self.extra)
        return out


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return _HINTS[cls]


def _convert(hint: Any, value: Any, where: str) -> Any:
    """`value` (parsed JSON) as `hint`: nested results are built, containers walked;
    scalars pass as they are (a server that sends 1 for 1.0 is not wrong)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where) if len(options) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Result):
        return hint.from_json(value)
    if origin in (list, tuple) and isinstance(value, list):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict and isinstance(value, dict):
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(item, v, f"{where}[{k!r}]") for k, v in value.items()}
    if origin in (list, tuple, dict):
        raise ResponseFormatError(f"{where}: expected a JSON {'object' if origin is dict else 'array'}")
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, Result):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


# -- classification -------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction(Result):
    label: str
    score: float
    index: int | None = None


@dataclass(frozen=True)
class Classification(Result):
    """One image's classes, best first."""

    model: str
    predictions: list[Prediction]

    @property
    def top(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None


@dataclass(frozen=True)
class Embedding(Result):
    """One image's embedding, from `model`'s backbone."""

    model: str
    embedding: list[float]


# -- detection and video --------------------------------------------------------------


@dataclass(frozen=True)
class Detection(Result):
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the input image's pixels


@dataclass(frozen=True)
class Detections(Result):
    """One image's detected objects."""

    model: str
    width: int
    height: int
    detections: list[Detection]

    def labels(self) -> set[str]:
        return {d.label for d in self.detections}


@dataclass(frozen=True)
class Label(Result):
    label: str
    score: float


@dataclass(frozen=True)
class VideoFrame(Result):
    time_s: float
    detections: list[Detection] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


@dataclass(frozen=True)
class LabelSummary(Result):
    first_s: float  # first analysed frame showing the label
    last_s: float
    max_count: int  # most instances in one frame
    frames: int  # analysed frames showing it


@dataclass(frozen=True)
class VideoAnalysis(Result):
    duration_s: float
    frames: list[VideoFrame]
    summary: dict[str, LabelSummary]


# -- translation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Translation(Result):
    """Translations in input order; `source` is the detected language when "auto" was asked."""

    model: str
    source: str
    target: str
    translations: list[str]


# -- recommendation -------------------------------------------------------------------


@dataclass(frozen=True)
class RecommendedItem(Result):
    item_id: str
    score: float
    title: str | None = None


@dataclass(frozen=True)
class Recommendations(Result):
    """Items best first; `strategy` says how they were found (personal, popular, content)."""

    model: str
    items: list[RecommendedItem]
    strategy: str | None = None

    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]


# -- models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard(Result):
    """A served model: what it does, where its weights come from and under which licence."""

    task: str
    name: str
    source: str
    version: str
    licence: str
    origin: str
    details: dict[str, Any] = field(default_factory=dict)


# -- binary answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Binary:
    """An answer that is a file (an image with boxes drawn, audio)."""

    content: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.content_type.split(";")[0].strip().lower(), "bin")

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_bytes(self.content)
        return target


@dataclass(frozen=True)
class Image(Binary):
    """An encoded image (JPEG or PNG)."""


@dataclass(frozen=True)
class Audio(Binary):
    """Encoded audio (WAV, FLAC, Ogg)."""

    @property
    def sample_rate(self) -> int | None:
        """From the server's X-Sample-Rate header, else from a WAV header."""
        declared = self.headers.get("x-sample-rate")
        if declared and declared.isdigit():
            return int(declared)
        if self.content[:4] == b"RIFF" and self.content[8:16] == b"WAVEfmt ":
            return struct.unpack_from("<I", self.content, 24)[0]
        return None

    @property
    def duration_s(self) -> float | None:
        """Length of a PCM WAV answer (None for compressed formats)."""
        if self.content[:4] != b"RIFF" or self.content[8:12] != b"WAVE":
            return None
        channels, rate = struct.unpack_from("<HI", self.content, 22)
        bits = struct.unpack_from("<H", self.content, 34)[0]
        data = _wav_data_size(self.content)
        if not (channels and rate and bits) or data is None:
            return None
        return data / (channels * rate * bits / 8)


def _wav_data_size(content: bytes) -> int | None:
    offset = 12
    while offset + 8 <= len(content):
        kind, size = content[offset : offset + 4], struct.unpack_from("<I", content, offset + 4)[0]
        if kind == b"data":
            # streamed WAVs declare an open length (0 or 0xFFFFFFFF): count what is there
            available = len(content) - offset - 8
            return available if size in (0, 0xFFFFFFFF) or size > available else size
        offset += 8 + size + (size & 1)
    return None


_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/l16": "pcm",
    "audio/pcm": "pcm",
    "application/octet-stream": "bin",
}
