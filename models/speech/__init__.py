"""Speech synthesis (text to speech) runtime: Piper voices (ONNX) and transformers VITS.

The heavy runtime (onnxruntime, eSpeak, torch for VITS) is imported on first use, so the
HTTP layer can use the constants, text preparation (`text`) and audio encoding (`audio`)
without loading a model into its processes.
"""

import importlib
from typing import Any

DEFAULT_SOURCE = "packaged:piper-joe"  # a Piper voice shipped in a PyPI package: runs offline
MIN_SPEED = 0.5  # slowest reading speed, as a factor of the voice's own pace
MAX_SPEED = 2.0

_LAZY = {
    "SpeechSynthesizer": "runtime",
    "Speech": "runtime",
    "SpeechError": "text",
    "SentenceItem": "schema",
    "Voice": "schema",
    "Voices": "schema",
}

__all__ = ["DEFAULT_SOURCE", "MAX_SPEED", "MIN_SPEED", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(name)
