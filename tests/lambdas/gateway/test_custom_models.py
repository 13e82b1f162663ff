"""Custom-model targets (providers/bedrock.py CustomModelChat) against botocore stubs: the serving
resource's ARN is looked up by name and is Converse's modelId; kept for a while; a resource not yet
deployed or not ready is a retryable failure, so the alias falls back to its next target."""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from lambdas.gateway.deadline import Deadline
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.bedrock import CustomModelChat
from lambdas.gateway.schema import ChatCompletionRequest
from lambdas.gateway.service import Gateway
from tests.lambdas.gateway.fakes import FakeClock, RecordingMetrics, ScriptedChat, answer

DEPLOYMENT_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcd1234efgh"
PROVISIONED_ARN = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcd1234efgh"
REQUEST = ChatCompletionRequest.model_validate(
    {"model": "tuned", "messages": [{"role": "user", "content": "hi"}]}
)
CONVERSED = {
    "output": {"message": {"role": "assistant", "content": [{"text": "tuned answer"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
    "metrics": {"latencyMs": 5},
}


def deployment(status: str = "Active") -> dict:
    return {
        "customModelDeploymentArn": DEPLOYMENT_ARN,
        "modelDeploymentName": "team-nova-support-on-demand",
        "modelArn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/abc",
        "createdAt": "2026-12-01T00:00:00Z",
        "status": status,
    }


def provisioned(status: str = "InService") -> dict:
    return {
        "modelUnits": 1,
        "desiredModelUnits": 1,
        "provisionedModelName": "team-tuned-pt",
        "provisionedModelArn": PROVISIONED_ARN,
        "modelArn": "arn:aws:bedrock:us-west-2:123456789012:custom-model/meta.llama3-1-8b-instruct-v1:0:128k/abc",
        "desiredModelArn": "arn:aws:bedrock:us-west-2:123456789012:custom-model/meta.llama3-1-8b-instruct-v1:0:128k/abc",
        "foundationModelArn": "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-1-8b-instruct-v1:0:128k",
        "status": status,
        "creationTime": "2026-12-01T00:00:00Z",
        "lastModifiedTime": "2026-12-01T00:00:00Z",
    }


def chat(stubs, serving: str = "on_demand", clock: FakeClock | None = None) -> CustomModelChat:
    return CustomModelChat(
        stubs("bedrock-runtime"),
        stubs("bedrock"),
        resource_name="team-nova-support-on-demand" if serving == "on_demand" else "team-tuned-pt",
        serving=serving,
        guardrail=("arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1", "3"),
        clock=clock or FakeClock(),
    )


def deadline() -> Deadline:
    return Deadline.start(10)


def test_an_on_demand_deployment_is_called_by_the_arn_its_name_finds_and_kept_for_a_while(stubs):
    clock = FakeClock()
    target = chat(stubs, clock=clock)
    stubs["bedrock"].add_response(
        "get_custom_model_deployment",
        deployment(),
        {"customModelDeploymentIdentifier": "team-nova-support-on-demand"},
    )
    converse = {"modelId": DEPLOYMENT_ARN, "messages": ANY, "inferenceConfig": ANY, "guardrailConfig": ANY}
    stubs["bedrock-runtime"].add_response("converse", CONVERSED, converse)
    stubs["bedrock-runtime"].add_response("converse", CONVERSED, converse)  # no second lookup
    assert target.chat(REQUEST, deadline=deadline()).text == "tuned answer"
    clock.now += 299
    assert target.chat(REQUEST, deadline=deadline()).text == "tuned answer"
    clock.now += 2  # past RESOLVED_SECONDS: looked up again
    stubs["bedrock"].add_response("get_custom_model_deployment", deployment(), None)
    stubs["bedrock-runtime"].add_response("converse", CONVERSED, converse)
    target.chat(REQUEST, deadline=deadline())
    assert target.name == "bedrock:custom/team-nova-support-on-demand"


def test_provisioned_throughput_is_found_by_its_name(stubs):
    target = chat(stubs, serving="provisioned")
    stubs["bedrock"].add_response(
        "get_provisioned_model_throughput", provisioned(), {"provisionedModelId": "team-tuned-pt"}
    )
    stubs["bedrock-runtime"].add_response(
        "converse",
        CONVERSED,
        {"modelId": PROVISIONED_ARN, "messages": ANY, "inferenceConfig": ANY, "guardrailConfig": ANY},
    )
    assert target.chat(REQUEST, deadline=deadline()).output_tokens == 2


@pytest.mark.parametrize(
    ("answer_of_lookup", "says"),
    [
        (("error", "ResourceNotFoundException"), "not deployed yet"),
        (("status", "Creating"), "Creating, not ready to answer"),
        (("status", "Failed"), "Failed, not ready to answer"),
    ],
)
def test_a_deployment_not_there_or_not_ready_is_a_retryable_failure(stubs, answer_of_lookup, says):
    kind, value = answer_of_lookup
    if kind == "error":
        stubs["bedrock"].add_client_error("get_custom_model_deployment", value, "no such deployment")
    else:
        stubs["bedrock"].add_response("get_custom_model_deployment", deployment(value), None)
    with pytest.raises(ProviderError) as failed:
        chat(stubs).chat(REQUEST, deadline=deadline())
    assert failed.value.retryable
    assert says in str(failed.value)


def test_the_alias_falls_back_to_its_base_model_until_the_first_run_has_deployed(stubs):
    stubs["bedrock"].add_client_error("get_custom_model_deployment", "ResourceNotFoundException", "none yet")
    stubs["bedrock"].add_client_error("get_custom_model_deployment", "ResourceNotFoundException", "none yet")
    base = ScriptedChat("bedrock:amazon.nova-micro-v1:0", answer("base answer"))
    gw = Gateway(chat_routes={"tuned": [chat(stubs), base]}, embedding_routes={})
    body = {"model": "tuned", "messages": [{"role": "user", "content": "hi"}]}
    response, headers = gw.chat(body, tenant="t", metrics=RecordingMetrics())
    assert response["choices"][0]["message"]["content"] == "base answer"
    assert (headers["x-genai-target"], headers["x-genai-fallbacks"]) == (
        "bedrock:amazon.nova-micro-v1:0",
        "1",
    )


def test_provisioned_throughput_that_is_updating_still_answers(stubs):
    """A pipeline run moves the throughput to its new model; it serves meanwhile (prov-thru-edit)."""
    target = chat(stubs, serving="provisioned")
    stubs["bedrock"].add_response("get_provisioned_model_throughput", provisioned("Updating"), None)
    stubs["bedrock-runtime"].add_response("converse", CONVERSED, None)
    assert target.chat(REQUEST, deadline=deadline()).text == "tuned answer"


def test_a_refused_call_forgets_the_arn_and_lets_the_alias_fall_back(stubs):
    """The pipeline made the deployment anew: the cached ARN is gone. The call fails over (retryable)
    and the next request looks the ARN up again."""
    target = chat(stubs)
    stubs["bedrock"].add_response("get_custom_model_deployment", deployment(), None)
    stubs["bedrock-runtime"].add_client_error("converse", "ResourceNotFoundException", "no such model")
    with pytest.raises(ProviderError) as failed:
        target.chat(REQUEST, deadline=deadline())
    assert failed.value.retryable
    stubs["bedrock"].add_response("get_custom_model_deployment", deployment(), None)
    stubs["bedrock-runtime"].add_response("converse", CONVERSED, None)
    assert target.chat(REQUEST, deadline=deadline()).text == "tuned answer"
