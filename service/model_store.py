"""The BentoML model store as the place models are served from.

`make models` (python -m service.model_store) loads each task's configured source and
saves a self-contained snapshot as `pais-<task>` in the store (under BENTOML_HOME), so a
bento and its image carry their weights and start offline. At start-up a service prefers
that stored copy when it was made from the source it is configured with.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound

from models.catalog import CATALOG, load_runtime
from models.sources import SNAPSHOT_FILE

from .settings import Settings, get_settings

log = logging.getLogger("pais.model_store")


def store_name(task: str) -> str:
    return f"pais-{task}"


def configured_source(task: str, settings: Settings) -> str:
    return getattr(settings, f"{task}_model")


def resolve_source(task: str, settings: Settings | None = None) -> str:
    """Where a service loads `task` from: the artifacts directory (SageMaker's /opt/ml/model)
    when it holds the task, else the store copy of the configured source, else the source."""
    settings = settings or get_settings()
    if settings.model_dir:
        artifact = Path(settings.model_dir) / task
        if (artifact / SNAPSHOT_FILE).is_file():
            log.info("%s: loading model artifacts from %s", task, artifact)
            return str(artifact)
        log.warning("%s: no model artifacts in %s; using the configured source", task, artifact)
    source = configured_source(task, settings)
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
    """Store `task`'s configured model unless the latest stored copy has the same version."""
    source = configured_source(task, settings)
    runtime = load_runtime(task, source, device="cpu", dtype="fp32")
    info = runtime.info
    try:
        latest = bentoml.models.get(f"{store_name(task)}:latest")
        meta = latest.info.metadata
        if meta.get("source") == source and meta.get("version") == info.version:
            return f"{task}: {latest.tag} is up to date ({source}, {info.version})"
    except NotFound:
        pass
    metadata = {key: value for key, value in info.to_dict().items() if key != "details"}
    with bentoml.models.create(store_name(task), labels={"task": task}, metadata=metadata) as model:
        runtime.save(model.path)
    return f"{task}: stored {model.tag} from {source} ({info.version})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import the selected models into the BentoML model store.")
    parser.add_argument(
        "tasks",
        nargs="*",
        default=list(CATALOG),
        help=f"tasks to import (default: all: {', '.join(CATALOG)})",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    for task in args.tasks:
        if task not in CATALOG:
            parser.error(f"unknown task {task!r}; tasks: {', '.join(CATALOG)}")
        print(import_model(task, settings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
