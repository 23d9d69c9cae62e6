"""Custom models beside a task's served model: `model=NAME[:version]` on a request.

A task that declares `named_models` (classification: classifiers trained with
`python -m models.finetune`) is served by `NamedModels`, which holds the configured
runtime and loads custom ones on first use from where they are stored:

- the BentoML model store: every model labelled with the task and `trained_by`, by its
  store name (`bentoml models list`); `NAME` is its latest version, `NAME:version` one;
- PAIS_MODEL_DIR/custom/<NAME>/ (how a SageMaker endpoint or a container receives them).

A newly trained version is served without a restart: `NAME` is looked up again in the
store at most every RECHECK_S seconds, and a new version is loaded then (the request that
notices it pays the load), the old one dropped. At most CAPACITY custom models stay
loaded per worker (the least recently used is dropped). `cards` lists the served model
and every stored custom one, with the labels and validation metrics training recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ErrorKind, ItemError
from models.info import ModelInfo

from .runners import close_runtime

log = logging.getLogger("pais.named_models")
RECHECK_S = 2.0
CAPACITY = 4


@dataclass(frozen=True)
class StoredModel:
    """A custom model as its store (or artifacts directory) describes it."""

    name: str
    version: str
    path: str
    card: ModelInfo


class ModelShelf:
    """Where custom models of one task are kept: the BentoML store and a directory."""

    def __init__(self, task: str, custom_dir: Path | None = None):
        self.task = task
        self.custom_dir = custom_dir

    def list(self) -> list[StoredModel]:
        """The latest version of every custom model, by name."""
        found = {model.name: model for model in self._in_directory()}
        latest: dict[str, Any] = {}
        for model in self._store_models():
            name = model.tag.name
            if name not in latest or model.creation_time > latest[name].creation_time:
                latest[name] = model
        found.update({name: self._stored(model) for name, model in latest.items()})
        return sorted(found.values(), key=lambda model: model.name)

    def resolve(self, reference: str) -> StoredModel:
        """`NAME` (latest) or `NAME:version`; LookupError naming what is stored."""
        name, _, version = reference.partition(":")
        if self.custom_dir is not None and (self.custom_dir / name).is_dir():
            found = self._from_directory(self.custom_dir / name)
            if not version or version == found.version:  # a bare name, or the one it resolved to
                return found
        import bentoml
        from bentoml.exceptions import BentoMLException

        try:
            model = bentoml.models.get(f"{name}:{version or 'latest'}")
        except (BentoMLException, ValueError):
            model = None
        if model is None or model.info.labels.get("task") != self.task:
            known = ", ".join(m.name for m in self.list()) or "none"
            raise LookupError(f"no {self.task} model {reference!r}; custom models: {known} (GET /models)")
        return self._stored(model)

    def _store_models(self) -> list[Any]:
        import bentoml

        return [
            model
            for model in bentoml.models.list()
            if model.info.labels.get("task") == self.task and model.info.labels.get("trained_by")
        ]

    def _stored(self, model: Any) -> StoredModel:
        metadata = dict(model.info.metadata)
        card = ModelInfo(
            task=self.task,
            name=model.tag.name,
            source=f"bentoml:{model.tag.name}",
            version=model.tag.version,
            licence=str(metadata.get("licence", "")),
            origin=str(metadata.get("origin", "")),
            details={
                key: metadata[key]
                for key in ("labels", "evaluation", "base_model", "data_fingerprint", "mode")
                if key in metadata
            },
        )
        return StoredModel(model.tag.name, model.tag.version, model.path, card)

    def _in_directory(self) -> list[StoredModel]:
        if self.custom_dir is None or not self.custom_dir.is_dir():
            return []
        return [self._from_directory(path) for path in sorted(self.custom_dir.iterdir()) if path.is_dir()]

    def _from_directory(self, path: Path) -> StoredModel:
        from models.sources import read_snapshot_manifest

        manifest = read_snapshot_manifest(path) or {}
        info = ModelInfo.from_dict(manifest["info"]) if "info" in manifest else None
        card = ModelInfo(
            task=self.task,
            name=path.name,
            source=str(path),
            version=info.version if info else "",
            licence=info.licence if info else "",
            origin=info.origin if info else f"a snapshot in {path}",
            details={
                k: v for k, v in (info.details if info else {}).items() if k in ("labels", "evaluation")
            },
        )
        return StoredModel(path.name, card.version, str(path), card)


class NamedModels:
    """The runtime interface over a task's served runtime and its custom models."""

    def __init__(
        self,
        default: Any,
        shelf: ModelShelf,
        load: Callable[[str], Any],
        recheck_s: float = RECHECK_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.default = default
        self.shelf = shelf
        self._load = load
        self.recheck_s = recheck_s
        self.capacity = capacity
        self._clock = clock
        self._loaded: OrderedDict[str, tuple[StoredModel, Any]] = OrderedDict()  # by name:version
        self._latest: dict[str, tuple[str, float]] = {}  # bare name -> (name:version, checked at)
        self._lock = threading.Lock()

    @property
    def cards(self) -> list[ModelInfo]:
        return [*self.default.cards, *(model.card for model in self.shelf.list())]

    def __getattr__(self, name: str) -> Any:
        # reads the task declares (labels, languages, ...) are the served runtime's
        return getattr(self.default, name)

    def predict_batch(self, items: Sequence[Any]) -> list[Any]:
        groups: dict[str | None, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            groups[getattr(item, "model", None)].append(index)
        results: list[Any] = [None] * len(items)
        for reference, indices in groups.items():
            try:
                runtime = self.runtime(reference)
            except LookupError as error:
                for index in indices:
                    results[index] = ItemError(ErrorKind.UNKNOWN_MODEL, str(error), {"field": "model"})
                continue
            for index, result in zip(
                indices, runtime.predict_batch([items[i] for i in indices]), strict=True
            ):
                results[index] = result
        return results

    def runtime(self, reference: str | None) -> Any:
        """The runtime serving `reference` (None or "": the served model)."""
        if not reference:
            return self.default
        with self._lock:
            key = self._current(reference)
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key][1]
        stored = self.shelf.resolve(key)
        runtime = self._load(stored.path)
        log.info("loaded custom model %s (%s)", key, stored.path)
        with self._lock:
            self._loaded[key] = (stored, runtime)
            self._loaded.move_to_end(key)
            self._forget_replaced(reference, key)
            while len(self._loaded) > self.capacity:
                close_runtime(self._loaded.popitem(last=False)[1][1])
        return runtime

    def _current(self, reference: str) -> str:
        """name:version for a reference; a bare name's latest, looked up again once
        RECHECK_S has passed since the last look."""
        if ":" in reference:
            return reference
        known = self._latest.get(reference)
        now = self._clock()
        if known is None or now - known[1] >= self.recheck_s:
            stored = self.shelf.resolve(reference)
            key = f"{stored.name}:{stored.version}" if stored.version else stored.name
            self._latest[reference] = (key, now)
            return key
        return known[0]

    def _forget_replaced(self, reference: str, key: str) -> None:
        """A bare name now means a newer version: drop the older one it meant."""
        if ":" in reference:
            return
        for old in [k for k in self._loaded if k.split(":")[0] == reference and k != key]:
            close_runtime(self._loaded.pop(old)[1])
