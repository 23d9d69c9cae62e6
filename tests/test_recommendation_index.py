"""ItemIndex: matrix product + top-k, whole or block by block, against a plain reference."""

from __future__ import annotations

import pytest
import torch

from models.device import choose_placement
from models.recommendation.index import ItemIndex


def reference(queries, embeddings, k, exclude, scaled):
    """Brute force: scores, -inf for excluded and zero items, full sort."""
    norms = embeddings.norm(dim=1)
    unit = embeddings / norms.clamp_min(1e-8)[:, None]
    scores = queries @ unit.T
    if scaled:
        scores = scores * norms
    scores[:, norms <= 1e-8] = float("-inf")
    for row, items in enumerate(exclude):
        scores[row, list(items)] = float("-inf")
    order = scores.argsort(dim=1, descending=True)[:, :k]
    return [[i for i in row.tolist() if scores[r, i] != float("-inf")] for r, row in enumerate(order)]


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("block_elements", [1 << 22, 64, 7])
def test_blocks_give_the_same_answer_as_one_product(scaled, block_elements):
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(500, 16, generator=generator)
    embeddings[[3, 77, 400]] = 0  # items with nothing to rank by
    queries = torch.randn(6, 16, generator=generator)
    exclude = [[0, 1, 2], [], list(range(0, 500, 2)), [499], [], list(range(495))]
    ks = [5, 1, 20, 10, 50, 10]
    index = ItemIndex(embeddings, choose_placement("cpu", "fp32"))
    index.block_elements = block_elements
    hits = index.top_k(queries, ks, exclude, scaled=scaled)
    expected = reference(queries, embeddings, max(ks), exclude, scaled)
    for row, (hit, k) in enumerate(zip(hits, ks, strict=True)):
        assert hit.indices == expected[row][:k], row
        assert not set(hit.indices) & set(exclude[row]) and not {3, 77, 400} & set(hit.indices)
        assert hit.scores == sorted(hit.scores, reverse=True)
    assert sorted(hits[5].indices) == [495, 496, 497, 498, 499]  # k=10, but only 5 items are left
