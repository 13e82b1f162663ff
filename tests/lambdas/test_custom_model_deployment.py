"""The on-demand deployment task of the Bedrock customization state machine: logic with a stubbed
bedrock client (moto serves no custom model deployments), handler end to end.

The Stubber raises on any call that was not queued, so a test that queues no create or update also
proves the code made none.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.custom_model_deployment import logic
from lambdas.custom_model_deployment.logic import Deployment, Outcome
from tests.support.stubs import import_counting_clients, offline_client, stubbed

REGION = "us-east-1"
ACCOUNT = "123456789012"
NAME = "custom-model-nova-support-on-demand"
OLD_MODEL = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-micro-v1:0:128k/aaaaaaaaaaaa"
NEW_MODEL = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-micro-v1:0:128k/bbbbbbbbbbbb"
DEPLOYMENT = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdefghijkl"
TOKEN = f"{NAME}-0123456789ab"
NOW = datetime(2026, 1, 5, tzinfo=UTC)
WANTED = Deployment(
    name=NAME,
    model_arn=NEW_MODEL,
    client_request_token=TOKEN,
    description="Newest custom model of the Bedrock customization custom-model-nova-support",
)


@pytest.fixture
def bedrock():
    return offline_client("bedrock", REGION)


@pytest.fixture
def stub(bedrock):
    with stubbed(bedrock) as stubber:
        yield stubber


def existing(stub: Stubber, model_arn: str) -> None:
    stub.add_response(
        "get_custom_model_deployment",
        {
            "customModelDeploymentArn": DEPLOYMENT,
            "modelDeploymentName": NAME,
            "modelArn": model_arn,
            "createdAt": NOW,
            "status": "Active",
        },
        {"customModelDeploymentIdentifier": NAME},
    )


def absent(stub: Stubber) -> None:
    stub.add_client_error(
        "get_custom_model_deployment",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"customModelDeploymentIdentifier": NAME},
    )


def test_an_existing_deployment_is_moved_to_the_new_model(bedrock, stub):
    existing(stub, OLD_MODEL)
    stub.add_response(
        "update_custom_model_deployment",
        {"customModelDeploymentArn": DEPLOYMENT},
        {"customModelDeploymentIdentifier": NAME, "modelArn": NEW_MODEL},
    )
    assert logic.deploy(bedrock, WANTED) == Outcome(DEPLOYMENT, "updated")


def test_a_deployment_already_serving_the_model_is_left_alone(bedrock, stub):
    existing(stub, NEW_MODEL)  # a retried task: no update call is queued
    assert logic.deploy(bedrock, WANTED) == Outcome(DEPLOYMENT, "unchanged")


def test_a_missing_deployment_is_created_idempotently_with_its_tags(bedrock, stub):
    absent(stub)
    stub.add_response(
        "create_custom_model_deployment",
        {"customModelDeploymentArn": DEPLOYMENT},
        {
            "modelDeploymentName": NAME,
            "modelArn": NEW_MODEL,
            "description": WANTED.description,
            "clientRequestToken": TOKEN,
            "tags": [{"key": "genai-stack:cost-center", "value": "model-tuning"}],
        },
    )
    tagged = Deployment(**{**WANTED.__dict__, "tags": (("genai-stack:cost-center", "model-tuning"),)})
    assert logic.deploy(bedrock, tagged) == Outcome(DEPLOYMENT, "created")


def test_other_errors_propagate(bedrock, stub):
    stub.add_client_error(
        "get_custom_model_deployment", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(Exception, match="AccessDeniedException"):
        logic.deploy(bedrock, WANTED)


# --------------------------------------------------------------------------------------------------
# Handler


@dataclass
class FakeLambdaContext:
    function_name: str = "custom-model-deployment"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:custom-model-deployment"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


def payload(**changes: object) -> dict:
    """The task's Payload as the state machine sends it (BedrockCustomization._on_demand)."""
    return {
        "DeploymentName": NAME,
        "ModelArn": NEW_MODEL,
        "ClientRequestToken": TOKEN,
        "Description": WANTED.description,
        **changes,
    }


@pytest.fixture
def handler(monkeypatch, bedrock):
    module = importlib.import_module("lambdas.custom_model_deployment.handler")
    monkeypatch.setattr(module, "bedrock_client", lambda: bedrock)
    return module


def test_the_handler_creates_the_deployment_and_returns_its_arn(handler, stub):
    absent(stub)
    stub.add_response(
        "create_custom_model_deployment",
        {"customModelDeploymentArn": DEPLOYMENT},
        {
            "modelDeploymentName": NAME,
            "modelArn": NEW_MODEL,
            "description": WANTED.description,
            "clientRequestToken": TOKEN,
            "tags": [{"key": "team", "value": "ml"}],
        },
    )
    response = handler.on_event(payload(Tags=[{"Key": "team", "Value": "ml"}]), FakeLambdaContext())
    assert response == {"arn": DEPLOYMENT, "action": "created"}


def test_a_throttled_call_fails_the_task_under_the_name_the_state_machine_retries(handler, stub):
    stub.add_client_error(
        "get_custom_model_deployment", service_error_code="ThrottlingException", http_status_code=429
    )
    with pytest.raises(ClientError, match="ThrottlingException") as raised:
        handler.on_event(payload(), FakeLambdaContext())
    # Lambda reports the exception's class name as the error; the Deploy state retries it.
    from genai_stack.components.bedrock_customization import DEPLOYMENT_TRANSIENT_ERRORS

    assert type(raised.value).__name__ == "ThrottlingException"
    assert type(raised.value).__name__ in DEPLOYMENT_TRANSIENT_ERRORS


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"}, "ModelArn"),
        ({"DeploymentName": "bad name!"}, "DeploymentName"),
        ({"ClientRequestToken": "-x"}, "ClientRequestToken"),
        ({"Extra": "x"}, "Extra"),
    ],
)
def test_a_bad_request_is_named_before_any_aws_call(handler, monkeypatch, changes, named):
    monkeypatch.setattr(handler, "bedrock_client", lambda: pytest.fail("no AWS call on a bad request"))
    with pytest.raises(ValueError, match=rf"invalid deployment request: {named}"):
        handler.on_event(payload(**changes), FakeLambdaContext())


def test_import_makes_no_aws_call_and_the_client_is_built_once(monkeypatch):
    module, calls = import_counting_clients(monkeypatch, "lambdas.custom_model_deployment.handler")
    assert calls == []
    assert module.bedrock_client() is module.bedrock_client()
    assert calls == ["bedrock"]
