"""POST /recommend and POST /similar_items against a real `bentoml serve` on 127.0.0.1:
what only a real server shows (many users at once, batching, SageMaker, /models). The
strategies and answers themselves are checked in process (tests/test_app_recommendation.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.settings import get_settings

from .movielens import (
    STAR_WARS,
    TOY_STORY,
    seen_by_user,
)

pytestmark = pytest.mark.server
MAX_K = get_settings().section("recommendation").max_k


def post(url: str, route: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}/{route}", json=body, timeout=60)


def item_ids(response: httpx.Response) -> list[str]:
    return [item["item_id"] for item in response.json()["items"]]


def test_known_user_gets_unseen_personal_recommendations(pais_server):
    response = post(pais_server, "recommend", {"user_id": "196", "k": 10, "exclude_seen": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["strategy"]) == ("ials-movielens-100k", "personal")
    assert len(body["items"]) == 10 and set(body["items"][0]) == {"item_id", "title", "score"}
    assert not set(item_ids(response)) & seen_by_user()["196"]
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # exclude_seen defaults to true; numbers are accepted as ids
    assert item_ids(post(pais_server, "recommend", {"user_id": 196, "k": 10})) == item_ids(response)


def test_exclude_seen_over_http_for_many_users(pais_server):
    seen = seen_by_user()
    users = sorted(seen, key=lambda u: -len(seen[u]))[:8]

    def ask(user: str) -> tuple[str, httpx.Response]:
        return user, post(pais_server, "recommend", {"user_id": user, "k": MAX_K})

    with ThreadPoolExecutor(8) as pool:
        for user, response in pool.map(ask, users):
            assert response.status_code == 200 and len(item_ids(response)) == MAX_K
            assert not set(item_ids(response)) & seen[user], user


@pytest.mark.parametrize("k", [1, 13, MAX_K])
def test_k_is_honoured(pais_server, k):
    bodies = [
        ("recommend", {"user_id": "1", "k": k}),
        ("recommend", {"user_id": "nobody", "k": k}),
        ("recommend", {"liked_items": [STAR_WARS], "k": k}),
        ("recommend", {"query": "film noir detective", "k": k}),
        ("similar_items", {"item_id": TOY_STORY, "k": k}),
    ]
    for route, body in bodies:
        assert len(item_ids(post(pais_server, route, body))) == k, (route, body)


# name -> (route, body, expected status, text the error must contain)
BAD_REQUESTS: dict[str, tuple[str, object, int, str]] = {
    "unknown item (similar)": ("similar_items", {"item_id": "99999"}, 404, "unknown item id(s): '99999'"),
    "unknown liked item": (
        "recommend",
        {"liked_items": [STAR_WARS, "nope"]},
        404,
        "unknown item id(s): 'nope'",
    ),
    "k zero": ("recommend", {"user_id": "1", "k": 0}, 400, "k: Input should be greater than or equal to 1"),
    "k too big": (
        "recommend",
        {"user_id": "1", "k": MAX_K + 1},
        400,
        f"at most {MAX_K} (PAIS_RECOMMENDATION_MAX_K)",
    ),
    "k too big (similar)": (
        "similar_items",
        {"item_id": STAR_WARS, "k": MAX_K + 1},
        400,
        "k: 101; at most 100",
    ),
    "k not a number": ("recommend", {"user_id": "1", "k": "ten"}, 400, "k: Input should be a valid integer"),
    "two inputs": ("recommend", {"user_id": "1", "query": "x"}, 400, "exactly one of user_id"),
    "no input": ("recommend", {"k": 5}, 400, "got none"),
    "misspelt field": (
        "recommend",
        {"user_id": "1", "exclude_seem": False},
        400,
        "unexpected field(s): exclude_seem",
    ),
    "empty liked_items": (
        "recommend",
        {"liked_items": []},
        400,
        "liked_items: List should have at least 1 item",
    ),
    "blank query": ("recommend", {"query": "   "}, 400, "query: String should have at least 1 character"),
    "query too long": ("recommend", {"query": "x" * 1001}, 400, "query: 1001 characters; at most 1000"),
    "empty user id": ("recommend", {"user_id": ""}, 400, "user_id: String should have at least 1 character"),
    "boolean id": ("similar_items", {"item_id": True}, 400, "item_id: Input should be a valid string"),
    "missing item_id": ("similar_items", {"k": 3}, 400, "item_id: Field required"),
    "not an object": ("recommend", [1, 2], 400, "must be a JSON object"),
}


@pytest.mark.parametrize(("route", "body", "status", "text"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_carries_on(pais_server, route, body, status, text):
    response = post(pais_server, route, body)
    assert response.status_code == status, response.text
    assert text in response.json()["error"], response.json()
    assert post(pais_server, "recommend", {"user_id": "1", "k": 2}).status_code == 200


def test_malformed_json_is_a_400(pais_server):
    response = httpx.post(
        f"{pais_server}/recommend", content=b"{user_id: 1", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_models_lists_the_recommender_and_its_encoder(pais_server):
    cards = {
        c["name"]: c
        for c in httpx.get(f"{pais_server}/models").json()["models"]
        if c["task"] == "recommendation"
    }
    assert set(cards) == {"ials-movielens-100k", "all-MiniLM-L6-v2"}
    recommender = cards["ials-movielens-100k"]
    assert recommender["source"] == "packaged:movielens-100k"
    assert "research use only" in recommender["licence"]
    evaluation = recommender["details"]["evaluation"]
    assert evaluation["model"]["recall@10"] > evaluation["popularity"]["recall@10"]
    assert cards["all-MiniLM-L6-v2"]["licence"].startswith("apache-2.0")


def test_sagemaker_invocations_reach_the_same_endpoints(pais_server):
    def invoke(body: dict, task: str) -> httpx.Response:
        headers = {"X-Amzn-SageMaker-Custom-Attributes": f"task={task}"}
        return httpx.post(f"{pais_server}/invocations", json=body, headers=headers, timeout=60)

    direct = post(pais_server, "recommend", {"user_id": "196", "k": 5})
    assert item_ids(invoke({"user_id": "196", "k": 5}, "recommend")) == item_ids(direct)
    assert invoke({"task": "similar_items", "item_id": STAR_WARS}, "recommend").json()["item_id"] == STAR_WARS
    refused = invoke({"item_id": "99999"}, "similar_items")
    assert refused.status_code == 404 and "99999" in refused.json()["error"]


def test_concurrent_requests_are_batched(pais_server):
    before = httpx.get(f"{pais_server}/stats").json()["recommendation"].get("predict_batch", {})
    users = [str(u) for u in range(1, 65)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda u: post(pais_server, "recommend", {"user_id": u, "k": 5}), users))
    assert all(r.status_code == 200 and r.json()["strategy"] == "personal" for r in responses)
    after = httpx.get(f"{pais_server}/stats").json()["recommendation"]["predict_batch"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items()}
    assert sum(size * count for size, count in formed.items()) >= 64
    assert max(size for size, count in formed.items() if count > 0) > 1, formed
