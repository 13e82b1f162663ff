"""Per-target limits: a bounded default max_tokens (the target's own, else the gateway's
max_output_tokens) and the system prompt merged into the first user turn for models whose chat
templates refuse a system role (Mistral 7B Instruct v0.1/v0.2: Mistral docs, "Tokenization",
https://docs.mistral.ai/cookbook/concept-deep-dive-tokenization-templates)."""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from pydantic import ValidationError

from lambdas.gateway.config import Settings, build_gateway
from tests.lambdas.gateway.fakes import RecordingMetrics
from tests.support.stubs import offline_client, stubbed

COMPLETION = {
    "choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2},
}


def body(payload: dict) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def sagemaker_gateway(**target):
    settings = Settings.model_validate(
        {"chat": {"llm": [{"kind": "sagemaker", "endpoint": "llm", **target}]}, "max_output_tokens": 2048}
    )
    runtime = offline_client("sagemaker-runtime")
    return build_gateway(settings, lambda service: runtime), runtime


def sent_body(target: dict, request: dict) -> dict:
    """The InvokeEndpoint body the gateway sends for `request` to a SageMaker target."""
    gateway, runtime = sagemaker_gateway(**target)
    with stubbed(runtime) as stub:
        stub.add_response("invoke_endpoint", {"Body": body(COMPLETION)})
        sent = {}
        runtime.meta.events.register(
            "provide-client-params.sagemaker-runtime.InvokeEndpoint",
            lambda params, **_: sent.update(json.loads(params["Body"])),
        )
        gateway.chat({"model": "llm", **request}, tenant="t", metrics=RecordingMetrics())
    return sent


USER = [{"role": "user", "content": "Summarise the contract."}]


@pytest.mark.parametrize(
    ("target", "request_tokens", "sent"),
    [
        ({"max_tokens": 512}, {}, 512),  # no max_tokens in the request: the target's default
        ({"max_tokens": 512}, {"max_tokens": 1500}, 512),  # above the target's limit: capped
        ({"max_tokens": 512}, {"max_completion_tokens": 100}, 100),  # below: kept
        ({}, {}, 2048),  # no target limit: the gateway's max_output_tokens
    ],
)
def test_every_request_reaches_the_model_with_a_bounded_max_tokens(target, request_tokens, sent):
    assert sent_body(target, {"messages": USER, **request_tokens})["max_tokens"] == sent


def test_bedrock_targets_get_the_bound_as_max_tokens_too():
    settings = Settings.model_validate(
        {"chat": {"llm": [{"kind": "bedrock", "model": "amazon.nova-micro-v1:0", "max_tokens": 300}]}}
    )
    runtime = offline_client("bedrock-runtime")
    gateway = build_gateway(settings, lambda service: runtime)
    converse = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6},
        "metrics": {"latencyMs": 10},
    }
    expected = {
        "modelId": "amazon.nova-micro-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Summarise the contract."}]}],
        "inferenceConfig": {"temperature": 1.0, "maxTokens": 300},
    }
    with stubbed(runtime) as stub:
        stub.add_response("converse", converse, expected)
        gateway.chat({"model": "llm", "messages": USER}, tenant="t", metrics=RecordingMetrics())


def test_merge_puts_the_system_text_in_the_first_user_turn_and_sends_no_system_message():
    messages = [
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "Bye"},
    ]
    sent = sent_body({"system_prompt": "merge"}, {"messages": messages})
    assert sent["messages"] == [
        {"role": "user", "content": "Answer in English.\n\nBe brief.\n\nHi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]


def test_keep_sends_the_system_message_as_it_came():
    messages = [{"role": "system", "content": "Answer in English."}, *USER]
    assert sent_body({}, {"messages": messages})["messages"] == messages


def test_a_target_limit_above_the_gateway_s_is_refused_at_cold_start():
    with pytest.raises(ValidationError, match=r"max_tokens of llm\[0\] is above max_output_tokens \(1024\)"):
        Settings.model_validate(
            {
                "chat": {"llm": [{"kind": "sagemaker", "endpoint": "e", "max_tokens": 4096}]},
                "max_output_tokens": 1024,
            }
        )
