"""Store a trained classifier's snapshot as a new version in the BentoML model store.

The store belongs to the serving side (service/model_store.py resolves
`bentoml:<name>[:<version>]` to the stored directory); this is the one write into it the
training command makes, with the metadata `bentoml models get` shows: the model card
without runtime details, plus labels, base model, data fingerprint and validation metrics.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..info import ModelInfo


def store_metadata(info: ModelInfo) -> dict[str, Any]:
    details = info.details
    evaluation = details["evaluation"]
    summary = {
        key: {k: v for k, v in evaluation[key].items() if k != "confusion"}
        for key in ("validation", "baseline")
    }
    return {
        **{key: value for key, value in info.to_dict().items() if key != "details"},
        "labels": details["labels"],
        "base_model": details["base_model"],
        "data_fingerprint": details["data_fingerprint"],
        "evaluation": summary,
        "mode": details["training"]["mode"],
    }


def store_snapshot(name: str, snapshot: Path, info: ModelInfo) -> str:
    """Copy the snapshot directory into a new store version of `name`; returns the tag."""
    import bentoml  # only the CLI's final step needs it

    with bentoml.models.create(
        name, labels={"task": info.task, "trained_by": "models.finetune"}, metadata=store_metadata(info)
    ) as model:
        shutil.copytree(snapshot, model.path, dirs_exist_ok=True)
    return str(model.tag)


def stored_path(tag: str) -> str:
    """The directory of a stored model (`name` or `name:version`): a source that
    ImageClassifier.load reads."""
    import bentoml

    return bentoml.models.get(tag).path
