"""The building blocks of settings: one field helper, and the sections tasks extend.

Every setting is an environment variable: global ones are `PAIS_<FIELD>`, a task's are
`PAIS_<TASK>_<FIELD>` (PAIS_CLASSIFICATION_MAX_BATCH_SIZE). Each field states its default
and, in its help, the trade-off of changing it; service/settings.py reads, checks and
documents them all. Kept apart from settings.py so that task declarations can subclass
the sections without importing the task registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


def setting(default: Any, help: str, minimum: int | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A settings field: its default, what it does and what changing it costs."""
    return field(default=default, metadata={"help": help, "minimum": minimum, "choices": choices})


@dataclass(frozen=True)
class TaskSettings:
    """A task's section; tasks subclass it with their own limits."""


@dataclass(frozen=True)
class ModelSettings(TaskSettings):
    """The section of a task with a model: where it comes from and how it is served.
    Subclasses override the defaults that suit their model."""

    model: str = setting("", "Source URI of the model: packaged:, torchvision:, hf:, s3://, a directory.")
    serve_in: str = setting(
        "model-service",
        "Where the model runs: `model-service` (own worker processes, batches across requests; "
        "a GPU model's home) or `entry` (inside each HTTP worker: no hop between processes, "
        "the fastest path for light models, but each entry worker holds a copy).",
        choices=("model-service", "entry"),
    )
    workers: int = setting(
        1, "Worker processes of the model service (each holds a model copy; more use more cores).", 1
    )
    max_batch_size: int = setting(
        32, "Most items in one batch (larger batches use the device better and more memory).", 1
    )
    request_chunk: int = setting(
        0,
        "Items of one request sent to the model service at a time: smaller "
        "chunks let other requests' items in sooner (a small request waits less behind a large "
        "one), larger ones fill a GPU's batches from one request alone. 0: one item at a time "
        "on a CPU, max_batch_size/4 two at a time on a GPU.",
    )
