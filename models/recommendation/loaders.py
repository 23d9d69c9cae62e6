"""Recommender sources: a packaged dataset to train on, or a saved snapshot (local or S3).

    packaged:movielens-100k   train on MovieLens-100K as shipped in the PyPI package recbole
    /path/to/snapshot         a directory written by Recommender.save / the training CLI
    s3://bucket/model.tar.gz  the same, archived on S3

A recommender is trained on someone's interactions, so unlike the image tasks there is no
hub to download one from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..device import Placement
from ..info import ModelInfo
from ..sources import (
    SourceError,
    file_digest,
    local_directory,
    package_file,
    package_version,
    parse_source,
    read_snapshot_manifest,
)
from . import state as snapshot
from .data import read_interactions, read_items
from .state import RecommenderState
from .text_encoder import DEFAULT_ENCODER, TextEncoder, encoder_source
from .training import Recipe, train

ACCEPTED = "accepted: packaged:movielens-100k, a snapshot directory, or s3://bucket/snapshot.tar.gz"

MOVIELENS_TERMS = (
    "trained by PAIS on MovieLens-100K (GroupLens Research, University of Minnesota), whose "
    "terms allow research use only: no commercial or revenue-bearing use and no redistribution "
    "of the data without GroupLens's permission, no implied endorsement, acknowledgement in "
    "publications. The model carries the dataset's movie titles. Train on your own data for "
    "production (python -m models.recommendation train)"
)


@dataclass(frozen=True)
class PackagedDataset:
    distribution: str
    interactions: str  # paths inside the distribution
    items: str
    genre_separator: str
    licence: str
    origin: str


PACKAGED: dict[str, PackagedDataset] = {
    "movielens-100k": PackagedDataset(
        distribution="recbole",
        interactions="recbole/dataset_example/ml-100k/ml-100k.inter",
        items="recbole/dataset_example/ml-100k/ml-100k.item",
        genre_separator=" ",
        licence=MOVIELENS_TERMS,
        origin=(
            "iALS trained by PAIS (fixed seed) on MovieLens-100K (100,000 ratings, 943 users, "
            "1,682 movies) as shipped in the PyPI package recbole under dataset_example/ml-100k; "
            "item text for content embeddings: title, year and genres"
        ),
    ),
}


def source_version(source: str) -> str | None:
    """The version `load(source)` would produce, found without training or loading: a
    packaged dataset's from its files and the recipe, a snapshot's from its manifest."""
    parsed = parse_source(source)
    if parsed.scheme == "packaged":
        spec = _packaged(parsed.name)
        return _packaged_version(spec)
    if parsed.scheme == "local":
        manifest = read_snapshot_manifest(local_directory(parsed))
        return manifest["info"]["version"] if manifest else None
    return None


def load(source: str, placement: Placement) -> RecommenderState:
    parsed = parse_source(source)
    if parsed.scheme == "packaged":
        return _train_packaged(source, _packaged(parsed.name), placement)
    if parsed.scheme not in ("local", "s3"):
        raise SourceError(f"{source}: recommenders are trained, not downloaded; {ACCEPTED}")
    directory = local_directory(parsed)
    manifest = read_snapshot_manifest(directory)
    if manifest is None:
        raise SourceError(f"{source}: {directory} is not a PAIS snapshot (no pais-model.json); {ACCEPTED}")
    return snapshot.load(directory, manifest, source)


def _packaged(name: str) -> PackagedDataset:
    try:
        return PACKAGED[name]
    except KeyError:
        raise SourceError(f"no packaged dataset {name!r}; {ACCEPTED}") from None


def _packaged_version(spec: PackagedDataset) -> str:
    parts = [
        file_digest(package_file(spec.distribution, spec.interactions)),
        file_digest(package_file(spec.distribution, spec.items)),
        Recipe().digest(),
        encoder_source(DEFAULT_ENCODER)[1].version,
    ]
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]
    return f"{spec.distribution}=={package_version(spec.distribution)}+ials.{digest}"


def _train_packaged(source: str, spec: PackagedDataset, placement: Placement) -> RecommenderState:
    interactions = read_interactions(package_file(spec.distribution, spec.interactions))
    items = read_items(package_file(spec.distribution, spec.items), genre_separator=spec.genre_separator)
    info = ModelInfo(
        task=snapshot.TASK,
        name=f"ials-{parse_source(source).name}",
        source=source,
        version=_packaged_version(spec),
        licence=spec.licence,
        origin=spec.origin,
    )
    # Training and item embedding run in fp32 whatever the serving dtype.
    fp32 = Placement(placement.device, torch.float32, channels_last=False)
    encoder = TextEncoder.load(DEFAULT_ENCODER, fp32)
    return train(interactions, items, info=info, encoder=encoder, device=placement.device)
