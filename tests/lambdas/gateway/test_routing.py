"""Routing by request (lambdas/gateway/routing.py): a route sends each request to its small or large
alias by what the request carries, says which and why in x-genai-route, and counts it; each alias
keeps its own fallback."""

from __future__ import annotations

import pytest

from lambdas.gateway.config import Settings
from lambdas.gateway.routing import ROUTE_HEADER, Route
from lambdas.gateway.service import Gateway
from tests.lambdas.gateway.fakes import THROTTLED, RecordingMetrics, ScriptedChat, answer

ROUTE = Route(small="drafts", large="copywriter", prompt_tokens_over=100, tools=True, images=True)
TOOL = {"type": "function", "function": {"name": "rate", "parameters": {"type": "object"}}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def gateway() -> tuple[Gateway, dict[str, ScriptedChat]]:
    targets = {
        "small": ScriptedChat("bedrock:small", answer("small")),
        "large": ScriptedChat("bedrock:large", THROTTLED),
        "large-fallback": ScriptedChat("bedrock:large-2", answer("large")),
    }
    gw = Gateway(
        chat_routes={
            "drafts": [targets["small"]],
            "copywriter": [targets["large"], targets["large-fallback"]],
        },
        embedding_routes={},
        routes={"assistant": ROUTE},
    )
    return gw, targets


@pytest.mark.parametrize(
    ("extra", "content", "chosen", "why"),
    [
        ({}, "short question", "drafts", "no condition of the large alias holds"),
        ({}, "x" * 404, "copywriter", "prompt of about 101 tokens > 100"),
        ({}, "長" * 101, "copywriter", "prompt of about 101 tokens > 100"),  # a token a character
        ({"tools": [TOOL]}, "short", "copywriter", "1 tool offered"),
        ({}, [{"type": "text", "text": "what is it?"}, IMAGE], "copywriter", "an image"),
    ],
)
def test_each_condition_sends_the_request_to_the_large_alias(extra, content, chosen, why):
    gw, targets = gateway()
    metrics = RecordingMetrics()
    body = {"model": "assistant", "messages": [{"role": "user", "content": content}], **extra}
    response, headers = gw.chat(body, tenant="t", metrics=metrics)
    assert headers[ROUTE_HEADER] == f"assistant -> {chosen}: {why}"
    assert metrics.routes == [("assistant", chosen == "copywriter")]
    assert response["model"] == chosen
    if chosen == "copywriter":  # its own fallback still applies
        assert (headers["x-genai-target"], headers["x-genai-fallbacks"]) == ("bedrock:large-2", "1")
        assert targets["small"].calls == 0
    else:
        assert headers["x-genai-target"] == "bedrock:small"


def test_a_route_is_listed_as_a_model():
    gw, _ = gateway()
    assert "assistant" in {m["id"] for m in gw.list_models()["data"]}
    assert gw.get_model("assistant")["id"] == "assistant"


def test_a_streamed_request_is_routed_too():
    class Streaming(ScriptedChat):
        def stream(self, request, *, deadline):
            from lambdas.gateway.providers.base import Delta

            yield Delta(text="small", finish_reason="stop", input_tokens=1, output_tokens=1)

    gw, _ = gateway()
    gw.chat_routes = {**gw.chat_routes, "drafts": [Streaming("bedrock:small", answer())]}
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks, headers = gw.chat_stream(body, tenant="t", metrics=RecordingMetrics())
    assert b"small" in b"".join(chunks)
    assert headers[ROUTE_HEADER].startswith("assistant -> drafts")


def test_the_configuration_refuses_a_route_to_an_unknown_alias():
    with pytest.raises(ValueError, match=r"routes name aliases that are not chat aliases: r\.large"):
        Settings.model_validate(
            {
                "chat": {"a": [{"kind": "bedrock", "model": "m"}]},
                "routes": {"r": {"small": "a", "large": "b"}},
            }
        )


def test_a_request_the_chosen_alias_refuses_is_not_counted_as_routed():
    from lambdas.gateway.errors import GatewayError

    gw, _ = gateway()
    metrics = RecordingMetrics()
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**9}
    with pytest.raises(GatewayError) as refused:
        gw.chat(body, tenant="t", metrics=metrics)
    assert refused.value.param == "max_tokens"
    assert metrics.routes == []
