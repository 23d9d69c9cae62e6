"""Admin calls from the entry service to its model services (GET /models, /stats,
/voices, /translate/languages): one retry, then an error that names the model service and
the call (the routes answer it as JSON, never as a bare 500)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from service.model_calls import ModelServiceError, ask_model_service


def flaky_service(failures: int) -> SimpleNamespace:
    """A service whose `stats` API fails `failures` times, then answers."""
    calls = []

    async def stats() -> dict[str, int]:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionResetError("connection closed by the model service")
        return {"calls": len(calls)}

    return SimpleNamespace(to_async=SimpleNamespace(stats=stats))


def test_one_failure_is_tried_again():
    assert asyncio.run(ask_model_service("speech", flaky_service(1), "stats")) == {"calls": 2}


def test_two_failures_name_the_service_and_the_call():
    with pytest.raises(
        ModelServiceError, match=r"model service 'speech' did not answer stats: ConnectionReset"
    ):
        asyncio.run(ask_model_service("speech", flaky_service(2), "stats"))


def test_routes_answer_a_silent_model_service_with_json_503():
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from service.model_calls import answers_model_service_errors

    @answers_model_service_errors
    async def voices(request):
        await ask_model_service("speech", flaky_service(2), "stats")

    answer = TestClient(Starlette(routes=[Route("/voices", voices)])).get("/voices")
    assert answer.status_code == 503
    assert answer.json()["error"].startswith("model service 'speech' did not answer stats")
