"""POST /v1/feedback (lambdas/gateway/feedback.py) against DynamoDB in a moto server: a tenant rates
its own answers once; another tenant's, an unknown or an expired id is 404; a second rating 409; a
store outage 503; every chat answer (cached, streamed) has an id of its own that can be rated, and
the rating reaches the metrics with the answer's alias, target and prompt version."""

from __future__ import annotations

import pytest

from lambdas.gateway.cache import ResponseCache
from lambdas.gateway.errors import GatewayError
from lambdas.gateway.feedback import FeedbackStore
from lambdas.gateway.service import Gateway
from tests.lambdas.gateway.conftest import moto_client
from tests.lambdas.gateway.fakes import FakeClock, RecordingMetrics, ScriptedChat, answer

DAY = 24 * 3600


def gateway(dynamodb, table: str, clock: FakeClock | None = None, **extra) -> Gateway:
    return Gateway(
        chat_routes={"chat": [ScriptedChat("bedrock:m", answer())]},
        embedding_routes={},
        feedback=FeedbackStore(dynamodb, table=table, retention_days=30, clock=clock or FakeClock(1e9)),
        **extra,
    )


def ask(gw: Gateway, tenant: str = "team-a", **extra) -> dict:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, **extra}
    return gw.chat(body, tenant=tenant, metrics=RecordingMetrics())[0]


def rate(gw: Gateway, response_id: str, tenant: str = "team-a", score: float = 1.0, **extra):
    metrics = RecordingMetrics()
    body = {"response_id": response_id, "score": score, **extra}
    result, _ = gw.rate(body, tenant=tenant, metrics=metrics)
    return result, metrics


def test_a_tenant_rates_its_answer_and_the_metric_names_alias_target_and_prompt_version(
    dynamodb, feedback_table
):
    gw = gateway(dynamodb, feedback_table)
    answered = ask(gw, metadata={"prompt_version": "v3", "team": "copy"})
    result, metrics = rate(gw, answered["id"], score=0.0, comment="wrong currency")
    assert result == {"object": "feedback", "response_id": answered["id"], "score": 0.0}
    ((rated, score),) = metrics.ratings
    assert (rated.tenant, rated.alias, rated.target, rated.prompt_version, score) == (
        "team-a",
        "chat",
        "bedrock:m",
        "v3",
        0.0,
    )
    stored = dynamodb.get_item(TableName=feedback_table, Key={"pk": {"S": f"feedback#{answered['id']}"}})
    assert stored["Item"]["comment"]["S"] == "wrong currency"
    assert int(stored["Item"]["expires_at"]["N"]) == int(1e9) + 30 * DAY


def test_another_tenant_cannot_rate_it_nor_tell_it_exists(dynamodb, feedback_table):
    gw = gateway(dynamodb, feedback_table)
    answered = ask(gw)
    refusals = []
    for response_id, tenant in ((answered["id"], "team-b"), ("chatcmpl-unknown0", "team-a")):
        with pytest.raises(GatewayError) as refused:
            rate(gw, response_id, tenant=tenant)
        refusals.append((refused.value.status, refused.value.code, refused.value.param))
    assert refusals == [(404, "response_not_found", "response_id")] * 2


def test_an_answer_is_rated_once(dynamodb, feedback_table):
    gw = gateway(dynamodb, feedback_table)
    answered = ask(gw)
    rate(gw, answered["id"])
    with pytest.raises(GatewayError) as refused:
        rate(gw, answered["id"], score=0.0)
    assert (refused.value.status, refused.value.code) == (409, "already_rated")


def test_an_answer_past_the_retention_cannot_be_rated(dynamodb, feedback_table):
    clock = FakeClock(1e9)
    gw = gateway(dynamodb, feedback_table, clock)
    answered = ask(gw)
    clock.now += 31 * DAY  # DynamoDB removes expired items lazily: the gateway checks expires_at
    with pytest.raises(GatewayError) as refused:
        rate(gw, answered["id"])
    assert refused.value.status == 404


def test_a_cached_answer_has_an_id_of_its_own_for_its_tenant(dynamodb, feedback_table, cache_table):
    gw = gateway(dynamodb, feedback_table, cache=ResponseCache(dynamodb, table=cache_table, ttl_seconds=60))
    first, second = ask(gw, tenant="team-a"), ask(gw, tenant="team-b")
    assert first["id"] != second["id"]
    _, metrics = rate(gw, second["id"], tenant="team-b")
    assert metrics.ratings[0][0].target == "cache"


def test_a_streamed_answer_is_rated_by_the_id_its_chunks_carry(dynamodb, feedback_table):
    import json

    class Streaming(ScriptedChat):
        def stream(self, request, *, deadline):
            from lambdas.gateway.providers.base import Delta

            yield Delta(text="Hi", finish_reason="stop", input_tokens=1, output_tokens=1)

    gw = gateway(dynamodb, feedback_table)
    gw.chat_routes = {"chat": [Streaming("bedrock:m", answer())]}
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks, _ = gw.chat_stream(body, tenant="team-a", metrics=RecordingMetrics())
    events = [
        json.loads(line[6:]) for line in b"".join(chunks).decode().splitlines() if line.startswith("data: {")
    ]
    (ident,) = {event["id"] for event in events}
    _, metrics = rate(gw, ident)
    assert metrics.ratings[0][1] == 1.0


def test_bad_ratings_are_refused_by_field(dynamodb, feedback_table):
    gw = gateway(dynamodb, feedback_table)
    problems = []
    for body in (
        {"response_id": "chatcmpl-abc", "score": 2},
        {"response_id": "not-an-id", "score": 1},
        {"response_id": "chatcmpl-abc", "score": 1, "comment": "x" * 2001},
        {"response_id": "chatcmpl-abc", "score": 1, "stars": 5},
    ):
        with pytest.raises(GatewayError) as refused:
            gw.rate(body, tenant="team-a", metrics=RecordingMetrics())
        problems.append((refused.value.status, refused.value.param))
    assert problems == [(400, "score"), (400, "response_id"), (400, "comment"), (400, "stars")]


def test_a_store_outage_is_503_never_a_silent_drop(moto_endpoint):
    gw = gateway(moto_client(moto_endpoint, "dynamodb"), "no-such-table")
    answered = ask(gw)  # the record is skipped, the answer is not held back
    assert answered["choices"][0]["message"]["content"] == "Hello!"
    with pytest.raises(GatewayError) as refused:
        rate(gw, answered["id"])
    assert (refused.value.status, refused.value.code, refused.value.headers) == (
        503,
        "feedback_unavailable",
        {"Retry-After": "1"},
    )


def test_without_feedback_the_route_is_unknown():
    gw = Gateway(chat_routes={"chat": [ScriptedChat("bedrock:m", answer())]}, embedding_routes={})
    with pytest.raises(GatewayError) as refused:
        gw.rate({"response_id": "chatcmpl-abc", "score": 1}, tenant="t", metrics=RecordingMetrics())
    assert refused.value.status == 404


def test_the_openai_sdk_rates_an_answer_through_the_served_handler(dynamodb, feedback_table, monkeypatch):
    """The official client: metadata on the chat call, then its generic post() to /feedback."""
    import importlib
    import json

    import openai

    from lambdas.gateway.local import serve

    monkeypatch.setenv("GATEWAY_CONFIG", json.dumps({"chat": {"chat": [{"kind": "bedrock", "model": "m"}]}}))
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    gw = gateway(dynamodb, feedback_table)
    metrics = RecordingMetrics()
    monkeypatch.setattr(module, "gateway", lambda: gw)
    monkeypatch.setattr(module, "EmfMetrics", lambda: metrics)
    server = serve(module.on_event)
    try:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="local", max_retries=0
        )
        answered = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], metadata={"prompt_version": "v7"}
        )
        rated = client.post("/feedback", body={"response_id": answered.id, "score": 0.5}, cast_to=object)
        assert rated == {"object": "feedback", "response_id": answered.id, "score": 0.5}
        assert metrics.ratings[0][0].prompt_version == "v7"
        with pytest.raises(openai.ConflictError) as again:
            client.post("/feedback", body={"response_id": answered.id, "score": 1}, cast_to=object)
        assert again.value.body["code"] == "already_rated"
    finally:
        server.shutdown()


def test_a_prompt_version_that_cannot_be_a_metric_dimension_is_refused(dynamodb, feedback_table):
    gw = gateway(dynamodb, feedback_table)
    for version in ("春季-v3", "   ", "x" * 65):
        with pytest.raises(GatewayError) as refused:
            ask(gw, metadata={"prompt_version": version})
        assert (refused.value.status, refused.value.param) == (400, "metadata")
    assert ask(gw, metadata={"prompt_version": "spring_v3:2026-12"})["id"].startswith("chatcmpl-")
