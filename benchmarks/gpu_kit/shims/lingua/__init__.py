"""A stand-in for the `lingua` package, put on the benchmark server's PYTHONPATH by
benchmarks/gpu.py only when lingua-language-detector is not installed (a lent GPU machine:
its 96 MB wheel does not fit what can be carried there). It identifies no language: the
translation runtime loads, and requests that name their source language, which is all the
benchmark sends, are served as usual; source="auto" would answer 422."""


class _Detector:
    def compute_language_confidence_values(self, text: str) -> list:
        return []


class LanguageDetectorBuilder:
    @classmethod
    def from_all_languages(cls) -> "LanguageDetectorBuilder":
        return cls()

    def build(self) -> _Detector:
        return _Detector()
