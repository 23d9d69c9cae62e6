"""Translator: the translation runtime, usable from a notebook or a service.

>>> tr = Translator.load("default")          # every installed apertium pair
>>> tr.translate(["The weather is nice."], source="en", target="es").translations
['El tiempo es bueno.']

A source is a comma-separated list of engines, first listed served first:
`apertium:*` (every installed pair), `apertium:eng-spa` or `apertium:en-es` (one
direction), `hf:<id>` or a directory (a transformers seq2seq model), each optionally
prefixed with the pair it serves (`en-de=/models/marian`); or a PAIS snapshot directory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ErrorKind, ItemError
from ..info import ModelInfo
from ..sources import SourceError, parse_source, read_snapshot_manifest, write_snapshot_manifest
from . import DEFAULT_SOURCE, languages
from .apertium import ApertiumEngine
from .detect import Detection, LanguageDetector
from .engine import Engine, EngineError, Pair
from .routes import Hop, Router
from .schema import (
    DetectedLanguage,
    IdentifyLanguage,
    LanguagePair,
    Languages,
    RouteHop,
    Translation,
    TranslationRequest,
)
from .segment import split_text, valid_unicode

TASK = "translation"
AUTO = "auto"
_PAIR_PREFIX = re.compile(r"^([a-z]{2})-([a-z]{2})=(.+)$")
Slot = tuple[int, int, int]  # (request, text, sentence) of one sentence in a batch


class TranslationError(ItemError):
    """A request the translator cannot serve. kind: unknown_language, unsupported_pair,
    undetectable (client errors), timeout or unprocessable (a text that hung or crashed an
    apertium pipeline, twice) or engine (the engine failed)."""


@dataclass(frozen=True)
class EngineSpec:
    uri: str
    pair: Pair | None  # from a `xx-yy=` prefix


def parse_engine_list(source: str) -> list[EngineSpec]:
    specs = []
    for part in (p.strip() for p in source.split(",")):
        if not part:
            continue
        match = _PAIR_PREFIX.match(part)
        if match:
            specs.append(EngineSpec(match.group(3).strip(), (match.group(1), match.group(2))))
        else:
            specs.append(EngineSpec(part, None))
    if not specs:
        raise SourceError("empty translation source; e.g. apertium:*, hf:Helsinki-NLP/opus-mt-en-de")
    return specs


class Translator:
    task = TASK

    def __init__(
        self,
        engines: list[Engine],
        source_uri: str,
        allow_pivot: bool = False,
        detector: LanguageDetector | None = None,
        max_segment_chars: int = 1000,
    ):
        self.engines = engines
        self.source_uri = source_uri
        self.router = Router(engines, allow_pivot)
        self.detector = detector or LanguageDetector()
        self.max_segment_chars = max_segment_chars
        self._languages: Languages | None = None
        versions = "; ".join(card.version for engine in engines for card in engine.cards())
        self.info = ModelInfo(
            task=TASK,
            name="+".join(card.name for engine in engines for card in engine.cards()),
            source=source_uri,
            version=versions,
            licence="; ".join(card.licence for engine in engines for card in engine.cards()),
            origin="translation engines: " + ", ".join(type(e).__name__ for e in engines),
            details={"pairs": [f"{s}->{t}" for s, t in self.router.pairs()], "pivot": allow_pivot},
        )

    @classmethod
    def load(
        cls,
        source: str = "default",
        *,
        device: str | None = None,
        dtype: Any = None,
        allow_pivot: bool = False,
        pipelines_per_pair: int = 2,
        engine_timeout_s: float = 30.0,
        show_unknown: bool = False,
        generation_batch: int = 64,
    ) -> Translator:
        """Load the engines of `source` ("default" is the catalog's: every apertium pair)."""
        uri = DEFAULT_SOURCE if source == "default" else source
        apertium_options = {
            "pipelines_per_pair": pipelines_per_pair,
            "timeout_s": engine_timeout_s,
            "show_unknown": show_unknown,
        }
        neural_options = {"device": device, "dtype": dtype, "max_batch_size": generation_batch}
        engines: list[Engine] = []
        served_uri = uri
        try:
            snapshot = Path(uri).expanduser() if not uri.startswith(("apertium:", "hf:", "s3:")) else None
            manifest = read_snapshot_manifest(snapshot) if snapshot and snapshot.is_dir() else None
            if manifest is not None:
                engines = _engines_from_snapshot(snapshot, manifest, apertium_options, neural_options)  # type: ignore[arg-type]
                served_uri = manifest["info"]["source"]
            else:
                for spec in parse_engine_list(uri):
                    engines.append(_load_engine(spec, uri, apertium_options, neural_options))
        except BaseException:
            for engine in engines:
                engine.close()
            raise
        translator = cls(engines, served_uri, allow_pivot=allow_pivot)
        # The language models of source="auto" take seconds to build: at load, so that a
        # server is ready only once the first auto request costs what any other does.
        translator.detector.warm_up()
        return translator

    # -- what is served ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def cards(self) -> list[ModelInfo]:
        return [card for engine in self.engines for card in engine.cards()] + [self.detector.card()]

    def languages(self) -> Languages:
        """The pairs served, each with its model(s), engine and licence (GET /translate/languages)."""
        if self._languages is None:
            self._languages = self._list_languages()
        return self._languages

    def predict_batch(
        self, items: Sequence[TranslationRequest | IdentifyLanguage]
    ) -> list[Translation | Detection | TranslationError]:
        """The runtime interface: a Translation (or, for IdentifyLanguage, a Detection) or
        TranslationError per item, in order."""
        results: list[Any] = [None] * len(items)
        requests = [(i, item) for i, item in enumerate(items) if isinstance(item, TranslationRequest)]
        for (i, _), result in zip(requests, self.translate_many([item for _, item in requests]), strict=True):
            results[i] = result
        for i, item in enumerate(items):
            if isinstance(item, IdentifyLanguage):
                found = self.detector.detect(item.texts)
                results[i] = DetectedLanguage(found.language, found.confidence)
        return results

    def _list_languages(self) -> Languages:
        licences = {}
        for engine in self.engines:
            for card in engine.cards():
                for pair in card.details.get("pairs", []):
                    licences[pair] = (card.details.get("engine", ""), card.licence)
        pairs = []
        for (source, target), route in self.router.pairs().items():
            hops = [licences.get(f"{hop.source}->{hop.target}", ("", "")) for hop in route]
            pairs.append(
                LanguagePair(
                    source=source,
                    target=target,
                    model=" > ".join(hop.model for hop in route),
                    engine=" > ".join(engine for engine, _ in hops),
                    licence=" > ".join(licence for _, licence in hops),
                    route=[hop.source for hop in route] + [target],
                )
            )
        codes = sorted({p.source for p in pairs} | {p.target for p in pairs})
        return Languages(
            pairs=pairs,
            languages={code: languages.name(code) for code in codes},
            pivot=self.router.allow_pivot,
            auto_detection=self.detector.card().name,
        )

    def supported_pairs(self) -> list[str]:
        return [f"{s}->{t}" for s, t in self.router.pairs()]

    # -- translating ------------------------------------------------------------------

    def translate(self, texts: Sequence[str], source: str = AUTO, target: str = "en") -> Translation:
        """Translate texts; raises TranslationError."""
        (result,) = self.translate_many([TranslationRequest(list(texts), source, target)])
        if isinstance(result, TranslationError):
            raise result
        return result

    def translate_many(self, requests: Sequence[TranslationRequest]) -> list[Translation | TranslationError]:
        """The service's entry point: one result or TranslationError per request, so one
        bad request never fails the others of its batch. Sentences of all requests that
        take the same hop go to their engine in one call."""
        requests = [replace(r, texts=[valid_unicode(t) for t in r.texts]) for r in requests]
        results: list[Translation | TranslationError | None] = [None] * len(requests)
        plans: list[tuple[int, list[Hop], Detection | None, str]] = []
        for i, request in enumerate(requests):
            try:
                source, detection = self._source_of(request)
                route = self._route(source, request.target, detected=request.source == AUTO)
                plans.append((i, route, detection, source))
            except TranslationError as error:
                results[i] = error
        splits = {i: [split_text(t, self.max_segment_chars) for t in requests[i].texts] for i, *_ in plans}
        # current text of every sentence, advanced hop by hop
        sentences = {i: [list(s.segments) for s in splits[i]] for i, *_ in plans}
        depth = max((len(route) for _, route, _, _ in plans), default=0)
        for step in range(depth):
            groups: dict[Pair, list[Slot]] = {}
            for i, route, _, _ in plans:
                if step >= len(route) or isinstance(results[i], TranslationError):
                    continue
                slots = groups.setdefault((route[step].source, route[step].target), [])
                for t, segments in enumerate(sentences[i]):
                    slots.extend((i, t, k) for k in range(len(segments)))
            for pair, slots in groups.items():
                hop = self.router.direct[pair]
                translated, failed = self._translate_hop(hop, pair, slots, sentences)
                for i, error in failed.items():
                    results[i] = error
                for (i, t, k), text in translated.items():
                    sentences[i][t][k] = text
        for i, route, detection, source in plans:
            if results[i] is not None:
                continue
            request = requests[i]
            results[i] = Translation(
                model=" > ".join(hop.model for hop in route) if route else "none (source = target)",
                source=source,
                target=request.target,
                route=[RouteHop(h.source, h.target, h.model) for h in route],
                translations=[split.join(sentences[i][t]) for t, split in enumerate(splits[i])],
                detection=DetectedLanguage(detection.language, detection.confidence) if detection else None,
            )
        return results  # type: ignore[return-value]

    def _translate_hop(
        self, hop: Hop, pair: Pair, slots: list[Slot], sentences: dict[int, list[list[str]]]
    ) -> tuple[dict[Slot, str], dict[int, TranslationError]]:
        """The sentences of every request on one hop in one engine call: (translation per
        slot, error per request). When that call fails (an apertium pipeline crashed or hung
        on some input, twice), each request is tried alone, so that only the request whose
        text breaks the engine gets the error."""

        def translate(own: list[Slot]) -> dict[Slot, str]:
            batch = [sentences[i][t][k] for i, t, k in own]
            return dict(zip(own, hop.engine.translate(batch, *pair) if batch else [], strict=True))

        try:
            return translate(slots), {}
        except EngineError as error:
            requests = sorted({i for i, _, _ in slots})
            if len(requests) == 1:
                return {}, {requests[0]: _engine_error(hop, error)}
        translated: dict[Slot, str] = {}
        failed: dict[int, TranslationError] = {}
        for request in requests:
            try:
                translated.update(translate([slot for slot in slots if slot[0] == request]))
            except EngineError as error:
                failed[request] = _engine_error(hop, error)
        return translated, failed

    def _source_of(self, request: TranslationRequest) -> tuple[str, Detection | None]:
        if request.source != AUTO:
            return request.source, None
        detection = self.detector.detect(request.texts)
        if detection.language is None:
            raise TranslationError(
                "undetectable",
                "cannot identify the source language of texts without letters; give `source` explicitly",
            )
        return detection.language, detection

    def _route(self, source: str, target: str, detected: bool = False) -> list[Hop]:
        """The hops from source to target. An identified source the catalogue does not know
        is an unserved pair (the client sent a valid "auto"), not an unknown code."""
        if detected and not languages.is_known(source):
            raise TranslationError(
                "unsupported_pair",
                f"the texts look like {source!r}, which no engine here translates; "
                f"supported pairs: {_summarise(self.supported_pairs(), source)}",
                {"source": source, "target": target, "supported_pairs": self.supported_pairs()},
            )
        for code, role in ((source, "source"), (target, "target")):
            if not languages.is_known(code):
                raise TranslationError(
                    "unknown_language",
                    f"unknown {role} language code {code!r}; use ISO 639-1 codes "
                    f"(served: {', '.join(sorted(self.languages().languages))})",
                    {"field": role, "code": code},
                )
        route = self.router.route(source, target)
        if route is None:
            supported = self.supported_pairs()
            raise TranslationError(
                "unsupported_pair",
                f"no translation from {source} ({languages.name(source)}) to {target} "
                f"({languages.name(target)}); supported pairs: {_summarise(supported, source)}",
                {"source": source, "target": target, "supported_pairs": supported},
            )
        return route

    # -- lifecycle --------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write a snapshot: neural models' files, and which apertium modes to start (the
        apertium language data stays in its Debian packages)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for engine in self.engines:
            engine.save(directory)
            entries.append({**engine.manifest(), "cards": [c.to_dict() for c in engine.cards()]})
        write_snapshot_manifest(
            directory, {"format": 1, "task": TASK, "engines": entries, "info": self.info.to_dict()}
        )

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


def _engine_error(hop: Hop, error: EngineError) -> TranslationError:
    # apertium says how a text broke it (timeout, unprocessable) once a retry on a fresh
    # pipeline failed the same way; other engines' failures are their own (engine)
    kind = getattr(error, "kind", ErrorKind.ENGINE)
    return TranslationError(kind, f"{hop.model} failed: {error}", {"model": hop.model})


def _summarise(pairs: list[str], source: str, limit: int = 60) -> str:
    if len(pairs) <= limit:
        return ", ".join(pairs)
    own = [p for p in pairs if p.startswith(source + "->")][:limit]
    return f"{len(pairs)} pairs (see GET /translate/languages)" + (
        f"; from {source}: {', '.join(own)}" if own else ""
    )


def _load_engine(spec: EngineSpec, uri: str, apertium_options: dict, neural_options: dict) -> Engine:
    if spec.uri.startswith("apertium:"):
        return ApertiumEngine.load(spec.uri.removeprefix("apertium:"), uri, **apertium_options)
    from .seq2seq import Seq2SeqEngine  # torch only when a neural engine is configured

    return Seq2SeqEngine.load(parse_source(spec.uri), spec.pair, **neural_options)


def _engines_from_snapshot(
    directory: Path, manifest: dict, apertium_options: dict, neural_options: dict
) -> list[Engine]:
    if manifest.get("task") != TASK:
        raise SourceError(f"{directory}: snapshot is for task {manifest.get('task')!r}, not {TASK!r}")
    engines: list[Engine] = []
    for entry in manifest["engines"]:
        if entry["kind"] == "apertium":
            uri = manifest["info"]["source"]
            engines.append(_apertium_from_snapshot(entry, uri, apertium_options))
        elif entry["kind"] == "seq2seq":
            from .seq2seq import Seq2SeqEngine

            card = ModelInfo.from_dict(entry["cards"][0]).with_details(loaded_from=str(directory))
            pairs = [tuple(p.split("->")) for p in card.details.get("pairs", [])]
            pair = pairs[0] if len(pairs) == 1 else None
            source = parse_source(str(directory / entry["directory"]))
            engines.append(Seq2SeqEngine.load(source, pair, info=card, **neural_options))  # type: ignore[arg-type]
        else:
            raise SourceError(f"{directory}: unknown engine kind {entry['kind']!r} in the snapshot")
    return engines


def _apertium_from_snapshot(entry: dict, uri: str, options: dict) -> ApertiumEngine:
    from .apertium import discover_modes

    installed = {mode.name: mode for mode in discover_modes()}
    missing = [name for name in entry["modes"] if name not in installed]
    if missing:
        packages = ", ".join(sorted({card["name"] for card in entry.get("cards", [])}))
        raise SourceError(
            f"the stored translation model needs apertium modes {', '.join(missing)}; "
            f"install the Debian packages {packages} (make system-deps)"
        )
    return ApertiumEngine([installed[name] for name in entry["modes"]], uri, **options)
