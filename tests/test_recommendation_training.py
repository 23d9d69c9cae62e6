"""`python -m models.recommendation train` as a user runs it (a subprocess, a scratch
BentoML store), and the model store's handling of recommendation models."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from models.recommendation import Recommender
from service import model_store
from service.settings import Settings

from .movielens import TOY_STORY, ratings, titles_by_item, write_csv
from .servers import REPO

USERS = 300  # a third of ML-100K's users: real structure, a few seconds to train


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "models.recommendation", "train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def shop_data(tmp_path_factory) -> tuple[Path, Path]:
    """Part of ML-100K written as a user's own CSVs; the item table has extra items that no
    one has rated (cold items only content can recommend)."""
    directory = tmp_path_factory.mktemp("shop")
    rows = [(u, i, r, t) for u, i, r, t in ratings() if int(u) <= USERS]
    interactions = write_csv(directory / "ratings.csv", ["user", "item", "rating", "timestamp"], rows)
    rated = {i for _, i, _, _ in rows}
    titles = titles_by_item()
    items = [(i, titles[i], "", "") for i in sorted(rated, key=int)[:400]]
    items += [
        ("new-1", "Galactic Space Battle Saga", "2024", "Sci-Fi|Action"),
        ("new-2", "Baking Bread", "", "Documentary"),
    ]
    catalogue = write_csv(directory / "items.csv", ["item", "title", "year", "genres"], items)
    return interactions, catalogue


def test_malformed_csv_names_the_bad_line(tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_text("user,item,rating\n1,10,5\n2,11,4\n3,12,five\n")
    result = run_cli("--interactions", str(bad), "--name", "bad", home=tmp_path / "store")
    assert result.returncode == 2
    assert "error: ratings.csv line 4: rating 'five' is not a number" in result.stderr
    assert not (tmp_path / "store" / "models" / "bad").exists()
    bad.write_text("user,item\n1,10\n2\n")
    assert (
        "ratings.csv line 3: expected 2 fields"
        in run_cli("--interactions", str(bad), "--name", "b", home=tmp_path).stderr
    )


def test_bad_names_and_options_are_refused_before_training(tmp_path):
    result = run_cli("--interactions", "/nonexistent.csv", "--name", "My Recs", home=tmp_path)
    assert result.returncode == 2 and "--name 'My Recs'" in result.stderr
    result = run_cli("--interactions", "/nonexistent.csv", "--name", "x", "--holdout", "1", home=tmp_path)
    assert result.returncode == 2 and "--holdout must be between 0 and 1" in result.stderr


def test_train_prints_the_evaluation_and_stores_a_servable_model(shop_data, tmp_path):
    interactions, items = shop_data
    home = tmp_path / "store"
    result = run_cli(
        "--interactions",
        str(interactions),
        "--items",
        str(items),
        "--name",
        "shop-recs",
        "--output",
        str(tmp_path / "snap"),
        home=home,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = {
        line.split()[0]: [float(v) for v in line.split()[1:]]
        for line in lines
        if line.startswith(("iALS", "popularity"))
    }
    assert set(table) == {"iALS", "popularity"}, result.stdout
    assert "recall@10" in result.stdout and "NDCG@10" in result.stdout
    assert table["iALS"][0] > table["popularity"][0], result.stdout
    assert "serve it with PAIS_RECOMMENDATION_MODEL=bentoml:shop-recs" in result.stdout

    (stored,) = (home / "models" / "shop-recs").glob("*/model.yaml")
    metadata = yaml.safe_load(stored.read_text())["metadata"]
    assert metadata["evaluation"]["model"]["recall@10"] == table["iALS"][0]
    assert metadata["evaluation"]["popularity"]["ndcg@10"] == table["popularity"][1]
    assert metadata["source"] == str(interactions) and metadata["version"].startswith("ials.")

    model = Recommender.load(str(stored.parent), device="cpu")
    assert model.name == "shop-recs"
    assert model.recommend(user_id="1", k=5).strategy == "personal"
    # cold items: no interactions, so only content can place them
    similar = model.similar_items("new-1", k=5)
    assert similar.strategy == "content"
    query = model.recommend(query="space battle", k=3)
    assert query.items[0].item_id == "new-1", query.items
    assert model.recommend(liked_items=["new-2"], k=3).strategy == "content"
    assert model.recommend(liked_items=["new-2", TOY_STORY], k=3).strategy == "personal"
    # the snapshot written with --output is the same model
    assert Recommender.source_version(str(tmp_path / "snap")) == model.info.version


def test_parquet_on_s3_without_items(moto_endpoint, tmp_path):
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(u, i) for u, i, _, _ in ratings() if int(u) <= 200]
    pq.write_table(
        pa.table({"user_id": [u for u, _ in rows], "item_id": [i for _, i in rows]}), tmp_path / "r.parquet"
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pais-train")
    s3.upload_file(str(tmp_path / "r.parquet"), "pais-train", "data/r.parquet")
    result = run_cli(
        "--interactions",
        "s3://pais-train/data/r.parquet",
        "--name",
        "s3-recs",
        "--iterations",
        "5",
        home=tmp_path / "store",
    )
    assert result.returncode == 0, result.stderr
    assert "without timestamps" in result.stdout  # so the hold-out is a seeded random 20%
    (stored,) = (tmp_path / "store" / "models" / "s3-recs").glob("*/model.yaml")
    model = Recommender.load(str(stored.parent), device="cpu")
    assert model.encoder is None and model.recommend(user_id="3", k=4).items
    with pytest.raises(Exception, match="has no item text"):
        model.recommend(query="anything")


def test_store_references_resolve_to_the_stored_model():
    settings = Settings.from_env({"PAIS_RECOMMENDATION_MODEL": "bentoml:pais-recommendation"})
    path = Path(model_store.resolve_source("recommendation", settings))
    assert (path / "pais-model.json").is_file()
    missing = Settings.from_env({"PAIS_RECOMMENDATION_MODEL": "bentoml:no-such-model"})
    with pytest.raises(LookupError, match="names no model in the BentoML store"):
        model_store.resolve_source("recommendation", missing)
    assert "served from the store" in model_store.import_model("recommendation", settings)


def test_up_to_date_model_is_not_retrained(monkeypatch):
    """`make models` probes the version (data files + recipe + encoder) instead of training."""

    def no_loading(*args, **kwargs):
        raise AssertionError("an up-to-date model was loaded (trained) again")

    monkeypatch.setattr(model_store, "load_runtime", no_loading)
    message = model_store.import_model("recommendation", Settings.from_env({}))
    assert "is up to date" in message and Recommender.source_version("default") in message


# -- the evaluation's arithmetic, by hand on a tiny example -----------------------------

# 2 users, 5 items, k = 3. User 0 saw item 0 in training and holds out items 1 and 3;
# user 1 saw item 4 and holds out item 2. Items seen in training are never ranked.
TINY_SCORES = torch.tensor([[9.0, 1.0, 5.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
TINY_TRAIN = (torch.tensor([0, 1]), torch.tensor([0, 4]))
TINY_TEST = (torch.tensor([0, 0, 1]), torch.tensor([1, 3, 2]))
LOG2_3 = math.log2(3)
# user 0 ranks items 2, 3, 4: one hit (item 3) at rank 2 of its 2 held out
#   recall 1/2; DCG 1/log2(3); ideal DCG (2 relevant) 1/log2(2) + 1/log2(3)
# user 1 ranks items 3, 2, 1: its one held-out item at rank 2
#   recall 1/1; DCG 1/log2(3); ideal DCG (1 relevant) 1
USER_0 = {"recall@3": 0.5, "ndcg@3": (1 / LOG2_3) / (1 + 1 / LOG2_3)}
USER_1 = {"recall@3": 1.0, "ndcg@3": 1 / LOG2_3}


@pytest.mark.parametrize("score_elements", [1 << 25, 5], ids=["one chunk", "a user per chunk"])
def test_ranking_metrics_match_the_hand_computed_values(monkeypatch, score_elements):
    from models.recommendation import training

    monkeypatch.setattr(training, "SCORE_ELEMENTS", score_elements)

    def metrics(users: list[int]) -> dict[str, float]:
        return training.ranking_metrics(
            lambda batch: TINY_SCORES[batch].clone(), TINY_TRAIN, TINY_TEST, torch.tensor(users), (2, 5), k=3
        )

    assert metrics([0]) == pytest.approx(USER_0, abs=1e-12)
    assert metrics([1]) == pytest.approx(USER_1, abs=1e-12)
    both = metrics([0, 1])
    assert both == pytest.approx({key: (USER_0[key] + USER_1[key]) / 2 for key in USER_0}, abs=1e-12)
    assert both["ndcg@3"] == pytest.approx(0.508891, abs=1e-6) and both["recall@3"] == 0.75


def test_holdout_keeps_the_most_recent_items_of_users_with_enough_of_them():
    from models.recommendation.data import Interactions
    from models.recommendation.recipe import Holdout
    from models.recommendation.training import holdout_mask

    # (user, item, time) in file order; user 1 has 3 items, under min_user_items = 4
    rows = [(2, 0, 1), (0, 0, 50), (2, 1, 1), (0, 1, 10), (1, 0, 5), (0, 2, 40), (1, 1, 6)]
    rows += [(2, 2, 2), (0, 3, 20), (1, 2, 7), (2, 3, 3), (0, 4, 30)]
    users, items, times = (np.array(column) for column in zip(*rows, strict=True))
    interactions = Interactions(users, items, times.astype(float), ["a", "b", "c"], list("vwxyz"), len(rows))
    held = holdout_mask(interactions, Holdout(fraction=0.4, min_user_items=4))
    # user 0: round(5 x 0.4) = 2 most recent (times 50, 40); user 2: round(1.6) = 2 (times 3, 2)
    assert sorted((int(u), int(i)) for u, i in zip(users[held], items[held], strict=True)) == [
        (0, 0),
        (0, 2),
        (2, 2),
        (2, 3),
    ]
