"""A model container's error on SageMaker (InvokeEndpoint's ModelError, HTTP 424, with the
container's own status as OriginalStatusCode) and on a self-hosted server: 5xx falls back to the
next target, 4xx is the caller's error and comes back as a 400 with the model's message.

ModelError: SageMaker Runtime API Reference, InvokeEndpoint, "Errors"
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html) and
https://docs.aws.amazon.com/botocore/latest/reference/services/sagemaker-runtime/client/exceptions/ModelError.html;
botocore adds the modeled fields (OriginalStatusCode, OriginalMessage) at the top of the error
response, which is where Stubber's `modeled_fields` puts them."""

from __future__ import annotations

import json

import pytest

from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.deadline import Deadline
from lambdas.gateway.errors import GatewayError, ProviderError
from lambdas.gateway.providers.openai_format import OpenAIHttpChat, SageMakerChat
from lambdas.gateway.router import RetryPolicy, route
from lambdas.gateway.schema import ChatCompletionRequest
from tests.lambdas.gateway.fakes import FakeClock, RecordingMetrics, ScriptedChat, ScriptedPool, answer
from tests.support.stubs import offline_client, stubbed

REQUEST = ChatCompletionRequest.model_validate(
    {"model": "support", "messages": [{"role": "user", "content": "Where is my bill?"}]}
)
POLICY = RetryPolicy(attempts_per_target=2, deadline_seconds=10)
DEADLINE = Deadline(expires_at=float("inf"), budget=5.0)  # never runs out
VLLM_400 = json.dumps(
    {
        "object": "error",
        "message": "This model's maximum context length is 8192 tokens.",
        "type": "BadRequestError",
        "code": 400,
    }
)


def model_error(stub, original_status: int | None, original_message: str = "boom") -> None:
    fields = {"OriginalMessage": original_message, "LogStreamArn": "arn:aws:logs:us-east-1:1:log-group:x"}
    if original_status is not None:
        fields["OriginalStatusCode"] = original_status
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received server error ({original_status}) from primary with message {original_message}",
        http_status_code=424,
        modeled_fields=fields,
    )


def run(*targets):
    clock = FakeClock()
    return route(targets, REQUEST, policy=POLICY, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)


@pytest.mark.parametrize("original", [500, 503, None])
def test_a_container_5xx_is_retried_then_the_next_target_answers(original):
    runtime = offline_client("sagemaker-runtime")
    bedrock = ScriptedChat("bedrock:amazon.nova-micro-v1:0", answer("From Bedrock"))
    with stubbed(runtime) as stub:
        model_error(stub, original)
        model_error(stub, original)
        routed = run(SageMakerChat(runtime, endpoint="support-llm"), bedrock)
    assert (routed.target, routed.fallbacks, routed.attempts) == ("bedrock:amazon.nova-micro-v1:0", 1, 3)
    assert routed.result.text == "From Bedrock"


def test_a_container_4xx_is_the_caller_s_error_with_the_model_s_message_and_no_fallback():
    runtime = offline_client("sagemaker-runtime")
    bedrock = ScriptedChat("bedrock:amazon.nova-micro-v1:0", answer())
    with stubbed(runtime) as stub:
        model_error(stub, 400, VLLM_400)
        with pytest.raises(GatewayError) as caught:
            run(SageMakerChat(runtime, endpoint="support-llm"), bedrock)
    assert bedrock.calls == 0
    assert caught.value.status == 400
    assert caught.value.body()["error"] == {
        "message": "the model refused the request: This model's maximum context length is 8192 tokens.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_rejected_request",
    }


@pytest.mark.parametrize(("original", "throttled", "timeout"), [(429, True, False), (408, False, True)])
def test_a_busy_or_slow_container_is_retryable(original, throttled, timeout):
    runtime = offline_client("sagemaker-runtime")
    with stubbed(runtime) as stub:
        model_error(stub, original)
        with pytest.raises(ProviderError) as caught:
            SageMakerChat(runtime, endpoint="e").chat(REQUEST, deadline=DEADLINE)
    assert (caught.value.retryable, caught.value.throttled, caught.value.timeout) == (
        True,
        throttled,
        timeout,
    )


def test_through_the_gateway_a_sagemaker_container_error_answers_from_bedrock():
    """The whole path as deployed: GATEWAY_CONFIG -> build_gateway -> Gateway.chat, clients stubbed."""
    settings = Settings.model_validate(
        {
            "chat": {
                "support": [
                    {"kind": "sagemaker", "endpoint": "support-llm"},
                    {"kind": "bedrock", "model": "amazon.nova-micro-v1:0"},
                ]
            },
            "attempts_per_target": 1,
        }
    )
    clients = {name: offline_client(name) for name in ("sagemaker-runtime", "bedrock-runtime")}
    gateway = build_gateway(settings, clients.__getitem__)
    converse = {
        "output": {"message": {"role": "assistant", "content": [{"text": "From Bedrock"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
        "metrics": {"latencyMs": 10},
    }
    with stubbed(clients["sagemaker-runtime"]) as sagemaker, stubbed(clients["bedrock-runtime"]) as bedrock:
        model_error(sagemaker, 500, '{"error": "CUDA out of memory"}')
        bedrock.add_response("converse", converse)
        body, headers = gateway.chat(REQUEST.model_dump(), tenant="t", metrics=RecordingMetrics())
    assert body["choices"][0]["message"]["content"] == "From Bedrock"
    assert headers["x-genai-target"] == "bedrock:amazon.nova-micro-v1:0"
    assert headers["x-genai-fallbacks"] == "1"


@pytest.mark.parametrize(
    ("status", "body", "retryable", "client_message"),
    [
        (400, VLLM_400, False, "This model's maximum context length is 8192 tokens."),
        (
            422,
            '{"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096"}',
            False,
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096",
        ),
        (500, '{"detail": "Internal Server Error"}', True, None),
    ],
)
def test_a_self_hosted_server_s_error_body_is_read_the_same_way(status, body, retryable, client_message):
    pool = ScriptedPool((status, body.encode()))
    with pytest.raises(ProviderError) as caught:
        OpenAIHttpChat(base_url="http://alb", model="m", pool=pool).chat(REQUEST, deadline=DEADLINE)
    assert (caught.value.retryable, caught.value.client_message) == (retryable, client_message)
