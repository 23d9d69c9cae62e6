"""What a trained recommender is, on the CPU: ids, factors, popularity, what each user has
seen, content embeddings and the text encoder, and its self-contained snapshot on disk.

A snapshot is a directory with `pais-model.json` (manifest), `ids.json`, `arrays.safetensors`
and `encoder/` (the text encoder's files, so it starts offline without the PyPI package).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..info import ModelInfo
from ..sources import SourceError, write_snapshot_manifest

TASK = "recommendation"
FORMAT = 1
ARRAYS_FILE = "arrays.safetensors"
IDS_FILE = "ids.json"
ENCODER_DIR = "encoder"
RUNTIME_DETAILS = ("placement", "loaded_from")


@dataclass
class RecommenderState:
    info: ModelInfo
    recipe: dict[str, Any]  # iALS hyper-parameters the factors were fitted with (fold-in needs them)
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str | None]
    user_factors: torch.Tensor  # (users, k) fp32
    item_factors: torch.Tensor  # (items, k) fp32; zero rows: items without interactions
    popularity: torch.Tensor  # (items,) int64 interaction counts
    seen_indptr: torch.Tensor  # (users + 1,) int64: user u has seen seen_items[indptr[u]:indptr[u+1]]
    seen_items: torch.Tensor  # int64
    content: torch.Tensor | None  # (items, dim) fp32 unit rows; zero rows: items without text
    encoder_dir: Path | None  # the text encoder's files
    encoder_info: ModelInfo | None

    def seen(self, user: int) -> torch.Tensor:
        """Indices of the items `user` interacted with."""
        return self.seen_items[self.seen_indptr[user] : self.seen_indptr[user + 1]]

    def save(self, directory: str | Path) -> None:
        save(self, Path(directory))


def save(state: RecommenderState, directory: Path) -> None:
    from .text_encoder import copy_encoder_files

    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "user_factors": state.user_factors,
        "item_factors": state.item_factors,
        "popularity": state.popularity,
        "seen_indptr": state.seen_indptr,
        "seen_items": state.seen_items,
    }
    if state.content is not None:
        arrays["content"] = state.content
    save_file({k: v.detach().cpu().contiguous() for k, v in arrays.items()}, directory / ARRAYS_FILE)
    ids = {"users": state.user_ids, "items": state.item_ids, "titles": state.titles}
    (directory / IDS_FILE).write_text(json.dumps(ids, ensure_ascii=False))
    if state.encoder_dir is not None:
        copy_encoder_files(state.encoder_dir, directory / ENCODER_DIR)
    write_snapshot_manifest(
        directory,
        {
            "format": FORMAT,
            "task": TASK,
            "info": _portable(state.info),
            "recipe": state.recipe,
            "encoder": _portable(state.encoder_info) if state.encoder_info else None,
        },
    )


def _portable(info: ModelInfo) -> dict[str, Any]:
    """The card without what describes one process (where it runs, where it was read from)."""
    card = info.to_dict()
    card["details"] = {k: v for k, v in card["details"].items() if k not in RUNTIME_DETAILS}
    return card


def load(directory: Path, manifest: dict[str, Any], source: str) -> RecommenderState:
    if manifest.get("task") != TASK:
        raise SourceError(f"{source}: snapshot is for task {manifest.get('task')!r}, not {TASK!r}")
    if manifest.get("format") != FORMAT:
        raise SourceError(f"{source}: snapshot format {manifest.get('format')!r} is unknown to this version")
    arrays = load_file(directory / ARRAYS_FILE)
    ids = json.loads((directory / IDS_FILE).read_text())
    encoder = manifest.get("encoder")
    return RecommenderState(
        info=ModelInfo.from_dict(manifest["info"]).with_details(loaded_from=source),
        recipe=manifest["recipe"],
        user_ids=ids["users"],
        item_ids=ids["items"],
        titles=ids["titles"],
        user_factors=arrays["user_factors"],
        item_factors=arrays["item_factors"],
        popularity=arrays["popularity"],
        seen_indptr=arrays["seen_indptr"],
        seen_items=arrays["seen_items"],
        content=arrays.get("content"),
        encoder_dir=directory / ENCODER_DIR if encoder else None,
        encoder_info=ModelInfo.from_dict(encoder) if encoder else None,
    )
