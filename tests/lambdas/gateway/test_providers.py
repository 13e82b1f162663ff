"""Each provider against a stubbed client: request shape, response mapping, error classification."""

from __future__ import annotations

import http.client
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.gateway.deadline import Deadline
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.guardrail import Guarded, Guardrail
from lambdas.gateway.providers.bedrock import BedrockChat, BedrockEmbeddings
from lambdas.gateway.providers.openai_format import OpenAIHttpChat, SageMakerChat
from lambdas.gateway.schema import ChatCompletionRequest
from tests.lambdas.gateway.fakes import ScriptedPool

REQUEST = ChatCompletionRequest.model_validate(
    {
        "model": "copy",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
    }
)


DEADLINE = Deadline(expires_at=float("inf"), budget=5.0)  # never runs out


def client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")


def body(payload: dict) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def openai_payload(text: str = "Hello") -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    }


def test_bedrock_converse_carries_system_inference_settings_and_the_guardrail():
    runtime = client("bedrock-runtime")
    provider = BedrockChat(runtime, model_id="amazon.nova-lite-v1:0", guardrail=("gr-arn", "3"))
    expected = {
        "modelId": "amazon.nova-lite-v1:0",
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"temperature": 0.2, "maxTokens": 50, "stopSequences": ["END"]},
        "guardrailConfig": {"guardrailIdentifier": "gr-arn", "guardrailVersion": "3"},
    }
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10},
        "metrics": {"latencyMs": 5},
    }
    with Stubber(runtime) as stub:
        stub.add_response("converse", response, expected)
        result = provider.chat(REQUEST, deadline=DEADLINE)
    assert (result.text, result.finish_reason, result.input_tokens, result.output_tokens) == (
        "Hello",
        "stop",
        9,
        1,
    )


def test_a_bedrock_guardrail_intervention_is_a_content_filter_answer_not_an_error():
    runtime = client("bedrock-runtime")
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Sorry, blocked."}]}},
        "stopReason": "guardrail_intervened",
        "usage": {"inputTokens": 9, "outputTokens": 0, "totalTokens": 9},
        "metrics": {"latencyMs": 5},
    }
    with Stubber(runtime) as stub:
        stub.add_response("converse", response)
        result = BedrockChat(runtime, model_id="m", guardrail=("g", "1")).chat(REQUEST, deadline=DEADLINE)
    assert (result.text, result.finish_reason, result.guardrail_intervened) == (
        "Sorry, blocked.",
        "content_filter",
        True,
    )


@pytest.mark.parametrize(
    ("code", "status", "retryable", "throttled"),
    [
        ("ThrottlingException", 429, True, True),
        ("ServiceUnavailableException", 503, True, False),
        ("ModelTimeoutException", 408, True, False),
        ("ValidationException", 400, False, False),
        ("AccessDeniedException", 403, False, False),
    ],
)
def test_bedrock_errors_are_classified_for_retry_and_fallback(code, status, retryable, throttled):
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stub:
        stub.add_client_error("converse", service_error_code=code, http_status_code=status)
        with pytest.raises(ProviderError) as caught:
            BedrockChat(runtime, model_id="m", guardrail=None).chat(REQUEST, deadline=DEADLINE)
    assert (caught.value.retryable, caught.value.throttled) == (retryable, throttled)


def test_a_request_bedrock_refuses_is_the_callers_400_with_bedrocks_message():
    """A prompt longer than the model's context is Bedrock's ValidationException (HTTP 400): the caller
    gets a 400 with that message (was a 502 `upstream_rejected` with the message lost, which SDKs
    retry); AccessDenied stays our fault (502) but keeps its reason."""
    runtime = client("bedrock-runtime")
    too_long = "Input is too long for requested model."
    with Stubber(runtime) as stub:
        stub.add_client_error(
            "converse",
            service_error_code="ValidationException",
            service_message=too_long,
            http_status_code=400,
        )
        with pytest.raises(ProviderError) as caught:
            BedrockChat(runtime, model_id="m", guardrail=None).chat(REQUEST, deadline=DEADLINE)
    assert caught.value.client_message == too_long
    with Stubber(runtime) as stub:
        stub.add_client_error(
            "converse",
            service_error_code="AccessDeniedException",
            service_message="no access",
            http_status_code=403,
        )
        with pytest.raises(ProviderError) as caught:
            BedrockChat(runtime, model_id="m", guardrail=None).chat(REQUEST, deadline=DEADLINE)
    assert caught.value.client_message is None
    assert "no access" in str(caught.value)


def test_bedrock_embeddings_call_titan_once_per_input_with_the_dimensions():
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stub:
        for text in ("a", "bb"):
            stub.add_response(
                "invoke_model",
                {
                    "body": body({"embedding": [0.1, 0.2], "inputTextTokenCount": len(text)}),
                    "contentType": "application/json",
                },
                {
                    "modelId": "amazon.titan-embed-text-v2:0",
                    "body": json.dumps({"inputText": text, "dimensions": 256}),
                    "contentType": "application/json",
                    "accept": "application/json",
                },
            )
        result = BedrockEmbeddings(runtime, model_id="amazon.titan-embed-text-v2:0").embed(
            ["a", "bb"], dimensions=256, deadline=DEADLINE
        )
    assert result.vectors == [[0.1, 0.2], [0.1, 0.2]]
    assert result.input_tokens == 3


def test_sagemaker_uses_the_messages_api_of_the_serving_container():
    runtime = client("sagemaker-runtime")
    expected_body = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
    }
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": body(openai_payload())},
            {
                "EndpointName": "llm",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": json.dumps(expected_body),
            },
        )
        result = SageMakerChat(runtime, endpoint="llm").chat(REQUEST, deadline=DEADLINE)
    assert (result.text, result.input_tokens, result.output_tokens) == ("Hello", 7, 2)


def test_a_self_hosted_server_is_called_over_http_with_the_model_name():
    pool = ScriptedPool((200, json.dumps(openai_payload("Hi there")).encode()))
    result = OpenAIHttpChat(base_url="http://internal-alb:8000/", model="llama", pool=pool).chat(
        REQUEST, deadline=Deadline(expires_at=13.0, budget=3.0, clock=lambda: 10.0)
    )
    (call,) = pool.calls
    assert (call["method"], call["url"]) == ("POST", "http://internal-alb:8000/v1/chat/completions")
    assert json.loads(call["body"])["model"] == "llama"
    assert call["timeout"] == 3  # the pool gets exactly the time left
    assert result.text == "Hi there"


@pytest.mark.parametrize(
    ("outcome", "retryable", "throttled"),
    [
        ((429, b"slow down"), True, True),
        ((503, b"down"), True, False),
        ((400, b"bad"), False, False),
        (ConnectionRefusedError(111, "Connection refused"), True, False),
        (http.client.RemoteDisconnected("closed"), True, False),
        (TimeoutError(), True, False),
    ],
)
def test_self_hosted_failures_are_classified(outcome, retryable, throttled):
    with pytest.raises(ProviderError) as caught:
        OpenAIHttpChat(base_url="http://alb", model="m", pool=ScriptedPool(outcome)).chat(
            REQUEST, deadline=DEADLINE
        )
    assert (caught.value.retryable, caught.value.throttled) == (retryable, throttled)


def test_only_http_urls_are_accepted_for_self_hosted_targets():
    with pytest.raises(ValueError, match="not an http"):
        OpenAIHttpChat(base_url="file:///etc/passwd", model="m")


def test_a_non_openai_answer_is_a_retryable_failure():
    runtime = client("sagemaker-runtime")
    with Stubber(runtime) as stub:
        stub.add_response("invoke_endpoint", {"Body": body({"generated_text": "x"})})
        with pytest.raises(ProviderError, match="not an OpenAI chat completion"):
            SageMakerChat(runtime, endpoint="llm").chat(REQUEST, deadline=DEADLINE)


class Recording:
    applies_guardrail_itself = False
    name = "sagemaker:llm"

    def __init__(self, text="The answer"):
        self.text = text
        self.calls = 0

    def chat(self, request, *, deadline):
        from tests.lambdas.gateway.fakes import answer

        self.calls += 1
        return answer(self.text)


def guardrail_response(intervened: bool, text: str = "") -> dict:
    response = {
        "usage": {
            "topicPolicyUnits": 1,
            "contentPolicyUnits": 1,
            "wordPolicyUnits": 1,
            "sensitiveInformationPolicyUnits": 1,
            "sensitiveInformationPolicyFreeUnits": 0,
            "contextualGroundingPolicyUnits": 0,
        },
        "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
        "outputs": [{"text": text}] if intervened else [],
        "assessments": [],
    }
    return response


def test_apply_guardrail_blocks_the_input_before_the_model_is_called():
    runtime = client("bedrock-runtime")
    target = Recording()
    with Stubber(runtime) as stub:
        stub.add_response(
            "apply_guardrail",
            guardrail_response(True, "Not allowed."),
            {
                "guardrailIdentifier": "g",
                "guardrailVersion": "2",
                "source": "INPUT",
                "content": [{"text": {"text": "Be brief.\nHi"}}],
            },
        )
        result = Guarded(target, Guardrail(runtime, identifier="g", version="2")).chat(
            REQUEST, deadline=DEADLINE
        )
    assert (result.text, result.finish_reason, result.guardrail_intervened) == (
        "Not allowed.",
        "content_filter",
        True,
    )
    assert target.calls == 0


def test_apply_guardrail_checks_the_output_of_sagemaker_and_self_hosted_targets():
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", guardrail_response(False))
        stub.add_response(
            "apply_guardrail",
            guardrail_response(True, "Redacted."),
            {
                "guardrailIdentifier": "g",
                "guardrailVersion": "2",
                "source": "OUTPUT",
                "content": [{"text": {"text": "The answer"}}],
            },
        )
        result = Guarded(Recording(), Guardrail(runtime, identifier="g", version="2")).chat(
            REQUEST, deadline=DEADLINE
        )
    assert (result.text, result.guardrail_intervened) == ("Redacted.", True)
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", guardrail_response(False))
        stub.add_response("apply_guardrail", guardrail_response(False))
        assert (
            Guarded(Recording(), Guardrail(runtime, identifier="g", version="2"))
            .chat(REQUEST, deadline=DEADLINE)
            .text
            == "The answer"
        )
