"""The gateway service: aliases, limits, cache hit/miss/outage, fallback headers, guardrail on each
backend, retrieval with citations and grounding, metrics."""

from __future__ import annotations

import pytest

from lambdas.gateway.cache import ResponseCache
from lambdas.gateway.errors import GatewayError, ProviderError
from lambdas.gateway.retrieval import Passage
from lambdas.gateway.router import RetryPolicy
from lambdas.gateway.service import Gateway, Limits, Price
from tests.lambdas.gateway.fakes import (
    THROTTLED,
    FakeClock,
    FixedEmbeddings,
    RecordingMetrics,
    ScriptedChat,
    answer,
)

CHAT = {"model": "copy", "messages": [{"role": "user", "content": "Write a slogan"}], "temperature": 0}


def gateway(*targets, **kwargs) -> Gateway:
    clock = kwargs.pop("clock", FakeClock())
    return Gateway(
        chat_routes={"copy": list(targets) or [ScriptedChat("bedrock:m", answer())]},
        embedding_routes={"embed": FixedEmbeddings()},
        policy=RetryPolicy(attempts_per_target=1, deadline_seconds=10),
        clock=clock,
        **kwargs,
    )


def test_models_lists_every_alias():
    assert [m["id"] for m in gateway().list_models()["data"]] == ["copy", "embed"]


def test_a_chat_answer_is_an_openai_completion_with_usage_and_the_target_header():
    metrics = RecordingMetrics()
    response, headers = gateway(prices={"bedrock:m": Price(1.0, 2.0)}).chat(
        CHAT, tenant="team-a", metrics=metrics
    )
    assert response["object"] == "chat.completion"
    assert response["choices"][0]["message"] == {"role": "assistant", "content": "Hello!"}
    assert response["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert headers["x-genai-target"] == "bedrock:m"
    ((usage, tenant),) = metrics.records
    assert (usage.alias, usage.target, tenant) == ("copy", "bedrock:m", "team-a")
    assert usage.cost_usd == pytest.approx((12 * 1.0 + 3 * 2.0) / 1000)


def test_a_fallback_is_visible_in_headers_and_metrics():
    metrics = RecordingMetrics()
    _, headers = gateway(ScriptedChat("bedrock:a", THROTTLED), ScriptedChat("sagemaker:b", answer())).chat(
        CHAT, tenant="t", metrics=metrics
    )
    assert headers == {"x-genai-target": "sagemaker:b", "x-genai-fallbacks": "1"}  # no cache configured
    assert metrics.records[0][0].fallbacks == 1


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
        ({"model": "copy"}, 400, "messages"),
        ({"model": "copy", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role"),
        (
            {"model": "copy", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            400,
            "temperature",
        ),
        ({"model": "copy", "messages": [{"role": "user", "content": "x" * 200_000}]}, 400, "messages"),
        (
            {"model": "copy", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100_000},
            400,
            "max_tokens",
        ),
        (
            {"model": "copy", "messages": [{"role": "user", "content": "x"}], "stream_options": {"x": 1}},
            400,
            "stream_options.x",
        ),
        (["not", "an", "object"], 400, None),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(body, status, param):
    with pytest.raises(GatewayError) as caught:
        gateway().chat(body, tenant="t", metrics=RecordingMetrics())
    assert caught.value.status == status
    assert caught.value.param == param
    assert caught.value.body()["error"]["message"]


def test_a_cache_hit_skips_the_model(dynamodb, cache_table):
    target = ScriptedChat("bedrock:m", answer("cached answer"))
    service = gateway(target, cache=ResponseCache(dynamodb, table=cache_table, ttl_seconds=60))
    first, first_headers = service.chat(CHAT, tenant="t", metrics=RecordingMetrics())
    metrics = RecordingMetrics()
    second, second_headers = service.chat(CHAT, tenant="t", metrics=metrics)
    assert target.calls == 1
    assert (first_headers["x-genai-cache"], second_headers["x-genai-cache"]) == ("miss", "hit")
    # The same answer under an id of its own (a rating names the answer its tenant got).
    assert second == {**first, "id": second["id"]}
    assert second["id"] != first["id"]
    assert metrics.records[0][0].cache_hit is True


def test_non_deterministic_requests_bypass_the_cache(dynamodb, cache_table):
    target = ScriptedChat("bedrock:m", answer())
    service = gateway(target, cache=ResponseCache(dynamodb, table=cache_table, ttl_seconds=60))
    for _ in range(2):
        _, headers = service.chat({**CHAT, "temperature": 0.8}, tenant="t", metrics=RecordingMetrics())
        assert "x-genai-cache" not in headers
    assert target.calls == 2


def test_a_cache_outage_does_not_fail_the_request():
    class Broken:
        def get_item(self, **kwargs):
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://dynamodb")

        put_item = get_item

    response, headers = gateway(cache=ResponseCache(Broken(), table="t", ttl_seconds=60)).chat(
        CHAT, tenant="t", metrics=RecordingMetrics()
    )
    assert response["choices"][0]["message"]["content"] == "Hello!"
    assert headers["x-genai-cache"] == "miss"


def test_guardrail_interventions_are_answers_and_are_not_cached(dynamodb, cache_table):
    target = ScriptedChat("sagemaker:m", answer("Blocked by policy.", intervened=True))
    service = gateway(target, cache=ResponseCache(dynamodb, table=cache_table, ttl_seconds=60))
    metrics = RecordingMetrics()
    response, _ = service.chat(CHAT, tenant="t", metrics=metrics)
    assert response["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Blocked by policy."},
        "finish_reason": "content_filter",
    }
    assert metrics.records[0][0].guardrail_intervened is True
    service.chat(CHAT, tenant="t", metrics=RecordingMetrics())
    assert target.calls == 2


class FakeRetriever:
    def __init__(self):
        self.queries = []

    def retrieve(self, knowledge_base_id, query, deadline=None):
        self.queries.append((knowledge_base_id, query))
        return [Passage(text="Bills are due on the 5th.", source="s3://docs/billing.pdf")]


class FakeGuardrailClient:
    def __init__(self, intervene: bool):
        self.intervene = intervene
        self.calls = []

    def apply_guardrail(self, **kwargs):
        self.calls.append(kwargs)
        if self.intervene:
            return {"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "I can't answer that reliably."}]}
        return {"action": "NONE", "outputs": []}


def test_a_knowledge_base_grounds_the_prompt_and_the_answer_cites_it():
    target = ScriptedChat("bedrock:m", answer("They are due on the 5th [1]."))
    retriever = FakeRetriever()
    guard = FakeGuardrailClient(intervene=False)
    service = gateway(
        target,
        knowledge_bases={"faq": "KB123"},
        retriever=retriever,
        guardrail=("g", "1"),
        guardrail_client=guard,
    )
    body = {
        **CHAT,
        "messages": [{"role": "user", "content": "When is my bill due?"}],
        "knowledge_base": "faq",
    }
    response, _ = service.chat(body, tenant="t", metrics=RecordingMetrics())
    assert retriever.queries == [("KB123", "When is my bill due?")]
    system = target.requests[0].messages[0]
    assert system.role == "system"
    assert "[1] Bills are due on the 5th." in system.text
    assert response["citations"] == [{"index": 1, "source": "s3://docs/billing.pdf"}]
    qualifiers = [c["text"]["qualifiers"] for c in guard.calls[0]["content"]]
    assert qualifiers == [["grounding_source"], ["query"], ["guard_content"]]


def test_an_ungrounded_answer_is_replaced_by_the_guardrail_message():
    service = gateway(
        ScriptedChat("bedrock:m", answer("Probably the 20th.")),
        knowledge_bases={"faq": "KB123"},
        retriever=FakeRetriever(),
        guardrail=("g", "1"),
        guardrail_client=FakeGuardrailClient(intervene=True),
    )
    body = {**CHAT, "knowledge_base": "faq"}
    response, _ = service.chat(body, tenant="t", metrics=RecordingMetrics())
    assert response["choices"][0]["message"]["content"] == "I can't answer that reliably."
    assert response["choices"][0]["finish_reason"] == "content_filter"


def test_an_unknown_knowledge_base_is_a_400():
    with pytest.raises(GatewayError) as caught:
        gateway(knowledge_bases={"faq": "KB1"}, retriever=FakeRetriever()).chat(
            {**CHAT, "knowledge_base": "hr"}, tenant="t", metrics=RecordingMetrics()
        )
    assert (caught.value.status, caught.value.param) == (400, "knowledge_base")
    assert "known: faq" in caught.value.message


def test_embeddings_return_one_vector_per_input():
    response, headers = gateway().embeddings(
        {"model": "embed", "input": ["a", "bb"], "dimensions": 3}, tenant="t", metrics=RecordingMetrics()
    )
    assert [d["embedding"] for d in response["data"]] == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    assert response["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert headers["x-genai-target"].startswith("bedrock:")


def test_embedding_limits_and_unknown_aliases():
    service = gateway(limits=Limits(max_input_tokens=10))
    with pytest.raises(GatewayError, match="input is too long"):
        service.embeddings({"model": "embed", "input": "x" * 100}, tenant="t", metrics=RecordingMetrics())
    with pytest.raises(GatewayError) as caught:
        service.embeddings({"model": "copy", "input": "x"}, tenant="t", metrics=RecordingMetrics())
    assert caught.value.status == 404


def test_embeddings_can_be_returned_as_base64_float32():
    import base64
    import struct

    response, _ = gateway().embeddings(
        {"model": "embed", "input": "abc", "dimensions": 2, "encoding_format": "base64"},
        tenant="t",
        metrics=RecordingMetrics(),
    )
    raw = base64.b64decode(response["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (3.0, 3.0)


def test_an_embedding_input_the_model_refuses_is_the_callers_400_with_its_message():
    class Refusing:
        name = "bedrock:amazon.titan-embed-text-v2:0"

        def embed(self, inputs, *, dimensions, deadline):
            raise ProviderError(
                "t: ValidationException", retryable=False, client_message="Too many input tokens."
            )

    service = Gateway(
        chat_routes={}, embedding_routes={"embed": Refusing()}, policy=RetryPolicy(), clock=FakeClock()
    )
    with pytest.raises(GatewayError) as caught:
        service.embeddings({"model": "embed", "input": "x"}, tenant="t", metrics=RecordingMetrics())
    assert caught.value.status == 400
    assert "Too many input tokens." in caught.value.message


def test_a_temperature_above_bedrocks_range_is_refused_not_clamped():
    """OpenAI takes 0-2, Converse 0-1: 1.5 used to reach Bedrock as 1.0 without a word."""
    with pytest.raises(GatewayError) as caught:
        gateway().chat({**CHAT, "temperature": 1.5}, tenant="t", metrics=RecordingMetrics())
    assert (caught.value.status, caught.value.param) == (400, "temperature")
    assert "'copy' routes to Bedrock models" in caught.value.message
    # Other backends take OpenAI's range.
    response, _ = gateway(ScriptedChat("sagemaker:e", answer())).chat(
        {**CHAT, "temperature": 1.5}, tenant="t", metrics=RecordingMetrics()
    )
    assert response["object"] == "chat.completion"
