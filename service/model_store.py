"""The BentoML model store as the place models are served from.

`make models` (python -m service.model_store) loads each task's configured source and
saves a self-contained snapshot as `pais-<task>` in the store (under BENTOML_HOME), so a
bento and its image carry their weights and start offline. At start-up a service prefers
that stored copy when it was made from the source it is configured with.

A task may also be pointed at any model in the store with `bentoml:<name>[:<version>]`
(e.g. one trained with `python -m models.recommendation train --name my-recs`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from models.sources import SNAPSHOT_FILE

from .settings import Settings, get_settings
from .task import Task
from .tasks import TASKS

log = logging.getLogger("pais.model_store")

STORE_SCHEME = "bentoml:"


def store_name(task: str) -> str:
    return f"pais-{task}"


def configured_source(task: str, settings: Settings) -> str:
    return settings.section(task).model


def runtime_class(task: Task) -> Any:
    """The runtime class a declaration names ("module:Class"); imports it (and torch)."""
    if task.runtime is None:
        raise ValueError(f"task {task.name!r} has no runtime of its own")
    module, _, name = task.runtime.partition(":")
    return getattr(importlib.import_module(module), name)


def load_runtime(task: Task, source: str, **options: Any) -> Any:
    """Load `task`'s runtime from `source` (e.g. device="cpu")."""
    return runtime_class(task).load(source, **options)


def load_task_runtime(task: Task, settings: Settings, device: str | None = None) -> Any:
    """The runtime of `task` from its stored copy (or configured source), on `device`
    (default PAIS_DEVICE), with the options its section sets; with the task's custom
    models beside it when it declares them. Imports torch."""
    options = {
        "device": device or settings.device,
        "dtype": settings.dtype,
        **task.runtime_options(settings.section(task.name), settings),
    }
    runtime = load_runtime(task, resolve_source(task.name, settings), **options)
    if not task.named_models:
        return runtime
    from .named_models import ModelShelf, NamedModels

    custom_dir = Path(settings.model_dir) / "custom" if settings.model_dir else None
    return NamedModels(
        runtime, ModelShelf(task.name, custom_dir), lambda path: load_runtime(task, path, **options)
    )


def stored_reference(source: str) -> str | None:
    """The store tag named by a `bentoml:<name>[:<version>]` source, else None."""
    return source[len(STORE_SCHEME) :] if source.startswith(STORE_SCHEME) else None


def resolve_source(task: str, settings: Settings | None = None) -> str:
    """Where a service loads `task` from: the artifacts directory (SageMaker's /opt/ml/model)
    when it holds the task, else the store copy of the configured source, else the source.
    The artifacts may be any local source the task reads (a PAIS snapshot, as `deploy`
    packs them, or e.g. a transformers directory); its loader says what it cannot read."""
    settings = settings or get_settings()
    if settings.model_dir:
        artifact = Path(settings.model_dir) / task
        if artifact.is_dir() and any(artifact.iterdir()):
            kind = "snapshot" if (artifact / SNAPSHOT_FILE).is_file() else "directory"
            log.info("%s: loading model artifacts (%s) from %s", task, kind, artifact)
            return str(artifact)
        log.warning("%s: no model artifacts in %s; using the configured source", task, artifact)
    source = configured_source(task, settings)
    tag = stored_reference(source)
    if tag is not None:
        try:
            return bentoml.models.get(tag).path
        except NotFound:
            raise LookupError(
                f"{task}: {source} names no model in the BentoML store; `bentoml models list` shows the "
                "stored ones"
            ) from None
    try:
        stored = bentoml.models.get(f"{store_name(task)}:latest")
    except NotFound:
        log.warning("%s: no stored model; loading %s directly (run `make models`)", task, source)
        return source
    if stored.info.metadata.get("source") != source:
        log.warning(
            "%s: stored model was made from %s, not the configured %s; loading the configured source",
            task,
            stored.info.metadata.get("source"),
            source,
        )
        return source
    return stored.path


def import_model(task: str, settings: Settings) -> str:
    """Store `task`'s configured model unless the latest stored copy has the same version.
    A runtime class may offer `source_version(source)`, a cheap probe of that version:
    then an up-to-date model is not even loaded (for recommendation, loading means training)."""
    source = configured_source(task, settings)
    if stored_reference(source) is not None:
        return f"{task}: {source} is served from the store as it is"
    declaration = TASKS.get(task)
    probe = getattr(runtime_class(declaration), "source_version", None)
    if probe is not None and (current := _up_to_date(task, source, probe(source))):
        return current
    runtime = load_runtime(declaration, source, device="cpu", dtype="fp32")
    if current := _up_to_date(task, source, runtime.cards[0].version):
        return current
    tag = store_runtime(store_name(task), task, runtime)
    return f"{task}: stored {tag} from {source} ({runtime.cards[0].version})"


def _up_to_date(task: str, source: str, version: str | None) -> str | None:
    try:
        latest = bentoml.models.get(f"{store_name(task)}:latest")
    except NotFound:
        return None
    meta = latest.info.metadata
    if version is not None and meta.get("source") == source and meta.get("version") == version:
        return f"{task}: {latest.tag} is up to date ({source}, {version})"
    return None


def store_runtime(name: str, task: str, runtime: Any) -> str:
    """Save a runtime's snapshot as a new version of `name` in the store; returns the tag.
    The metadata is the model card without runtime details, plus its held-out evaluation
    when the runtime measured one."""
    info = getattr(runtime, "info", None) or runtime.cards[0]
    metadata = {key: value for key, value in info.to_dict().items() if key != "details"}
    if "evaluation" in info.details:
        metadata["evaluation"] = info.details["evaluation"]
    with bentoml.models.create(name, labels={"task": task}, metadata=metadata) as model:
        runtime.save(model.path)
    return str(model.tag)


def model_tasks() -> list[str]:
    """The tasks with a model of their own (what the store holds, and the bento ships)."""
    return [task.name for task in TASKS.all() if task.runtime is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import the selected models into the BentoML model store.")
    tasks = model_tasks()
    parser.add_argument(
        "tasks", nargs="*", default=tasks, help=f"tasks to import (default: all: {', '.join(tasks)})"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    for task in args.tasks:
        if task not in tasks:
            parser.error(f"unknown task {task!r}; tasks: {', '.join(tasks)}")
        print(import_model(task, settings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
