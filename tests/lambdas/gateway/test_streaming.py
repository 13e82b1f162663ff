"""Streaming (`stream: true`): the official openai SDK (and LangChain) against the locally served
handler, with each backend type faked at its API: Bedrock ConverseStream events, SageMaker
InvokeEndpointWithResponseStream payload parts cut mid-event, and a loopback OpenAI-compatible
server streaming chunked server-sent events. Calls are checked against botocore's API models."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import boto3
import openai
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from langchain_openai import ChatOpenAI

from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.local import serve
from lambdas.gateway.providers.http_pool import HttpPool
from lambdas.gateway.sse import events
from tests.lambdas.gateway.fakes import ModelServer, RecordingMetrics

SESSION = boto3.session.Session(region_name="us-east-1")
MODELS = {
    "bedrock-runtime": SESSION.client("bedrock-runtime").meta.service_model,
    "sagemaker-runtime": SESSION.client("sagemaker-runtime").meta.service_model,
}


def valid(service: str, operation: str, call: dict) -> dict:
    validate_parameters(call, MODELS[service].operation_model(operation).input_shape)
    return call


def converse_events(*texts: str, stop: str = "end_turn", usage=(11, 3)) -> list[dict]:
    out: list[dict] = [{"messageStart": {"role": "assistant"}}]
    out += [{"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": t}}} for t in texts]
    out += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop}},
        {
            "metadata": {
                "usage": {"inputTokens": usage[0], "outputTokens": usage[1]},
                "metrics": {"latencyMs": 5},
            }
        },
    ]
    return out


class FakeBedrock:
    def __init__(self) -> None:
        self.script: list[Any] = []  # per call: a list of events, or an exception to raise
        self.calls: list[dict] = []
        self.guardrail_checks: list[dict] = []
        self.block_output_containing: str | None = None

    def converse_stream(self, **call):
        self.calls.append(valid("bedrock-runtime", "ConverseStream", call))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step

        def stream():
            for item in step:
                if isinstance(item, Exception):
                    raise item
                yield item

        return {"stream": stream()}

    def apply_guardrail(self, **call):
        self.guardrail_checks.append(valid("bedrock-runtime", "ApplyGuardrail", call))
        text = call["content"][0]["text"]["text"]
        if (
            call["source"] == "OUTPUT"
            and self.block_output_containing
            and self.block_output_containing in text
        ):
            return {
                "action": "GUARDRAIL_INTERVENED",
                "outputs": [{"text": "Sorry, I cannot help with that."}],
            }
        return {"action": "NONE", "outputs": []}


class FakeSageMaker:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.payload = b""

    def invoke_endpoint_with_response_stream(self, **call):
        self.calls.append(valid("sagemaker-runtime", "InvokeEndpointWithResponseStream", call))
        data = self.payload
        # Payload parts cut anywhere, mid-event and mid-JSON, as the stream may deliver them.
        parts = [data[i : i + 7] for i in range(0, len(data), 7)]
        return {"Body": iter({"PayloadPart": {"Bytes": p}} for p in parts)}


def openai_sse(*texts: str, usage=(8, 2), tool_call: dict | None = None) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in texts]
    if tool_call:
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [tool_call]}}]})
    chunks.append(
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_call else "stop"}]}
    )
    chunks.append({"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def model_server():
    server = ModelServer({}, stream_payload=openai_sse("Hel", "lo"))
    yield server
    server.server.shutdown()


class Setup:
    def __init__(self, model_server: ModelServer) -> None:
        self.bedrock = FakeBedrock()
        self.sagemaker = FakeSageMaker()
        self.server = model_server
        self.metrics = RecordingMetrics()
        self.pool = HttpPool()

    def gateway(self, *targets: dict, guardrail: bool = False):
        settings: dict[str, Any] = {"chat": {"a": list(targets)}}
        if guardrail:
            settings["guardrail"] = {"identifier": "gr", "version": "1"}
        clients = {"bedrock-runtime": self.bedrock, "sagemaker-runtime": self.sagemaker}
        gateway = build_gateway(Settings.model_validate(settings), lambda service: clients[service])
        for providers in gateway.chat_routes.values():
            for provider in providers:
                inner = provider
                while hasattr(inner, "target"):
                    inner = inner.target
                if hasattr(inner, "pool"):
                    inner.pool = self.pool
        return gateway

    def target(self, kind: str) -> dict:
        return {
            "bedrock": {"kind": "bedrock", "model": "amazon.nova-lite-v1:0"},
            "sagemaker": {"kind": "sagemaker", "endpoint": "mistral"},
            "self_hosted": {"kind": "openai_http", "url": self.server.url, "model": "mistral"},
        }[kind]


@pytest.fixture
def setup(model_server):
    return Setup(model_server)


@pytest.fixture
def served(setup, monkeypatch):
    """The handler module with GATEWAY_CONFIG and a gateway of our fakes, served over HTTP."""
    monkeypatch.setenv("GATEWAY_CONFIG", json.dumps({"chat": {"a": [{"kind": "bedrock", "model": "m"}]}}))
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    server = serve(module.on_event)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    def use(gateway):
        module.gateway = lambda: gateway
        module.EmfMetrics = lambda: setup.metrics
        return openai.OpenAI(base_url=url, api_key="local", max_retries=0), url

    yield use
    server.shutdown()


def streamed_text(client, **body) -> tuple[str, list]:
    body.setdefault("model", "a")
    body.setdefault("messages", [{"role": "user", "content": "Say hello"}])
    chunks = list(client.chat.completions.create(stream=True, **body))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


@pytest.mark.parametrize("kind", ["bedrock", "sagemaker", "self_hosted"])
def test_every_backend_type_streams_chunks_then_done_to_the_openai_sdk(setup, served, kind):
    setup.bedrock.script = [converse_events("Hel", "lo")]
    setup.sagemaker.payload = openai_sse("Hel", "lo")
    client, _ = served(setup.gateway(setup.target(kind)))
    text, chunks = streamed_text(client, stream_options={"include_usage": True})
    assert text == "Hello"
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert chunks[-1].choices == []  # include_usage: the last chunk has the usage and no choices
    assert chunks[-1].usage.prompt_tokens in (11, 8)
    ((usage, _),) = setup.metrics.records
    assert usage.time_to_first_token_ms is not None
    assert usage.output_tokens in (3, 2)


def test_the_raw_stream_is_server_sent_events_ending_with_done(setup, served):
    setup.bedrock.script = [converse_events("Hi")]
    _, url = served(setup.gateway(setup.target("bedrock")))
    import urllib.request

    body = json.dumps({"model": "a", "messages": [{"role": "user", "content": "x"}], "stream": True}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test server
        assert response.headers["Content-Type"] == "text/event-stream"
        raw = response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    assert all(part.startswith(b"data: ") for part in raw.split(b"\n\n") if part)
    assert [e["object"] for e in events([raw])] == ["chat.completion.chunk"] * 3


def test_bedrock_streams_with_the_guardrail_in_sync_mode_and_an_intervention_ends_it(setup, served):
    setup.bedrock.script = [converse_events("Your card", " number is", stop="guardrail_intervened")]
    client, _ = served(setup.gateway(setup.target("bedrock"), guardrail=True))
    _text, chunks = streamed_text(client)
    assert setup.bedrock.calls[0]["guardrailConfig"] == {
        "guardrailIdentifier": "gr",
        "guardrailVersion": "1",
        "streamProcessingMode": "sync",
    }
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert setup.metrics.records[0][0].guardrail_intervened is True


@pytest.mark.parametrize("kind", ["sagemaker", "self_hosted"])
def test_a_guardrail_intervention_mid_stream_ends_it_with_the_blocked_message(setup, served, kind):
    """Other backends: ApplyGuardrail on the input, then on each window of output before it is
    released; the window with the blocked words is never sent."""
    safe = "All good here. " * 20  # over the first window: released after its check
    payload = openai_sse(safe, "then the SECRET part", " and more")
    setup.sagemaker.payload = payload
    setup.server.stream_payload = payload
    setup.bedrock.block_output_containing = "SECRET"
    client, _ = served(setup.gateway(setup.target(kind), guardrail=True))
    try:
        text, chunks = streamed_text(client)
    finally:
        setup.server.stream_payload = openai_sse("Hel", "lo")
    assert text == safe + "Sorry, I cannot help with that."
    assert "SECRET" not in text
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    sources = [c["source"] for c in setup.bedrock.guardrail_checks]
    assert sources[0] == "INPUT"
    assert sources.count("OUTPUT") >= 2
    assert setup.metrics.records[0][0].guardrail_intervened is True


def test_a_target_failing_before_its_first_token_falls_back(setup, served):
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "ConverseStream"
    )
    setup.bedrock.script = [throttled, throttled]
    setup.sagemaker.payload = openai_sse("From the fallback")
    client, _ = served(setup.gateway(setup.target("bedrock"), setup.target("sagemaker")))
    response = client.chat.completions.with_raw_response.create(
        model="a", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert response.headers["x-genai-fallbacks"] == "1"
    text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "From the fallback"


def test_a_failure_after_the_first_token_is_an_error_event_the_sdk_raises(setup, served):
    broken = ClientError({"Error": {"Code": "ModelStreamErrorException", "Message": "cut"}}, "ConverseStream")
    setup.bedrock.script = [[*converse_events("Hel")[:2], broken]]
    client, _ = served(setup.gateway(setup.target("bedrock")))
    stream = client.chat.completions.create(
        model="a", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="failed during the answer"):
        list(stream)


def test_a_refusal_before_the_stream_is_a_normal_error_response(setup, served):
    client, _ = served(setup.gateway(setup.target("sagemaker")))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="a", messages=[{"role": "user", "content": "x"}], stream=True, n=2
        )
    assert raised.value.code == "unsupported_parameter"
    assert raised.value.param == "n"


def test_self_hosted_streams_reuse_the_pooled_connection(setup, served):
    client, _ = served(setup.gateway(setup.target("self_hosted")))
    before = setup.server.connections
    for _ in range(3):
        assert streamed_text(client)[0] == "Hello"
    assert setup.server.connections - before == 1
    assert setup.server.bodies[-1]["stream"] is True
    assert setup.server.bodies[-1]["stream_options"] == {"include_usage": True}


def test_tool_calls_stream_as_openai_tool_call_deltas(setup, served):
    setup.bedrock.script = [
        [
            {"messageStart": {"role": "assistant"}},
            {
                "contentBlockStart": {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "t1", "name": "rate"}},
                }
            },
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"term": '}}}},
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '"12m"}'}}}},
            {"messageStop": {"stopReason": "tool_use"}},
        ]
    ]
    client, _ = served(setup.gateway(setup.target("bedrock")))
    tools = [{"type": "function", "function": {"name": "rate", "parameters": {"type": "object"}}}]
    chunks = list(
        client.chat.completions.create(
            model="a", messages=[{"role": "user", "content": "x"}], tools=tools, stream=True
        )
    )
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "t1"
    assert calls[0].function.name == "rate"
    assert "".join(c.function.arguments or "" for c in calls) == '{"term": "12m"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_cached_request_is_answered_whole_as_a_stream():
    from lambdas.gateway.service import Gateway
    from tests.lambdas.gateway.fakes import ScriptedChat, answer

    class MemoryCache:
        def __init__(self) -> None:
            self.items: dict = {}

        def get(self, key, deadline):
            return self.items.get(key)

        def put(self, key, value, deadline):
            self.items[key] = value

    chat = ScriptedChat("bedrock:m", answer("Cached answer."))
    gateway = Gateway(chat_routes={"a": [chat]}, embedding_routes={}, cache=MemoryCache())
    body = {"model": "a", "messages": [{"role": "user", "content": "x"}], "stream": True, "cache": True}
    for expected in ("miss", "hit"):
        chunks, headers = gateway.chat_stream(body, tenant="t", metrics=RecordingMetrics())
        documents = list(events(chunks))
        assert headers["x-genai-cache"] == expected
        assert documents[0]["choices"][0]["delta"]["content"] == "Cached answer."
        assert documents[-1]["choices"][0]["finish_reason"] == "stop"
    assert chat.calls == 1


def test_langchain_streams(setup, served):
    setup.bedrock.script = [converse_events("Spring ", "savings")]
    _, url = served(setup.gateway(setup.target("bedrock")))
    model = ChatOpenAI(base_url=url, api_key="local", model="a", max_retries=0, streaming=True)
    pieces = [chunk.content for chunk in model.stream("A slogan")]
    assert "".join(pieces) == "Spring savings"
    assert len([p for p in pieces if p]) == 2


@pytest.fixture(autouse=True)
def _restore_handler():
    yield
    os.environ.pop("GATEWAY_CONFIG", None)


def test_make_gateway_local_with_echo_models_streams_too(served):
    from lambdas.gateway.config import Settings
    from lambdas.gateway.echo import echo_gateway

    client, _ = served(
        echo_gateway(Settings.model_validate({"chat": {"a": [{"kind": "bedrock", "model": "m"}]}}))
    )
    text, chunks = streamed_text(client, messages=[{"role": "user", "content": "spring sale"}])
    assert text == "echo: spring sale"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3
