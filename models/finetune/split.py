"""A stratified validation split: every class keeps its share in both parts."""

from __future__ import annotations

import torch


def stratified_split(targets: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices), each sorted. Per class, `fraction` of its
    images (rounded, at least one, never all) go to validation, picked by a seeded
    shuffle: the same data and seed always give the same split, so a resumed run
    validates on the images the killed one did."""
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in torch.unique(targets).tolist():
        members = torch.nonzero(targets == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = min(max(1, round(len(members) * fraction)), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
