"""What each image asks of the detector, checked against what the model knows.

Torch-free, so the HTTP layer shares the limits and messages with the runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD, MAX_DETECTIONS


@dataclass(frozen=True)
class DetectOptions:
    score_threshold: float = DEFAULT_SCORE_THRESHOLD  # keep detections scoring at least this
    max_detections: int = DEFAULT_MAX_DETECTIONS  # the highest-scoring ones, at most this many
    classes: tuple[str, ...] | None = None  # only these labels (None: every label)

    def check(self) -> None:
        """ValueError naming the accepted range for a value out of it."""
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, got {self.score_threshold}")
        if not 1 <= self.max_detections <= MAX_DETECTIONS:
            raise ValueError(
                f"max_detections must be between 1 and {MAX_DETECTIONS}, got {self.max_detections}"
            )


def split_names(values: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """A list option as sent over HTTP (`classes`, `tasks`): one value or several, each
    possibly comma-separated (`person,cup`) -> the names, or None when there are none."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    names = tuple(part.strip() for value in values for part in value.split(",") if part.strip())
    return names or None


def canonical_classes(requested: Sequence[str], labels: Sequence[str]) -> tuple[str, ...]:
    """The model's spelling of each requested label (matched case-insensitively); ValueError
    listing the model's labels when one is unknown."""
    by_folded = {label.casefold(): label for label in labels}
    unknown = [name for name in requested if name.casefold() not in by_folded]
    if unknown:
        raise ValueError(
            f"unknown class(es) {', '.join(map(repr, unknown))}; this model detects: {', '.join(labels)}"
        )
    return tuple(dict.fromkeys(by_folded[name.casefold()] for name in requested))
