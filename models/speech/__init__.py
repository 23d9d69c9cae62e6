"""Speech synthesis (text to speech) runtime: Piper voices (ONNX) and transformers VITS.

The heavy runtime (onnxruntime, eSpeak, torch for VITS) is imported on first use, so the
HTTP layer can use the constants, text preparation (`text`) and audio encoding (`audio`)
without loading a model into its processes.
"""

import importlib
from typing import Any

MIN_SPEED = 0.5  # slowest reading speed, as a factor of the voice's own pace
MAX_SPEED = 2.0

_LAZY = {"SpeechSynthesizer": "runtime", "Speech": "runtime", "SpeechError": "text"}

__all__ = ["MAX_SPEED", "MIN_SPEED", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(name)
