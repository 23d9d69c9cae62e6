"""Text -> IPA phonemes with Debian's libespeak-ng, called through ctypes, as Piper does.

Piper voices are trained on eSpeak NG's IPA output, clause by clause, with the clause's
punctuation appended (". ? !" end a sentence; ", : ;" are followed by a space). Piper asks
a patched eSpeak for each clause's terminator; Debian's libespeak-ng 1.51 lacks that call
(`espeak_TextToPhonemesWithTerminator`), so the terminator is read from the text each
`espeak_TextToPhonemes` call consumed. eSpeak reads one character ahead, so the consumed
span ends with the first character of the next clause, which is skipped.

eSpeak keeps global state (the selected voice, its reading position) and aborts its
process on some inputs (see `espeak_input`): the service never calls it in its own
process. `EspeakWorker` is what a sandbox child runs (models/speech/phonemizer.py drives
it); within that child every call still holds a process-wide lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
import unicodedata

from .espeak_input import sanitize

AUDIO_OUTPUT_SYNCHRONOUS = 0x02
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit()
ESPEAK_CHARS_UTF8 = 1
ESPEAK_PHONEMES_IPA = 0x02

# Clause terminator -> the phonemes Piper appends after the clause.
TERMINATORS = {".": ".", "?": "?", "!": "!", ",": ", ", ":": ": ", ";": "; "}
SENTENCE_TERMINATORS = ".?!"
_LANGUAGE_SWITCH = re.compile(r"\([a-z][a-z0-9-]*\)")  # "(fr)" when eSpeak changes language
_CLOSING = "\"')]} \t\n"


class EspeakError(RuntimeError):
    pass


class Espeak:
    """The process's libespeak-ng, initialised once."""

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.cdll.LoadLibrary(name)
        except OSError as exc:
            raise EspeakError(
                "libespeak-ng is not installed; install the Debian package espeak-ng (`make system-deps`)"
            ) from exc
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        if self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, ESPEAK_INITIALIZE_DONT_EXIT) < 0:
            raise EspeakError("libespeak-ng failed to initialise (is espeak-ng-data installed?)")
        self.lock = threading.Lock()
        self._voice: str | None = None

    @classmethod
    def get(cls) -> Espeak:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _select(self, voice: str) -> None:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"eSpeak NG has no voice {voice!r}")
            self._voice = voice

    def clauses(self, text: str, voice: str) -> list[tuple[str, str]]:
        """(IPA phonemes, terminator punctuation or "") for each clause of `text`."""
        data = text.encode()
        buffer = ctypes.create_string_buffer(data)
        start = ctypes.addressof(buffer)
        position = ctypes.c_void_p(start)
        result = []
        with self.lock:
            self._select(voice)
            while position.value:
                before = position.value - start
                phonemes = self.lib.espeak_TextToPhonemes(
                    ctypes.byref(position), ESPEAK_CHARS_UTF8, ESPEAK_PHONEMES_IPA
                )
                after = position.value - start if position.value else len(data)
                consumed = data[before:after].decode(errors="ignore")
                if position.value:  # the look-ahead character belongs to the next clause
                    consumed = consumed[:-1]
                result.append(((phonemes or b"").decode(errors="replace"), _terminator(consumed)))
        return result


def _terminator(consumed: str) -> str:
    stripped = consumed.rstrip(_CLOSING)
    return stripped[-1] if stripped and stripped[-1] in TERMINATORS else ""


def phonemize(text: str, voice: str) -> list[str]:
    """The phonemes of one sentence as Piper builds them: the IPA of each clause,
    decomposed (NFD: "ç" -> "c" + combining cedilla), language-switch marks removed, and
    the clause's punctuation appended. One list entry per Unicode code point."""
    phonemes: list[str] = []
    clauses = Espeak.get().clauses(text, voice)
    for index, (ipa, terminator) in enumerate(clauses):
        ipa = _LANGUAGE_SWITCH.sub("", ipa)
        ipa = " ".join(unicodedata.normalize("NFD", ipa).split())
        phonemes.extend(ipa)
        appended = TERMINATORS.get(terminator, "")
        # Piper starts a new utterance after a sentence terminator; inside one of our
        # sentences the clauses are joined, so they keep a word break between them.
        if terminator in SENTENCE_TERMINATORS and index < len(clauses) - 1:
            appended += " "
        elif not appended and index < len(clauses) - 1:
            appended = " "
        phonemes.extend(appended)
    return phonemes


# Phonemised after every text: a text that leaves eSpeak's reading state behind (one
# ending in "..") makes this come out differently ("dot" first), and that child is retired.
CANARY = "a."


class EspeakWorker:
    """The object a sandbox child serves: eSpeak NG in that child's process.

    After each text a canary text is phonemised and compared with its answer on a fresh
    library: any state the text left behind shows there, consumes the leftover, and marks
    the child for retirement (`retire`), so no later text, of this request or another, is
    read with it."""

    def __init__(self, guard: bool = True, voice: str | None = None):
        self.guard = guard  # False only to reproduce eSpeak's own crashes (tests, fuzzing)
        self.retire = False
        self._espeak = Espeak.get()
        self._canary: dict[str, list[tuple[str, str]]] = {}
        if voice:  # load the voice's data now, while this child is a spare
            self._canary[voice] = self._espeak.clauses(CANARY, voice)

    def phonemize(self, text: str, voice: str) -> list[str]:
        if voice not in self._canary:
            self._canary[voice] = self._espeak.clauses(CANARY, voice)
        phonemes = phonemize(sanitize(text) if self.guard else text, voice)
        if self._espeak.clauses(CANARY, voice) != self._canary[voice]:
            self.retire = True
        return phonemes
