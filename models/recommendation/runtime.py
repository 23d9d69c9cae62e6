"""Recommender: the recommendation runtime, usable from a notebook or a service.

>>> rec = Recommender.load("default")
>>> rec.recommend(user_id="196", k=3).items[0].title
>>> rec.recommend(liked_items=["1", "95"], k=5).strategy      # fold-in for a new user
'personal'
>>> rec.recommend(query="animated film for children").strategy
'content'
>>> rec.similar_items("50", k=5)                             # items like Star Wars

Every answer is a batch of matrix products + top-k on the device: known users and
folded-in users share one product with the collaborative item matrix, text queries and
content fall-backs one with the content matrix. Unknown users get the most popular items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..device import Placement, choose_placement
from ..errors import ItemError
from ..info import ModelInfo
from . import DEFAULT_SOURCE, ials, loaders
from . import state as snapshot
from .index import Hits, ItemIndex
from .schema import Ask, Recommendation, ScoredItem, SimilarAsk, SimilarItems
from .state import RecommenderState
from .text_encoder import TextEncoder

PERSONAL, POPULAR, CONTENT, COLLABORATIVE = "personal", "popular", "content", "collaborative"


@dataclass
class _Row:
    """An ask waiting for its matrix product: the slot it answers, what its query vector is
    made from (a user's factors, the indices of liked items, or text), what to leave out."""

    slot: int
    source: torch.Tensor | list[int] | str
    exclude: Sequence[int] | torch.Tensor


class RecommendationError(ItemError):
    """A request this model cannot answer: `kind` is unknown_item or invalid; the
    unknown ids are in `detail["item_ids"]`."""

    def __init__(self, kind: str, message: str, item_ids: Sequence[str] = ()):
        super().__init__(kind, message, {"item_ids": list(item_ids)} if item_ids else None)

    @property
    def item_ids(self) -> list[str]:
        return list(self.detail.get("item_ids", ()))

    def __reduce__(self) -> tuple:
        return (type(self), (self.kind, self.message, self.item_ids))


class Recommender:
    task = snapshot.TASK

    def __init__(self, state: RecommenderState, placement: Placement):
        self.state = state
        self.placement = placement
        device = placement.device
        self.user_index = {user: i for i, user in enumerate(state.user_ids)}
        self.item_index = {item: i for i, item in enumerate(state.item_ids)}
        self.collaborative = ItemIndex(state.item_factors, placement)
        self.content = ItemIndex(state.content, placement) if state.content is not None else None
        self.user_factors = state.user_factors.to(device)
        self.alpha = float(state.recipe["ials"]["alpha"])
        factors = state.item_factors.to(device)
        self.gram = ials.regularised_gram(factors, float(state.recipe["ials"]["regularization"]))
        counts = state.popularity
        ranked = torch.argsort(counts, descending=True, stable=True)
        self.popular = ranked[counts[ranked] > 0].tolist()
        self.popular_scores = (counts.double() / max(1, len(state.user_ids))).tolist()
        encoder = None
        if state.encoder_dir is not None and state.encoder_info is not None:
            encoder = TextEncoder(Path(state.encoder_dir), state.encoder_info, placement)
        self.encoder = encoder
        self.info: ModelInfo = state.info.with_details(placement=placement.describe())

    @classmethod
    def load(
        cls, source: str = "default", *, device: str | None = None, dtype: str | torch.dtype | None = None
    ) -> Recommender:
        """Load from a source URI ("default" is the catalog's: train on MovieLens-100K)."""
        uri = DEFAULT_SOURCE if source == "default" else source
        placement = choose_placement(device, dtype, channels_last=False)
        return cls(loaders.load(uri, placement), placement)

    @staticmethod
    def source_version(source: str) -> str | None:
        """What `load(source).info.version` will be, found cheaply (None if unknown)."""
        return loaders.source_version(DEFAULT_SOURCE if source == "default" else source)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def cards(self) -> list[ModelInfo]:
        """Every model this runtime serves: the recommender and its text encoder."""
        return [self.info] + ([self.encoder.info] if self.encoder else [])

    def predict_batch(
        self, items: Sequence[Ask | SimilarAsk]
    ) -> list[Recommendation | SimilarItems | RecommendationError]:
        """The runtime interface: a Recommendation per Ask, SimilarItems per SimilarAsk, or
        a RecommendationError, in order (each kind scored as one batch)."""
        results: list[Any] = [None] * len(items)
        asks = [(i, item) for i, item in enumerate(items) if isinstance(item, Ask)]
        for (i, _), result in zip(asks, self.recommend_many([a for _, a in asks]), strict=True):
            results[i] = result
        similar = [(i, item) for i, item in enumerate(items) if isinstance(item, SimilarAsk)]
        answers = self.similar_many([a.item_id for _, a in similar], [a.k for _, a in similar])
        for (i, ask), result in zip(similar, answers, strict=True):
            if isinstance(result, Recommendation):
                result = SimilarItems(result.model, ask.item_id, result.strategy, result.items)  # type: ignore[arg-type]
            results[i] = result
        return results

    def save(self, directory: str | Path) -> None:
        """Write a self-contained snapshot; `Recommender.load(directory)` reads it back."""
        snapshot.save(self.state, Path(directory))

    # --- single requests -----------------------------------------------------------------

    def recommend(
        self,
        user_id: str | None = None,
        liked_items: Sequence[str] | None = None,
        query: str | None = None,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> Recommendation:
        liked = tuple(liked_items) if liked_items is not None else None
        return _raise_error(self.recommend_many([Ask(user_id, liked, query, k, exclude_seen)])[0])

    def similar_items(self, item_id: str, k: int = 10) -> Recommendation:
        return _raise_error(self.similar_many([item_id], k)[0])

    # --- batches (the service's entry points) ----------------------------------------------

    def recommend_many(self, asks: Sequence[Ask]) -> list[Recommendation | RecommendationError]:
        """One answer or RecommendationError per ask, so one bad ask never fails a batch."""
        results: list[Recommendation | RecommendationError | None] = [None] * len(asks)
        personal: list[_Row] = []  # scored against the collaborative item matrix
        content: list[_Row] = []  # scored against the content item matrix
        for slot, ask in enumerate(asks):
            if ask.query is not None:
                if self.content is None or self.encoder is None:
                    results[slot] = _no_content(self.name)
                else:
                    content.append(_Row(slot, ask.query, []))
            elif ask.liked_items is not None:
                liked, error = self._items(ask.liked_items)
                exclude = liked if ask.exclude_seen else []
                if error:
                    results[slot] = error
                elif rankable := [i for i in liked if self.collaborative.rankable[i]]:
                    personal.append(_Row(slot, rankable, exclude))
                elif self.content is not None and any(self.content.rankable[i] for i in liked):
                    content.append(_Row(slot, liked, exclude))  # cold items only: their text
                else:
                    results[slot] = RecommendationError(
                        "invalid", "none of liked_items has interactions or text", list(ask.liked_items)
                    )
            else:
                user = self.user_index.get(ask.user_id)  # type: ignore[arg-type]
                if user is None:
                    results[slot] = self._popular(ask.k)
                else:
                    exclude = self.state.seen(user) if ask.exclude_seen else []
                    personal.append(_Row(slot, self.user_factors[user], exclude))
        if personal:
            self._rank_personal(personal, asks, results)
        if content:
            self._rank_content(content, asks, results)
        return results  # type: ignore[return-value]

    def similar_many(
        self, item_ids: Sequence[str], k: int | Sequence[int] = 10
    ) -> list[Recommendation | RecommendationError]:
        """Items most like each given item: cosine of collaborative embeddings when the item
        has interactions, else of content embeddings."""
        ks = [k] * len(item_ids) if isinstance(k, int) else list(k)
        results: list[Recommendation | RecommendationError | None] = [None] * len(item_ids)
        by_index: dict[str, list[int]] = {COLLABORATIVE: [], CONTENT: []}
        for slot, item_id in enumerate(item_ids):
            item = self.item_index.get(item_id)
            if item is None:
                results[slot] = _unknown([item_id])
            elif self.collaborative.rankable[item]:
                by_index[COLLABORATIVE].append(slot)
            elif self.content is not None and self.content.rankable[item]:
                by_index[CONTENT].append(slot)
            else:
                results[slot] = RecommendationError(
                    "invalid", f"item {item_id!r} has neither interactions nor text", [item_id]
                )
        for strategy, slots in by_index.items():
            if not slots:
                continue
            index = self.collaborative if strategy == COLLABORATIVE else self.content
            items = [self.item_index[item_ids[slot]] for slot in slots]
            hits = index.top_k(index.vectors(items), [ks[s] for s in slots], [[i] for i in items])  # type: ignore[union-attr]
            for slot, hit in zip(slots, hits, strict=True):
                results[slot] = self._answer(strategy, hit)
        return results  # type: ignore[return-value]

    # --- internals --------------------------------------------------------------------------

    def _rank_personal(self, rows: list[_Row], asks: Sequence[Ask], results: list) -> None:
        """Known users' factors and folded-in new users' vectors: one product, one top-k."""
        folded = [row for row in rows if isinstance(row.source, list)]
        if folded:
            liked = [self.collaborative.vectors(row.source, scaled=True) for row in folded]  # type: ignore[arg-type]
            for row, vector in zip(folded, ials.fold_in(liked, self.gram, self.alpha), strict=True):
                row.source = vector
        queries = torch.stack([row.source.float() for row in rows])  # type: ignore[union-attr]
        hits = self.collaborative.top_k(
            queries, [asks[row.slot].k for row in rows], [row.exclude for row in rows], scaled=True
        )
        for row, hit in zip(rows, hits, strict=True):
            results[row.slot] = self._answer(PERSONAL, hit)

    def _rank_content(self, rows: list[_Row], asks: Sequence[Ask], results: list) -> None:
        """Text queries (encoded together) and new users whose liked items have text but no
        interactions (their items' centroid): one product, one top-k."""
        assert self.content is not None and self.encoder is not None
        texts = [row.source for row in rows if isinstance(row.source, str)]
        encoded = iter(self.encoder.encode(texts)) if texts else iter(())
        queries = []
        for row in rows:
            if isinstance(row.source, str):
                queries.append(next(encoded))
            else:
                items = [i for i in row.source if self.content.rankable[i]]  # type: ignore[union-attr]
                queries.append(torch.nn.functional.normalize(self.content.vectors(items).mean(0), dim=0))
        hits = self.content.top_k(
            torch.stack(queries), [asks[row.slot].k for row in rows], [row.exclude for row in rows]
        )
        for row, hit in zip(rows, hits, strict=True):
            results[row.slot] = self._answer(CONTENT, hit)

    def _popular(self, k: int) -> Recommendation:
        top = self.popular[:k]
        return self._answer(POPULAR, Hits(top, [self.popular_scores[i] for i in top]))

    def _items(self, item_ids: Sequence[str]) -> tuple[list[int], RecommendationError | None]:
        unknown = [item for item in item_ids if item not in self.item_index]
        if unknown:
            return [], _unknown(unknown)
        return list(dict.fromkeys(self.item_index[item] for item in item_ids)), None

    def _answer(self, strategy: str, hits: Hits) -> Recommendation:
        ids, titles = self.state.item_ids, self.state.titles
        return Recommendation(
            model=self.name,
            strategy=strategy,
            items=[
                ScoredItem(ids[i], titles[i], score)
                for i, score in zip(hits.indices, hits.scores, strict=True)
            ],
        )


def _unknown(item_ids: list[str]) -> RecommendationError:
    shown = ", ".join(repr(i) for i in item_ids[:10]) + (" ..." if len(item_ids) > 10 else "")
    return RecommendationError("unknown_item", f"unknown item id(s): {shown}", item_ids)


def _no_content(name: str) -> RecommendationError:
    return RecommendationError(
        "unprocessable",
        f"model {name!r} has no item text, so it cannot answer a query; train it with --items",
    )


def _raise_error(result: Recommendation | RecommendationError) -> Recommendation:
    if isinstance(result, RecommendationError):
        raise result
    return result
