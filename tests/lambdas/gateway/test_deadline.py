"""One deadline per request, from entry: every AWS call checks it and gets only the time left.

Slow AWS services are fake clients on a fake clock: a call takes its latency, or its client's read
timeout when that is shorter (and then raises botocore's ReadTimeoutError, as a real client does).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import ClassVar

import pytest
from botocore.exceptions import ReadTimeoutError

from lambdas.gateway.cache import CACHE_TIMEOUT_SECONDS, ResponseCache
from lambdas.gateway.deadline import (
    MIN_CALL_SECONDS,
    RESPONSE_MARGIN_SECONDS,
    Deadline,
    TimedClients,
    timeout_step,
)
from lambdas.gateway.errors import GatewayError
from lambdas.gateway.local import event_for
from lambdas.gateway.providers.bedrock import BedrockChat, BedrockEmbeddings
from lambdas.gateway.retrieval import Retriever
from lambdas.gateway.router import RetryPolicy
from lambdas.gateway.service import Gateway
from tests.lambdas.gateway.fakes import FakeClock, RecordingMetrics, ScriptedChat, answer

BUDGET = 10.0
CHAT = {
    "model": "copy",
    "messages": [{"role": "user", "content": "When is my bill due?"}],
    "temperature": 0,
    "knowledge_base": "faq",
}


class Calls:
    """What every fake client saw: (service, operation, its read timeout, time left at the call)."""

    def __init__(self, clock: FakeClock, deadline: Deadline) -> None:
        self.clock = clock
        self.deadline = deadline
        self.seen: list[tuple[str, str, float, float]] = []


class SlowClient:
    """A fake boto3 client of one service whose calls take `latency` seconds of the fake clock."""

    RESPONSES: ClassVar[dict[str, dict]] = {
        "get_item": {},
        "put_item": {},
        "retrieve": {
            "retrievalResults": [
                {"content": {"text": "Bills are due on the 5th."}, "location": {"type": "S3"}}
            ]
        },
        "converse": {
            "output": {"message": {"role": "assistant", "content": [{"text": "On the 5th [1]."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 10, "outputTokens": 4},
        },
        "apply_guardrail": {"action": "NONE", "outputs": []},
    }

    def __init__(self, service: str, timeout: float, latency: float, calls: Calls) -> None:
        self.service, self.timeout, self.latency, self.calls = service, timeout, latency, calls

    def __getattr__(self, operation: str):
        def call(**kwargs):
            calls = self.calls
            calls.seen.append((self.service, operation, self.timeout, calls.deadline.remaining()))
            if self.latency > self.timeout:
                calls.clock.now += self.timeout
                raise ReadTimeoutError(endpoint_url=f"https://{self.service}.us-east-1.amazonaws.com")
            calls.clock.now += self.latency
            if operation == "invoke_model":
                import io

                from botocore.response import StreamingBody

                raw = json.dumps({"embedding": [0.1, 0.2], "inputTextTokenCount": 2}).encode()
                return {"body": StreamingBody(io.BytesIO(raw), len(raw))}
            return self.RESPONSES[operation]

        return call


def timed(service: str, latency: float, calls: Calls) -> TimedClients:
    return TimedClients(lambda timeout: SlowClient(service, timeout, latency, calls))


def gateway_with(
    calls: Calls, clock: FakeClock, *, cache: float, retrieval: float, model: float, check: float
):
    return Gateway(
        chat_routes={
            "copy": [BedrockChat(timed("bedrock-runtime", model, calls), model_id="m", guardrail=("g", "1"))]
        },
        embedding_routes={},
        policy=RetryPolicy(attempts_per_target=2, deadline_seconds=BUDGET),
        cache=ResponseCache(timed("dynamodb", cache, calls), table="t", ttl_seconds=60),
        guardrail=("g", "1"),
        guardrail_client=timed("bedrock-runtime", check, calls),
        knowledge_bases={"faq": "KB1"},
        retriever=Retriever(timed("bedrock-agent-runtime", retrieval, calls)),
        clock=clock,
    )


def test_the_deadline_is_the_profile_s_or_the_lambda_time_left_whichever_is_smaller():
    class Context:
        def __init__(self, ms: int) -> None:
            self.ms = ms

        def get_remaining_time_in_millis(self) -> int:
            return self.ms

    clock = FakeClock()
    assert Deadline.start(25, context=Context(60_000), clock=clock).remaining() == 25
    assert Deadline.start(25, context=Context(10_000), clock=clock).remaining() == pytest.approx(
        10 - RESPONSE_MARGIN_SECONDS
    )
    assert Deadline.start(25, context=None, clock=clock).remaining() == 25


@pytest.mark.parametrize("left", [0.05, 0.09, 0.1, 0.2, 0.25, 0.3, 0.99, 1.0, 1.9, 2.0, 2.5, 9.99, 24.7, 25])
def test_a_call_s_timeout_never_exceeds_the_time_left_and_wastes_little(left):
    step = timeout_step(left)
    assert MIN_CALL_SECONDS <= step <= left
    assert left - step < (1.0 if left >= 2 else 0.25)


def test_a_slow_cache_and_a_slow_retrieval_cannot_push_past_the_deadline():
    """Before: the cache lookup and the retrieval ran outside the router's deadline with the SDK's
    fixed 25 s read timeout, so these two alone took 50 s of a 10 s budget."""
    clock = FakeClock()
    deadline = Deadline.start(BUDGET, clock=clock)
    calls = Calls(clock, deadline)
    service = gateway_with(calls, clock, cache=30, retrieval=30, model=1, check=0.1)
    with pytest.raises(GatewayError) as caught:
        service.chat(CHAT, tenant="t", metrics=RecordingMetrics(), deadline=deadline)
    assert caught.value.status == 504
    assert clock.now - 1000 <= BUDGET
    (cache, retrieval) = calls.seen
    assert cache[:3] == ("dynamodb", "get_item", CACHE_TIMEOUT_SECONDS)  # a slow cache is a quick miss
    assert retrieval[:2] == ("bedrock-agent-runtime", "retrieve")
    assert retrieval[2] <= retrieval[3] == pytest.approx(BUDGET - CACHE_TIMEOUT_SECONDS)


def test_each_call_gets_only_the_time_left():
    clock = FakeClock()
    deadline = Deadline.start(BUDGET, clock=clock)
    calls = Calls(clock, deadline)
    service = gateway_with(calls, clock, cache=0.3, retrieval=2.5, model=3.2, check=1.1)
    response, _headers = service.chat(CHAT, tenant="t", metrics=RecordingMetrics(), deadline=deadline)
    assert response["choices"][0]["message"]["content"] == "On the 5th [1]."
    assert [(s, op) for s, op, _, _ in calls.seen] == [
        ("dynamodb", "get_item"),
        ("bedrock-agent-runtime", "retrieve"),
        ("bedrock-runtime", "converse"),
        ("bedrock-runtime", "apply_guardrail"),
        ("dynamodb", "put_item"),
    ]
    for _, _, timeout, left in calls.seen:
        assert timeout <= left
    uncapped = [timeout for service_name, _, timeout, _ in calls.seen if service_name != "dynamodb"]
    assert uncapped == sorted(uncapped, reverse=True)
    assert len(set(uncapped)) == len(uncapped)
    assert uncapped == [9.0, 7.0, 4.0]  # 9.7 s, 7.2 s and 4.0 s were left


def test_a_model_that_answers_after_the_deadline_is_cut_off_at_it():
    clock = FakeClock()
    deadline = Deadline.start(BUDGET, clock=clock)
    calls = Calls(clock, deadline)
    service = gateway_with(calls, clock, cache=0.1, retrieval=0.5, model=60, check=0.1)
    with pytest.raises(GatewayError) as caught:
        service.chat(CHAT, tenant="t", metrics=RecordingMetrics(), deadline=deadline)
    assert (caught.value.status, caught.value.code) in {(504, "deadline_exceeded"), (504, "upstream_timeout")}
    assert clock.now - 1000 <= BUDGET
    converse = [timeout for _, op, timeout, _ in calls.seen if op == "converse"]
    assert len(converse) == 2
    assert converse[1] < converse[0]


def test_many_embedding_inputs_stop_at_the_deadline():
    """Titan takes one text per call: 128 inputs of 0.5 s each would take 64 s."""
    clock = FakeClock()
    deadline = Deadline.start(BUDGET, clock=clock)
    calls = Calls(clock, deadline)
    service = Gateway(
        chat_routes={},
        embedding_routes={"embed": BedrockEmbeddings(timed("bedrock-runtime", 0.5, calls), model_id="e")},
        clock=clock,
    )
    with pytest.raises(GatewayError) as caught:
        service.embeddings(
            {"model": "embed", "input": ["text"] * 128},
            tenant="t",
            metrics=RecordingMetrics(),
            deadline=deadline,
        )
    assert (caught.value.status, caught.value.code) == (504, "deadline_exceeded")
    body = caught.value.body()["error"]
    assert body["type"] == "timeout"
    assert "deadline exceeded" in body["message"]
    assert clock.now - 1000 <= BUDGET
    assert len(calls.seen) == BUDGET / 0.5
    assert [t for _, _, t, _ in calls.seen] == sorted((t for _, _, t, _ in calls.seen), reverse=True)


@pytest.fixture
def handler_module():
    previous = os.environ.get("GATEWAY_CONFIG")
    os.environ["GATEWAY_CONFIG"] = json.dumps(
        {"chat": {"copy": [{"kind": "bedrock", "model": "amazon.nova-lite-v1:0"}]}, "deadline_seconds": 25}
    )
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    module.gateway = lambda: Gateway(
        chat_routes={"copy": [ScriptedChat("bedrock:m", answer())]}, embedding_routes={}
    )
    yield module
    if previous is None:
        os.environ.pop("GATEWAY_CONFIG", None)
    else:
        os.environ["GATEWAY_CONFIG"] = previous


def test_the_handler_s_clients_take_the_step_as_their_timeouts(handler_module, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # Lambda sets AWS_REGION; no call is made
    handler = handler_module
    clock = FakeClock()
    client = handler.aws_client("dynamodb").within(Deadline.start(3.6, clock=clock), "test")
    assert (client.meta.config.read_timeout, client.meta.config.connect_timeout) == (3.0, 2.0)
    assert client.meta.config.retries["total_max_attempts"] == 1  # botocore renames max_attempts
    short = handler.aws_client("dynamodb").within(Deadline.start(0.6, clock=clock), "test")
    assert (short.meta.config.read_timeout, short.meta.config.connect_timeout) == (0.5, 0.5)
    assert handler.aws_client("dynamodb").within(Deadline.start(3.2, clock=clock), "test") is client


def test_the_handler_answers_a_clean_openai_504_when_the_invocation_has_no_time_left(handler_module):
    class AlmostOut:
        def get_remaining_time_in_millis(self) -> int:
            return 300  # less than the margin the answer needs

    body = json.dumps({"model": "copy", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    result = handler_module.on_event(event_for("POST", "/v1/chat/completions", {}, body), AlmostOut())
    assert result["statusCode"] == 504
    error = json.loads(result["body"])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("timeout", "deadline_exceeded")
    assert "deadline exceeded" in error["message"]


def test_a_capped_deadline_ends_at_the_cap_or_the_request_s_deadline_whichever_is_first():

    clock = FakeClock(now=100.0)
    deadline = Deadline.start(10, clock=clock)
    assert deadline.capped(1.0).remaining() == 1.0
    assert deadline.capped(30.0) is deadline  # the request's own deadline comes first
    clock.now += 9.5
    assert deadline.capped(1.0).remaining() == 0.5
