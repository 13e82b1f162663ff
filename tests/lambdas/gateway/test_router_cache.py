"""Fallback order, retries, deadline and the exact-match cache (DynamoDB in moto server)."""

from __future__ import annotations

import pytest

from lambdas.gateway.cache import ResponseCache, cache_key, cacheable
from lambdas.gateway.errors import GatewayError
from lambdas.gateway.router import RetryPolicy, backoff, route
from lambdas.gateway.schema import ChatCompletionRequest
from tests.lambdas.gateway.fakes import (
    REJECTED,
    SERVER_ERROR,
    THROTTLED,
    TIMEOUT,
    FakeClock,
    ScriptedChat,
    answer,
)

REQUEST = ChatCompletionRequest.model_validate(
    {"model": "copy", "messages": [{"role": "user", "content": "Hi"}]}
)
POLICY = RetryPolicy(
    attempts_per_target=2, base_backoff_seconds=0.2, max_backoff_seconds=2.0, deadline_seconds=10
)


def run(*targets, clock=None, policy=POLICY):
    clock = clock or FakeClock()
    return route(targets, REQUEST, policy=policy, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)


def test_the_first_target_answers_without_fallback():
    routed = run(ScriptedChat("a", answer()), ScriptedChat("b", answer()))
    assert (routed.target, routed.fallbacks, routed.attempts) == ("a", 0, 1)


def test_a_throttled_target_is_retried_then_the_next_one_answers():
    first, second = ScriptedChat("a", THROTTLED), ScriptedChat("b", answer("from b"))
    routed = run(first, second)
    assert first.calls == 2
    assert (routed.target, routed.fallbacks, routed.result.text) == ("b", 1, "from b")


def test_a_retry_can_succeed_on_the_same_target():
    routed = run(ScriptedChat("a", SERVER_ERROR, answer("second try")))
    assert (routed.target, routed.attempts, routed.result.text) == ("a", 2, "second try")


def test_a_rejected_request_is_not_retried_nor_sent_elsewhere():
    second = ScriptedChat("b", answer())
    with pytest.raises(GatewayError) as caught:
        run(ScriptedChat("a", REJECTED), second)
    assert caught.value.status == 502
    assert second.calls == 0


@pytest.mark.parametrize(("error", "status"), [(THROTTLED, 429), (TIMEOUT, 504), (SERVER_ERROR, 502)])
def test_when_every_target_fails_the_status_says_why(error, status):
    with pytest.raises(GatewayError) as caught:
        run(ScriptedChat("a", error), ScriptedChat("b", error))
    assert caught.value.status == status


def test_the_deadline_stops_retries_and_fallbacks():
    clock = FakeClock()
    slow = ScriptedChat("a", TIMEOUT, clock=clock, cost=6.0)  # each attempt burns 6 s of a 10 s budget
    never = ScriptedChat("b", answer())
    with pytest.raises(GatewayError) as caught:
        run(slow, never, clock=clock)
    assert caught.value.status == 504
    assert never.calls == 0
    assert clock.now - 1000 <= POLICY.deadline_seconds + 6.0


def test_backoff_is_exponential_capped_and_jittered():
    assert backoff(POLICY, 0, lambda: 0.0) == pytest.approx(0.1)
    assert backoff(POLICY, 0, lambda: 1.0) == pytest.approx(0.2)
    assert backoff(POLICY, 10, lambda: 1.0) == pytest.approx(2.0)


def req(**changes) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "copy", "messages": [{"role": "user", "content": "Hi"}], **changes}
    )


def test_the_cache_key_ignores_what_does_not_change_the_answer():
    base = cache_key("copy", req(temperature=0), "3")
    assert base == cache_key("copy", req(temperature=0, user="someone"), "3")
    assert base == cache_key(
        "copy",
        ChatCompletionRequest.model_validate(
            {"messages": [{"content": "Hi  ", "role": "user"}], "temperature": 0, "model": "copy"}
        ),
        "3",
    )
    assert base != cache_key("copy", req(temperature=0), "4")  # a new guardrail version
    assert base != cache_key("other", req(temperature=0), "3")
    assert base != cache_key("copy", req(temperature=0, max_tokens=5), "3")


def test_only_deterministic_or_opted_in_requests_are_cached():
    assert cacheable(req(temperature=0))
    assert cacheable(req(temperature=0.7, cache=True))
    assert not cacheable(req(temperature=0.7))


def test_the_cache_round_trips_through_dynamodb(dynamodb, cache_table):
    now = [1_000_000.0]
    cache = ResponseCache(dynamodb, table=cache_table, ttl_seconds=60, clock=lambda: now[0])
    assert cache.get("k") is None
    cache.put("k", {"answer": 42})
    assert cache.get("k") == {"answer": 42}
    item = dynamodb.get_item(TableName=cache_table, Key={"pk": {"S": "k"}})["Item"]
    assert int(item["expires_at"]["N"]) == 1_000_060
    now[0] += 61
    assert cache.get("k") is None  # expired, even before DynamoDB's TTL sweeper deletes it


def test_a_cache_outage_is_a_miss_and_is_reported(moto_endpoint):
    import boto3
    from botocore.config import Config

    dead = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="t",
        aws_secret_access_key="t",
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.2),
    )
    seen = []
    cache = ResponseCache(dead, table="missing", ttl_seconds=60, on_error=lambda op, error: seen.append(op))
    assert cache.get("k") is None
    cache.put("k", {"x": 1})
    assert seen == ["get", "put"]


def test_a_throttled_answer_says_when_to_retry():
    """OpenAI clients honour Retry-After on a 429 (they would treat a 503 as an outage)."""
    with pytest.raises(GatewayError) as caught:
        run(ScriptedChat("a", THROTTLED), ScriptedChat("b", THROTTLED))
    assert caught.value.status == 429
    assert caught.value.type == "rate_limit_error"
    assert int(caught.value.headers["Retry-After"]) >= 1
