"""Reading training data: CSV, TSV, Parquet, S3; every malformed row named by its line."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import numpy as np
import pytest

from models.recommendation.data import DataError, item_text, read_interactions, read_items
from models.recommendation.recipe import Holdout
from models.recommendation.training import holdout_mask

from .movielens import interactions_file, items_file, ratings, write_csv


def test_movielens_as_shipped():
    data = read_interactions(interactions_file())
    assert (len(data), data.n_users, data.n_items, data.rows_read) == (100_000, 943, 1682, 100_000)
    user, item, _, timestamp = ratings()[0]
    assert (data.user_ids[data.users[0]], data.item_ids[data.items[0]]) == (user, item)
    assert data.timestamps[0] == float(timestamp)
    items = read_items(items_file(), genre_separator=" ")
    toy_story = items.item_ids.index("1")
    assert items.titles[toy_story] == "Toy Story"
    assert items.texts[toy_story] == "Toy Story (1995). Genres: Animation, Children's, Comedy."


def test_duplicates_keep_the_earliest_time_and_iso_dates_are_read(tmp_path):
    path = write_csv(
        tmp_path / "events.csv",
        ["user_id", "item_id", "timestamp"],
        [
            ("u1", "a", "2024-01-03T00:00:00"),
            ("u1", "b", "1704067200"),  # 2024-01-01 as Unix seconds
            ("u1", "a", "2024-01-02T00:00:00+00:00"),
            ("u2", "a", "2024-01-05"),
        ],
    )
    data = read_interactions(path)
    assert data.rows_read == 4 and len(data) == 3
    pairs = {
        (data.user_ids[u], data.item_ids[i]): t
        for u, i, t in zip(data.users, data.items, data.timestamps, strict=True)
    }
    assert pairs[("u1", "a")] == datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    assert pairs[("u1", "b")] == 1704067200
    assert pairs[("u2", "a")] == datetime(2024, 1, 5, tzinfo=UTC).timestamp()


def test_min_rating_and_gzip(tmp_path):
    path = tmp_path / "ratings.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("user,item,rating\n1,10,5\n1,11,2\n2,10,4\n")
    data = read_interactions(path, min_rating=4)
    assert (data.rows_read, len(data), data.item_ids) == (3, 2, ["10"])
    assert data.timestamps is None


def test_parquet_with_integer_ids_and_datetimes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    when = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    table = pa.table({"user": [1, 1, 2], "item": [7, 8, 7], "rating": [4.0, 5.0, 3.0], "timestamp": when})
    pq.write_table(table, tmp_path / "ratings.parquet")
    data = read_interactions(tmp_path / "ratings.parquet")
    assert data.user_ids == ["1", "2"] and data.item_ids == ["7", "8"]
    assert list(data.timestamps) == [w.timestamp() for w in when]


MALFORMED: dict[str, tuple[str, str]] = {
    "missing field": ("user,item,rating\n1,10,5\n2,11,4\n3,12\n", "bad.csv line 4: expected 3 fields"),
    "rating not a number": (
        "user,item,rating\n1,10,5\n1,11,great\n",
        "bad.csv line 3: rating 'great' is not a number",
    ),
    "rating not finite": (
        "user,item,rating\n1,10,nan\n",
        "bad.csv line 2: rating 'nan' is not a finite number",
    ),
    "empty user": ("user,item\n1,10\n ,11\n", "bad.csv line 3: empty user"),
    "bad timestamp": (
        "user,item,timestamp\n1,10,yesterday\n",
        "bad.csv line 2: timestamp 'yesterday' is neither",
    ),
    "unterminated quote": ('user,item\n1,10\n2,"11\n', "bad.csv line 3: malformed CSV"),
    "no item column": ("user,movie\n1,10\n", "bad.csv: no 'item' column; header has user, movie"),
    "header only": ("user,item\n", "bad.csv has no interactions"),
    "empty file": ("", "bad.csv is empty"),
    "column twice": ("user,item,user\n1,2,3\n", "column 'user' appears twice"),
}


@pytest.mark.parametrize(("text", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_csv_names_the_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_interactions(path)
    assert message in str(error.value)


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('user,item\n\n1,"multi\nline"\n2\n')
    with pytest.raises(DataError, match=r"bad.csv line 5: expected 2 fields"):
        read_interactions(path)


def test_other_bad_inputs(tmp_path):
    (tmp_path / "latin1.csv").write_bytes(b"user,item\n1,10\n2,caf\xe9\n")
    with pytest.raises(DataError, match=r"latin1.csv line 3: not UTF-8"):
        read_interactions(tmp_path / "latin1.csv")
    (tmp_path / "ratings.json").write_text("{}")
    with pytest.raises(DataError, match=r"unknown file type; accepted: .csv"):
        read_interactions(tmp_path / "ratings.json")
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "absent.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"broken.parquet: not a readable Parquet file"):
        read_interactions(tmp_path / "broken.parquet")
    path = write_csv(tmp_path / "r.csv", ["user", "item"], [("1", "2")])
    with pytest.raises(DataError, match="no rating column"):
        read_interactions(path, min_rating=3)


def test_parquet_bad_row_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": ["a", None, "c"], "item": ["x", "y", "z"]}), tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"r.parquet row 2: empty user"):
        read_interactions(tmp_path / "r.parquet")


def test_item_table(tmp_path):
    path = write_csv(
        tmp_path / "items.csv",
        ["item", "title", "year", "genres", "description"],
        [("1", "Alien", "1979", "Horror|Sci-Fi", "A crew meets a creature."), ("2", "", "", "", "")],
    )
    items = read_items(path)
    assert items.texts == ["Alien (1979). Genres: Horror, Sci-Fi. A crew meets a creature.", ""]
    assert items.titles == ["Alien", None]
    write_csv(tmp_path / "dup.csv", ["item", "title"], [("1", "A"), ("2", "B"), ("1", "C")])
    with pytest.raises(DataError, match=r"dup.csv line 4: item '1' is listed twice \(first on line 2\)"):
        read_items(tmp_path / "dup.csv")
    write_csv(tmp_path / "bare.csv", ["item", "price"], [("1", "3")])
    with pytest.raises(DataError, match="no item text"):
        read_items(tmp_path / "bare.csv")
    assert item_text("Up", "unknown", [], "") == "Up."


def test_s3_interactions(moto_endpoint, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("PAIS_CACHE_DIR", str(tmp_path / "cache"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pais-data")
    s3.put_object(Bucket="pais-data", Key="shop/ratings.csv", Body=b"user,item\nu1,i1\nu2,i1\n")
    data = read_interactions("s3://pais-data/shop/ratings.csv")
    assert (len(data), data.user_ids) == (2, ["u1", "u2"])
    # the object is read again each time: data replaced under the same key is seen
    s3.put_object(Bucket="pais-data", Key="shop/ratings.csv", Body=b"user,item\nu1,i1\nu2,i1\nu3,i2\n")
    assert len(read_interactions("s3://pais-data/shop/ratings.csv")) == 3
    from models.sources import SourceError

    with pytest.raises(SourceError, match=r"cannot download s3://pais-data/absent.csv"):
        read_interactions("s3://pais-data/absent.csv")


def test_holdout_is_per_user_most_recent_fifth():
    data = read_interactions(interactions_file())
    mask = holdout_mask(data, Holdout())
    for user in range(0, data.n_users, 97):
        mine = np.flatnonzero(data.users == user)
        held, kept = mine[mask[mine]], mine[~mask[mine]]
        assert len(held) == round(0.2 * len(mine))
        assert data.timestamps[held].min() >= data.timestamps[kept].max()
    timeless = read_interactions(interactions_file())
    timeless.timestamps = None
    random_mask = holdout_mask(timeless, Holdout())
    assert random_mask.sum() == mask.sum() and (random_mask != mask).any()
    assert (holdout_mask(timeless, Holdout()) == random_mask).all()  # seeded
