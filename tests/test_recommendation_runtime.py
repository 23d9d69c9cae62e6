"""The recommendation runtime with the real default model (iALS on MovieLens-100K, the
all-MiniLM-L6-v2 encoder), checked against the dataset itself."""

from __future__ import annotations

import pytest
import torch

from models.recommendation import Ask, Recommendation, RecommendationError, Recommender
from models.recommendation.data import read_interactions
from models.recommendation.recipe import Recipe
from models.recommendation.training import evaluate
from service.model_store import resolve_source
from service.settings import Settings

from .movielens import (
    ALADDIN,
    EMPIRE_STRIKES_BACK,
    LION_KING,
    RETURN_OF_THE_JEDI,
    STAR_WARS,
    TOY_STORY,
    genres_by_item,
    interactions_file,
    seen_by_user,
)

CHILDRENS_ANIMATION = {"Animation", "Children's"}


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    """The model `make models` stored (trained here if the store has none)."""
    return Recommender.load(resolve_source("recommendation", Settings.from_env({})), device="cpu")


def ids(result: Recommendation) -> list[str]:
    return [item.item_id for item in result.items]


def test_held_out_recall_beats_popularity_clearly(recommender):
    """Re-run the default recipe's evaluation: iALS fitted on the training part, ranked
    against popularity on each user's most recent 20% of items; the stored model's
    metadata must say the same."""
    evaluation = evaluate(read_interactions(interactions_file()), Recipe())
    model, popularity = evaluation["model"], evaluation["popularity"]
    message = (
        f"held-out recall@10: iALS {model['recall@10']:.4f} vs popularity {popularity['recall@10']:.4f}; "
        f"NDCG@10: {model['ndcg@10']:.4f} vs {popularity['ndcg@10']:.4f}"
    )
    assert model["recall@10"] >= 1.5 * popularity["recall@10"], message
    assert model["recall@10"] - popularity["recall@10"] >= 0.03, message
    assert model["ndcg@10"] > popularity["ndcg@10"], message
    stored = recommender.info.details["evaluation"]
    for key in ("model", "popularity"):
        for metric, value in evaluation[key].items():
            assert stored[key][metric] == pytest.approx(value, abs=0.003), (key, metric, stored)
    assert stored["users_evaluated"] == 943 and stored["held_out_interactions"] == 20_000
    assert "most recent 20%" in stored["split"]


def test_exclude_seen_never_returns_a_seen_item(recommender):
    seen = seen_by_user()
    heavy = sorted(seen, key=lambda u: -len(seen[u]))[:10]  # users who have seen the most
    for user in [*heavy, "1", "196", "942"]:
        result = recommender.recommend(user_id=user, k=100)
        assert result.strategy == "personal" and len(result.items) == 100
        assert not set(ids(result)) & seen[user], user
    # without the flag the same users do get items they have seen: the flag is what filters
    unfiltered = recommender.recommend_many([Ask(user_id=u, k=20, exclude_seen=False) for u in heavy])
    assert any(set(ids(r)) & seen[u] for u, r in zip(heavy, unfiltered, strict=True))
    liked = [TOY_STORY, ALADDIN, LION_KING]
    assert not set(ids(recommender.recommend(liked_items=liked, k=100))) & set(liked)


@pytest.mark.parametrize("k", [1, 7, 100])
def test_k_is_honoured_by_every_strategy(recommender, k):
    answers = [
        recommender.recommend(user_id="196", k=k),
        recommender.recommend(user_id="not-a-user", k=k),
        recommender.recommend(liked_items=[TOY_STORY], k=k),
        recommender.recommend(query="a western with cowboys", k=k),
        recommender.similar_items(STAR_WARS, k=k),
    ]
    assert [len(a.items) for a in answers] == [k] * len(answers)
    for answer in answers:
        scores = [item.score for item in answer.items]
        assert scores == sorted(scores, reverse=True)


def test_unknown_user_gets_the_most_popular_items(recommender):
    result = recommender.recommend(user_id="somebody-new", k=3)
    assert result.strategy == "popular"
    assert result.items[0].item_id == STAR_WARS  # the most rated film of ML-100K (583 users)
    assert result.items[0].score == pytest.approx(583 / 943, abs=1e-6)


def test_text_query_finds_an_animated_childrens_film(recommender):
    result = recommender.recommend(query="animated film for children", k=5)
    assert result.strategy == "content"
    genres = genres_by_item()
    assert any(genres[item] >= CHILDRENS_ANIMATION for item in ids(result)), [i.title for i in result.items]
    space = recommender.recommend(query="space battle science fiction", k=5)
    assert sum("Sci-Fi" in genres[item] for item in ids(space)) >= 4, [i.title for i in space.items]


def test_fold_in_for_a_new_user_follows_their_taste(recommender):
    """Folded-in from three animated children's films, the collaborative model (which never
    saw genres) recommends mostly children's films."""
    result = recommender.recommend(liked_items=[TOY_STORY, ALADDIN, LION_KING], k=10)
    assert result.strategy == "personal"
    genres = genres_by_item()
    childrens = [i.title for i in result.items if "Children's" in genres[i.item_id]]
    assert len(childrens) >= 4, [i.title for i in result.items]  # 7% of the catalogue is


def test_similar_items_come_from_the_same_taste(recommender):
    result = recommender.similar_items(STAR_WARS, k=3)
    assert result.strategy == "collaborative"
    assert {RETURN_OF_THE_JEDI, EMPIRE_STRIKES_BACK} & set(ids(result)), [i.title for i in result.items]
    assert STAR_WARS not in ids(recommender.similar_items(STAR_WARS, k=50))


def test_unknown_items_are_errors_in_their_own_slot(recommender):
    results = recommender.recommend_many(
        [Ask(liked_items=(TOY_STORY, "no-such-film")), Ask(user_id="196", k=2), Ask(query="comedy", k=2)]
    )
    assert isinstance(results[0], RecommendationError) and results[0].kind == "unknown_item"
    assert results[0].item_ids == ["no-such-film"] and "no-such-film" in results[0].message
    assert [r.strategy for r in results[1:]] == ["personal", "content"]
    with pytest.raises(RecommendationError, match="unknown item id"):
        recommender.similar_items("no-such-film")
    with pytest.raises(ValueError, match="exactly one of"):
        Ask(user_id="1", query="x")
    with pytest.raises(ValueError, match="k must be at least 1"):
        Ask(user_id="1", k=0)


def test_a_mixed_batch_answers_like_single_requests(recommender):
    asks = [
        Ask(user_id="196", k=5),
        Ask(liked_items=(STAR_WARS, "172"), k=4),
        Ask(query="romantic comedy", k=3),
        Ask(user_id="nobody", k=2),
        Ask(user_id="1", k=6, exclude_seen=False),
        Ask(liked_items=(TOY_STORY,), k=3, exclude_seen=False),
    ]
    batched = recommender.recommend_many(asks)
    for ask, together in zip(asks, batched, strict=True):
        (alone,) = recommender.recommend_many([ask])
        assert ids(together) == ids(alone)
        assert [i.score for i in together.items] == pytest.approx([i.score for i in alone.items], abs=1e-5)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_reduced_precision_agrees_with_fp32(recommender, dtype, tmp_path_factory):
    """fp16/bf16 is what a GPU serves with; forced on the CPU the same code path runs."""
    directory = tmp_path_factory.mktemp("snapshot")
    recommender.save(directory)
    reduced = Recommender.load(str(directory), device="cpu", dtype=dtype)
    assert reduced.collaborative.unit.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    for user in ("196", "1", "500"):
        full, low = recommender.recommend(user_id=user, k=10), reduced.recommend(user_id=user, k=10)
        assert len(set(ids(full)) & set(ids(low))) >= 8, (ids(full), ids(low))
    query = "animated film for children"
    assert len(set(ids(recommender.recommend(query=query))) & set(ids(reduced.recommend(query=query)))) >= 7


def test_snapshot_round_trip_and_version_probe(recommender, tmp_path):
    recommender.save(tmp_path / "snap")
    assert Recommender.source_version(str(tmp_path / "snap")) == recommender.info.version
    reloaded = Recommender.load(str(tmp_path / "snap"), device="cpu")
    for ask in (Ask(user_id="196"), Ask(query="war film"), Ask(liked_items=(STAR_WARS,))):
        (a,), (b,) = recommender.recommend_many([ask]), reloaded.recommend_many([ask])
        assert ids(a) == ids(b)
    cards = reloaded.cards
    assert [c.name for c in cards] == ["ials-movielens-100k", "all-MiniLM-L6-v2"]
    assert "MovieLens-100K" in cards[0].licence and "research use only" in cards[0].licence
    assert cards[1].licence.startswith("apache-2.0")


def test_model_card_is_honest(recommender):
    info = recommender.info
    assert (info.task, info.name, info.source) == (
        "recommendation",
        "ials-movielens-100k",
        "packaged:movielens-100k",
    )
    assert info.version == Recommender.source_version("packaged:movielens-100k")
    assert "no commercial" in info.licence and "no redistribution" in info.licence
    assert "recbole" in info.origin
    assert info.details["users"] == 943 and info.details["items"] == 1682
