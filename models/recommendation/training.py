"""Training a recommender on interactions, and saying honestly how good it is.

1. Hold-out split per user: with timestamps, each user's most recent 20% of items (what a
   deployed model is asked: predict what comes next); without them, a seeded random 20%.
   Users with fewer than 5 items stay whole in training (too little to split).
2. Fit iALS on the training part; rank every item a user has not seen in training; report
   recall@10 and NDCG@10 on the held-out items next to the same numbers for popularity
   (items ranked by training-part interaction counts) — the baseline a model must beat.
3. Refit the same recipe, same seed, on all interactions: the served model uses the newest
   data; the metrics describe the recipe, measured on data its evaluation fit never saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..info import ModelInfo
from . import ials
from .data import DataError, Interactions, ItemTable
from .recipe import Holdout, Recipe
from .state import RecommenderState
from .text_encoder import TextEncoder

SCORE_ELEMENTS = 1 << 25  # (users x items) scores evaluated at once: 128 MiB in fp32


def holdout_mask(interactions: Interactions, holdout: Holdout) -> np.ndarray:
    """Boolean per interaction: True where it is held out for testing."""
    users = interactions.users
    n = len(users)
    if interactions.timestamps is not None:
        order = np.lexsort((np.arange(n), interactions.timestamps, users))  # ties: file order
    else:
        noise = np.random.default_rng(holdout.seed).random(n)
        order = np.lexsort((noise, users))
    counts = np.bincount(users, minlength=interactions.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_users = users[order]
    position = np.arange(n) - starts[sorted_users]
    held = np.where(counts >= holdout.min_user_items, np.maximum(1, np.round(counts * holdout.fraction)), 0)
    mask = np.zeros(n, dtype=bool)
    mask[order] = position >= counts[sorted_users] - held[sorted_users]
    return mask


def ranking_metrics(
    score: Callable[[torch.Tensor], torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    users: torch.Tensor,
    shape: tuple[int, int],
    k: int,
) -> dict[str, float]:
    """Mean recall@k and NDCG@k over `users`, ranking every item not seen in training.

    recall@k = held-out items in the top k / held-out items; NDCG@k with binary relevance,
    ideal DCG over min(k, held-out items). `score(users)` gives (len(users), n_items);
    `shape` is (n_users, n_items)."""
    n_users, n_items = shape
    device = users.device
    chunk = max(1, min(1024, SCORE_ELEMENTS // n_items))
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))
    ideal = discount.cumsum(0)
    recall_sum = ndcg_sum = 0.0
    for lo in range(0, len(users), chunk):
        batch = users[lo : lo + chunk]
        position = torch.full((n_users,), -1, dtype=torch.long, device=device)
        position[batch] = torch.arange(len(batch), device=device)
        scores = score(batch).float()
        rows = position[train[0]]
        keep = rows >= 0
        scores[rows[keep], train[1][keep]] = float("-inf")
        relevant = torch.zeros(len(batch), n_items, dtype=torch.bool, device=device)
        rows = position[test[0]]
        keep = rows >= 0
        relevant[rows[keep], test[1][keep]] = True
        top = scores.topk(min(k, n_items), dim=1).indices
        hits = relevant.gather(1, top).double()
        n_relevant = relevant.sum(1)
        recall_sum += float((hits.sum(1) / n_relevant).sum())
        ndcg_sum += float(
            ((hits * discount[: hits.shape[1]]).sum(1) / ideal[n_relevant.clamp_max(k) - 1]).sum()
        )
    return {f"recall@{k}": recall_sum / len(users), f"ndcg@{k}": ndcg_sum / len(users)}


def evaluate(
    interactions: Interactions, recipe: Recipe, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Fit on the training part of the hold-out split; the model's and popularity's metrics."""
    holdout = recipe.holdout
    mask = holdout_mask(interactions, holdout)
    if not mask.any():
        raise DataError(
            f"no user has {holdout.min_user_items} or more items, so nothing can be held out to measure "
            "the model; more interactions per user are needed"
        )
    users = torch.as_tensor(interactions.users, device=device)
    items = torch.as_tensor(interactions.items, device=device)
    held = torch.as_tensor(mask, device=device)
    train, test = (users[~held], items[~held]), (users[held], items[held])
    x, y = ials.fit(train[0], train[1], interactions.n_users, interactions.n_items, recipe.ials, device)
    popularity = torch.bincount(train[1], minlength=interactions.n_items).float()
    evaluated = torch.unique(test[0])
    if len(evaluated) > holdout.max_users:
        generator = torch.Generator().manual_seed(holdout.seed)
        pick = torch.randperm(len(evaluated), generator=generator)[: holdout.max_users]
        evaluated = evaluated[pick.to(device)].sort().values

    def metrics(score: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        found = ranking_metrics(
            score, train, test, evaluated, (interactions.n_users, interactions.n_items), holdout.k
        )
        return {name: round(value, 4) for name, value in found.items()}

    model = metrics(lambda batch: x[batch] @ y.T)
    baseline = metrics(lambda batch: popularity.expand(len(batch), -1).clone())
    return {
        "split": holdout.describe(interactions.timestamps is not None),
        "users_evaluated": len(evaluated),
        "held_out_interactions": int(mask.sum()),
        "model": model,
        "popularity": baseline,
        "refit": "the served model is refitted on all interactions with the same recipe and seed",
    }


def train(
    interactions: Interactions,
    items: ItemTable | None,
    *,
    info: ModelInfo,
    recipe: Recipe | None = None,
    encoder: TextEncoder | None = None,
    device: torch.device | str = "cpu",
) -> RecommenderState:
    """Evaluate `recipe` on a hold-out split, then fit it on everything. `info` names the
    model (its details get the evaluation and the data's sizes)."""
    recipe = recipe or Recipe()
    evaluation = evaluate(interactions, recipe, device)
    users = torch.as_tensor(interactions.users, device=device)
    items_seen = torch.as_tensor(interactions.items, device=device)
    x, y = ials.fit(users, items_seen, interactions.n_users, interactions.n_items, recipe.ials, device)
    catalogue, titles, texts = _catalogue(interactions, items)
    item_factors = torch.zeros(len(catalogue), recipe.ials.factors)
    item_factors[: interactions.n_items] = y.cpu()
    popularity = torch.zeros(len(catalogue), dtype=torch.long)
    popularity[: interactions.n_items] = torch.bincount(items_seen.cpu(), minlength=interactions.n_items)
    order = np.lexsort((interactions.items, interactions.users))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(interactions.users, minlength=interactions.n_users))])
    content = _content(encoder, texts) if encoder is not None and any(texts) else None
    details = {
        "users": interactions.n_users,
        "items": len(catalogue),
        "items_without_interactions": len(catalogue) - interactions.n_items,
        "items_with_text": sum(1 for text in texts if text),
        "interactions": len(interactions),
        "factors": recipe.ials.factors,
        "evaluation": evaluation,
    }
    return RecommenderState(
        info=info.with_details(**details),
        recipe=recipe.to_dict(),
        user_ids=interactions.user_ids,
        item_ids=catalogue,
        titles=titles,
        user_factors=x.cpu(),
        item_factors=item_factors,
        popularity=popularity,
        seen_indptr=torch.as_tensor(indptr, dtype=torch.long),
        seen_items=torch.as_tensor(interactions.items[order], dtype=torch.long),
        content=content,
        encoder_dir=encoder.directory if content is not None else None,
        encoder_info=encoder.info if content is not None else None,
    )


def _catalogue(
    interactions: Interactions, items: ItemTable | None
) -> tuple[list[str], list[str | None], list[str]]:
    """Item ids (interacted items first, then items known only from the item table: cold
    items content can still recommend), their titles and texts."""
    ids = list(interactions.item_ids)
    if items is None:
        return ids, [None] * len(ids), [""] * len(ids)
    known = set(ids)
    if not known.intersection(items.item_ids):
        raise DataError(
            f"none of the {len(ids)} items of the interactions is in the item table "
            f"(e.g. {ids[0]!r} vs {items.item_ids[0]!r}); the item ids must match"
        )
    ids += [item for item in items.item_ids if item not in known]
    by_id = {
        item: (title, text)
        for item, title, text in zip(items.item_ids, items.titles, items.texts, strict=True)
    }
    titles = [by_id.get(item, (None, ""))[0] for item in ids]
    texts = [by_id.get(item, (None, ""))[1] for item in ids]
    return ids, titles, texts


def _content(encoder: TextEncoder, texts: list[str]) -> torch.Tensor:
    """Unit embeddings of every item text; zero rows for items without text."""
    content = torch.zeros(len(texts), encoder.dimension)
    with_text = [i for i, text in enumerate(texts) if text]
    content[with_text] = encoder.encode([texts[i] for i in with_text]).cpu()
    return content


def data_digest(interactions: Interactions, items: ItemTable | None) -> str:
    """Digest of what training saw, for the model's version."""
    digest = hashlib.sha256()
    for array in (interactions.users, interactions.items, interactions.timestamps):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([interactions.user_ids, interactions.item_ids]).encode())
    if items is not None:
        digest.update(json.dumps([items.item_ids, items.titles, items.texts]).encode())
    return digest.hexdigest()[:12]
