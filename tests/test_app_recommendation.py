"""POST /recommend and POST /similar_items through the in-process app (tests/inprocess.py)
on the real recommender (trained on MovieLens-100K by `make models`): answers checked
against the data set itself (tests/movielens.py), and the error answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .bad_requests import assert_error
from .inprocess import InProcessPais
from .movielens import (
    ALADDIN,
    LION_KING,
    RETURN_OF_THE_JEDI,
    STAR_WARS,
    TOY_STORY,
    genres_by_item,
    seen_by_user,
)


@pytest.fixture(scope="module")
def app(pais_app: InProcessPais) -> InProcessPais:
    pais_app.require("recommendation")
    return pais_app


@pytest.fixture(scope="module")
def client(app: InProcessPais) -> httpx.Client:
    return app.client


@pytest.fixture(scope="module")
def max_k(app: InProcessPais) -> int:
    return app.settings.section("recommendation").max_k


def post(client: httpx.Client, route: str, body: Any) -> httpx.Response:
    return client.post(route, json=body)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def test_a_known_user_gets_titled_unseen_items_best_first(client):
    response = post(client, "/recommend", {"user_id": "196", "k": 10})
    body = response.json()
    assert (body["model"], body["strategy"]) == ("ials-movielens-100k", "personal")
    assert len(body["items"]) == 10 and all(
        set(item) == {"item_id", "title", "score"} for item in body["items"]
    )
    assert all(item["title"] for item in body["items"])
    assert not set(ids(response)) & seen_by_user()["196"]
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert ids(post(client, "/recommend", {"user_id": 196, "k": 10})) == ids(response)  # a JSON number as id
    seen_too = ids(post(client, "/recommend", {"user_id": "196", "k": 10, "exclude_seen": False}))
    assert set(seen_too) & seen_by_user()["196"]


def test_cold_start_strategies(client):
    unknown = post(client, "/recommend", {"user_id": "just-signed-up", "k": 3}).json()
    assert unknown["strategy"] == "popular" and unknown["items"][0]["title"] == "Star Wars"
    liked = post(client, "/recommend", {"liked_items": [TOY_STORY, ALADDIN, LION_KING], "k": 10})
    assert liked.json()["strategy"] == "personal"
    assert not {TOY_STORY, ALADDIN, LION_KING} & set(ids(liked))
    genres = genres_by_item()
    assert sum("Children's" in genres[item] for item in ids(liked)) >= 4, liked.json()
    query = post(client, "/recommend", {"query": "animated film for children", "k": 5})
    assert query.json()["strategy"] == "content"
    assert any({"Animation", "Children's"} <= genres[item] for item in ids(query)), query.json()


def test_similar_items(client):
    response = post(client, "/similar_items", {"item_id": STAR_WARS, "k": 4})
    body = response.json()
    assert (body["item_id"], body["strategy"], len(body["items"])) == (STAR_WARS, "collaborative", 4)
    assert RETURN_OF_THE_JEDI in ids(response) and STAR_WARS not in ids(response)
    assert body["items"][0]["title"] == "Return of the Jedi"


def test_k_up_to_the_configured_maximum(client, max_k):
    for route, body in (
        ("/recommend", {"user_id": "1"}),
        ("/recommend", {"query": "film noir detective"}),
        ("/similar_items", {"item_id": TOY_STORY}),
    ):
        assert len(ids(post(client, route, {**body, "k": max_k}))) == max_k, route
        assert len(ids(post(client, route, body))) == 10, route  # the default k


def bad_requests(max_k: int) -> dict[str, tuple[str, Any, int, str]]:
    return {
        "unknown item": ("/similar_items", {"item_id": "99999"}, 404, "unknown item id(s): '99999'"),
        "unknown liked item": (
            "/recommend",
            {"liked_items": [STAR_WARS, "nope"]},
            404,
            "unknown item id(s): 'nope'",
        ),
        "k zero": (
            "/recommend",
            {"user_id": "1", "k": 0},
            400,
            "k: Input should be greater than or equal to 1",
        ),
        "k over the setting": (
            "/recommend",
            {"user_id": "1", "k": max_k + 1},
            400,
            f"k: {max_k + 1}; at most {max_k} (PAIS_RECOMMENDATION_MAX_K)",
        ),
        "k over the setting (similar)": (
            "/similar_items",
            {"item_id": STAR_WARS, "k": max_k + 1},
            400,
            "(PAIS_RECOMMENDATION_MAX_K)",
        ),
        "k not a number": (
            "/recommend",
            {"user_id": "1", "k": "ten"},
            400,
            "k: Input should be a valid integer",
        ),
        "two inputs": ("/recommend", {"user_id": "1", "query": "x"}, 400, "give exactly one of user_id"),
        "no input": ("/recommend", {"k": 5}, 400, "got none"),
        "misspelt field": (
            "/recommend",
            {"user_id": "1", "exclude_seem": False},
            400,
            "unexpected field(s): exclude_seem",
        ),
        "empty liked_items": (
            "/recommend",
            {"liked_items": []},
            400,
            "liked_items: List should have at least 1 item",
        ),
        "blank query": (
            "/recommend",
            {"query": "   "},
            400,
            "query: String should have at least 1 character",
        ),
        "query too long": (
            "/recommend",
            {"query": "x" * 1001},
            400,
            "query: 1001 characters; at most 1000 (PAIS_RECOMMENDATION_MAX_QUERY_CHARS)",
        ),
        "boolean id": ("/similar_items", {"item_id": True}, 400, "item_id: Input should be a valid string"),
        "not an object": ("/recommend", [1, 2], 400, "must be a JSON object"),
    }


@pytest.mark.parametrize("case", list(bad_requests(100)))
def test_bad_input_is_a_clear_4xx(client, max_k, case):
    route, body, status, text = bad_requests(max_k)[case]
    assert_error(post(client, route, body), status, text)


def test_unknown_ids_are_listed_in_the_detail(client):
    body = assert_error(post(client, "/recommend", {"liked_items": ["nope", STAR_WARS, "gone"]}), 404, "nope")
    (detail,) = body["detail"]
    assert detail["kind"] == "unknown_item" and sorted(detail["item_ids"]) == ["gone", "nope"]
