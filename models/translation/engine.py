"""What every translation engine offers the runtime: the pairs it serves and a batch call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..info import ModelInfo

Pair = tuple[str, str]  # (source, target) ISO 639-1 codes


class EngineError(RuntimeError):
    """An engine failed on a batch (a crashed or stuck process, an out-of-memory GPU)."""


class Engine(ABC):
    @property
    @abstractmethod
    def pairs(self) -> dict[Pair, str]:
        """Every pair served, with the name of the model that serves it."""

    @abstractmethod
    def translate(self, sentences: Sequence[str], source: str, target: str) -> list[str]:
        """One translation per sentence, in order; raises EngineError."""

    @abstractmethod
    def cards(self) -> list[ModelInfo]:
        """What GET /models shows: one card per model (or language-data package)."""

    @abstractmethod
    def manifest(self) -> dict[str, Any]:
        """How to rebuild this engine from a snapshot directory (see `save`)."""

    def save(self, directory: Any) -> None:  # noqa: B027 - engines without files save nothing
        """Write the files `manifest` refers to under `directory`."""

    def close(self) -> None:  # noqa: B027 - engines without processes have nothing to close
        """Release processes and memory."""
