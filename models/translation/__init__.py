"""Text translation: apertium (rule-based, offline default) and transformers seq2seq
models behind one interface, with a catalog of language pairs and language detection.

The heavy parts are imported on first use, so the HTTP layer can read the constants here
without starting engines or importing torch.
"""

from typing import Any

from .schema import IdentifyLanguage, Languages, Translation, TranslationRequest

AUTO = "auto"  # the `source` that asks for language identification
# every installed apertium pair: rule-based engines from Debian packages, offline
DEFAULT_SOURCE = "apertium:*"

_LAZY = {"Translator": "runtime", "TranslationError": "runtime"}

__all__ = [
    "AUTO",
    "DEFAULT_SOURCE",
    "IdentifyLanguage",
    "Languages",
    "Translation",
    "TranslationRequest",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(name)
