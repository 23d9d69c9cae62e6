"""What a video analysis says per label: when it was first and last seen, how many at
once at most, and in how many analysed frames."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def summarize(observations: Iterable[tuple[float, Iterable[str]]]) -> dict[str, dict[str, float | int]]:
    """(time_s, labels seen in that frame, one entry per object) for each analysed frame
    -> {label: {"first_s", "last_s", "max_count", "frames"}}, labels in order of first
    appearance."""
    summary: dict[str, dict[str, float | int]] = {}
    for time_s, labels in sorted(observations, key=lambda item: item[0]):
        for label, count in Counter(labels).items():
            entry = summary.setdefault(
                label, {"first_s": time_s, "last_s": time_s, "max_count": 0, "frames": 0}
            )
            entry["last_s"] = time_s
            entry["max_count"] = max(entry["max_count"], count)
            entry["frames"] += 1
    return summary
