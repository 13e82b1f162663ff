"""Invocation logging custom resource: logic with a stubbed bedrock client, handler end to end.

The Stubber raises on any call that was not queued, so a test that queues no put or delete also
proves the code did not overwrite or delete a configuration it does not own.
"""

from __future__ import annotations

import importlib
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from lambdas.invocation_logging import logic
from lambdas.invocation_logging.logic import ForeignConfigurationError, LoggingSettings
from tests.support.stubs import import_counting_clients, offline_client, stubbed

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/genai-bedrock-invocation-logging"
OURS = LoggingSettings(log_group_name="genai-invocations", role_arn=ROLE_ARN, bucket_name="genai-logs-bucket")
OURS_ID = "bedrock-invocation-logging:us-east-1:genai-invocations:genai-logs-bucket/bedrock-invocation-logs/"
MOVED = replace(OURS, log_group_name="genai-invocations-v2", image_data_delivery=False)
FOREIGN = {
    "cloudWatchConfig": {
        "logGroupName": "security-team/bedrock",
        "roleArn": "arn:aws:iam::123456789012:role/security-bedrock-logging",
    },
    "s3Config": {"bucketName": "security-audit-logs", "keyPrefix": "bedrock/"},
    "textDataDeliveryEnabled": True,
}


@pytest.fixture
def client():
    return offline_client("bedrock", REGION)


@pytest.fixture
def stub(client):
    with stubbed(client) as stubber:
        yield stubber


def currently(stub: Stubber, config: dict | None) -> None:
    """Queue the GetModelInvocationLoggingConfiguration answer: `config`, or no configuration."""
    stub.add_response(
        "get_model_invocation_logging_configuration", {} if config is None else {"loggingConfig": config}, {}
    )


def expect_put(stub: Stubber, settings: LoggingSettings) -> None:
    stub.add_response(
        "put_model_invocation_logging_configuration", {}, {"loggingConfig": settings.logging_config()}
    )


def expect_delete(stub: Stubber) -> None:
    stub.add_response("delete_model_invocation_logging_configuration", {}, {})


# --------------------------------------------------------------------------------------------------
# Logic


def test_the_desired_configuration_has_both_destinations_and_the_delivery_flags():
    assert OURS.logging_config() == {
        "cloudWatchConfig": {"logGroupName": "genai-invocations", "roleArn": ROLE_ARN},
        "s3Config": {"bucketName": "genai-logs-bucket", "keyPrefix": "bedrock-invocation-logs/"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": True,
        "embeddingDataDeliveryEnabled": True,
        "videoDataDeliveryEnabled": False,
    }


def test_create_without_a_configuration_puts_ours(client, stub):
    currently(stub, None)
    expect_put(stub, OURS)
    outcome = logic.apply(client, OURS)
    assert outcome == logic.Outcome(OURS_ID, configured=True, action="configured")


def test_a_configuration_without_destinations_counts_as_none(client, stub):
    currently(stub, {"textDataDeliveryEnabled": True})
    expect_put(stub, OURS)
    assert logic.apply(client, OURS).action == "configured"


def test_create_is_idempotent_when_our_configuration_is_already_there(client, stub):
    # As the service may report it: unset fields we never send, and extra fields we do not manage.
    reported = {**OURS.logging_config(), "audioDataDeliveryEnabled": False}
    currently(stub, reported)
    expect_put(stub, OURS)
    assert logic.apply(client, OURS).action == "configured"


def test_unset_values_read_back_as_false_and_empty_still_count_as_ours(client, stub):
    # No key prefix, and a false flag the service leaves out of its answer.
    settings = replace(OURS, key_prefix="")
    reported = settings.logging_config()
    reported["s3Config"] = {"bucketName": "genai-logs-bucket"}
    del reported["videoDataDeliveryEnabled"]
    currently(stub, reported)
    expect_delete(stub)
    assert logic.remove(client, settings).action == "deleted"


def test_create_refuses_to_overwrite_a_foreign_configuration(client, stub):
    currently(stub, FOREIGN)
    with pytest.raises(ForeignConfigurationError) as raised:
        logic.apply(client, OURS)
    message = str(raised.value)
    assert "security-team/bedrock" in message
    assert "security-audit-logs" in message
    assert "take_over" in message
    assert "us-east-1" in message


def test_a_configuration_differing_only_in_a_delivery_flag_is_not_ours(client, stub):
    currently(stub, replace(OURS, video_data_delivery=True).logging_config())
    with pytest.raises(ForeignConfigurationError):
        logic.apply(client, OURS)


def test_take_over_replaces_a_foreign_configuration_and_names_it(client, stub):
    currently(stub, FOREIGN)
    expect_put(stub, OURS)
    outcome = logic.apply(client, OURS, take_over=True)
    assert outcome.action == "replaced"
    assert outcome.configured is True
    assert "security-team/bedrock" in outcome.detail
    assert "security-audit-logs" in outcome.detail


def test_update_replaces_what_the_old_properties_set_without_take_over(client, stub):
    currently(stub, OURS.logging_config())
    expect_put(stub, MOVED)
    outcome = logic.apply(client, MOVED, previous=OURS)
    assert outcome.action == "configured"
    assert outcome.physical_resource_id == (
        "bedrock-invocation-logging:us-east-1:genai-invocations-v2:genai-logs-bucket/bedrock-invocation-logs/"
    )


def test_update_still_refuses_a_configuration_someone_else_set_since(client, stub):
    currently(stub, FOREIGN)
    with pytest.raises(ForeignConfigurationError, match="security-team/bedrock"):
        logic.apply(client, MOVED, previous=OURS)


def test_a_rollback_update_leaves_a_foreign_configuration_in_place_and_succeeds(client, stub):
    # The forward Update failed on FOREIGN; CloudFormation's rollback Update carries the old
    # properties (OURS) and names the failed new ones (MOVED) as the old ones.
    currently(stub, FOREIGN)
    outcome = logic.apply(client, OURS, previous=MOVED, rolling_back=lambda: True)
    assert outcome == logic.Outcome(
        OURS_ID, configured=False, action="retained", detail=logic.describe(FOREIGN)
    )


def test_a_rollback_never_takes_over_even_when_the_old_properties_allowed_it(client, stub):
    currently(stub, FOREIGN)
    assert logic.apply(client, OURS, previous=MOVED, take_over=True, rolling_back=lambda: True).action == (
        "retained"
    )


def test_the_rollback_question_is_asked_only_for_a_foreign_configuration(client, stub):
    def never_asked() -> bool:
        raise AssertionError("no DescribeStacks while the configuration is ours")

    currently(stub, MOVED.logging_config())  # the forward Update had succeeded
    expect_put(stub, OURS)
    assert logic.apply(client, OURS, previous=MOVED, rolling_back=never_asked).action == "configured"


def test_delete_removes_our_configuration(client, stub):
    currently(stub, OURS.logging_config())
    expect_delete(stub)
    assert logic.remove(client, OURS) == logic.Outcome(OURS_ID, configured=False, action="deleted")


def test_delete_leaves_a_foreign_configuration_alone(client, stub):
    currently(stub, FOREIGN)
    outcome = logic.remove(client, OURS)
    assert outcome.action == "retained"
    assert "security-audit-logs" in outcome.detail


def test_delete_after_an_update_to_new_destinations_keeps_the_new_configuration(client, stub):
    # CloudFormation deletes the old physical id with the old properties once the Update is done.
    currently(stub, MOVED.logging_config())
    assert logic.remove(client, OURS).action == "retained"


def test_delete_without_a_configuration_does_nothing(client, stub):
    currently(stub, None)
    assert logic.remove(client, OURS) == logic.Outcome(OURS_ID, configured=False, action="absent")


def test_service_errors_propagate(client, stub):
    stub.add_client_error(
        "get_model_invocation_logging_configuration",
        service_error_code="AccessDeniedException",
        http_status_code=403,
    )
    with pytest.raises(Exception, match="AccessDeniedException"):
        logic.apply(client, OURS)


# --------------------------------------------------------------------------------------------------
# Handler


@dataclass
class FakeLambdaContext:
    """The attributes Powertools' inject_lambda_context reads."""

    function_name: str = "genai-invocation-logging"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:genai-invocation-logging"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


CONTEXT = FakeLambdaContext()
SERVICE_TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:genai-provider-framework-onEvent"
PROPERTIES = {
    "ServiceToken": SERVICE_TOKEN,
    "LogGroupName": "genai-invocations",
    "CloudWatchRoleArn": ROLE_ARN,
    "BucketName": "genai-logs-bucket",
}


def cfn_event(request_type: str, properties: dict, **extra: object) -> dict:
    """A custom resource event as the provider framework hands it to on_event."""
    return {
        "RequestType": request_type,
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": STACK_ID,
        "RequestId": "7d6c5b4a-0000-4000-8000-000000000000",
        "LogicalResourceId": "InvocationLogging",
        "ResourceType": "Custom::BedrockInvocationLogging",
        "ResourceProperties": properties,
        **extra,
    }


STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/genai-bedrock/0f1e2d3c"


@pytest.fixture
def cloudformation():
    return offline_client("cloudformation", REGION)


@pytest.fixture
def stacks(cloudformation):
    with stubbed(cloudformation) as stubber:
        yield stubber


def stack_status(stacks: Stubber, status: str) -> None:
    """Queue the DescribeStacks answer for the stack that sent the request."""
    stacks.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackId": STACK_ID,
                    "StackName": "genai-bedrock",
                    "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                    "StackStatus": status,
                }
            ]
        },
        {"StackName": STACK_ID},
    )


@pytest.fixture
def handler(monkeypatch, client, cloudformation):
    module = importlib.import_module("lambdas.invocation_logging.handler")
    monkeypatch.setattr(module, "bedrock_client", lambda: client)
    monkeypatch.setattr(module, "cloudformation_client", lambda: cloudformation)
    return module


@pytest.fixture
def log_lines(handler, monkeypatch):
    """The handler's JSON log lines (Powertools writes them to the stream it was created with)."""
    stream = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_create_parses_cloudformation_strings(handler, stub):
    properties = {
        **PROPERTIES,
        "KeyPrefix": "invocations/",
        "ImageDataDeliveryEnabled": "false",
        "VideoDataDeliveryEnabled": "true",
        "TakeOver": "false",
    }
    settings = replace(OURS, key_prefix="invocations/", image_data_delivery=False, video_data_delivery=True)
    currently(stub, None)
    expect_put(stub, settings)
    assert handler.on_event(cfn_event("Create", properties), CONTEXT) == {
        "PhysicalResourceId": (
            "bedrock-invocation-logging:us-east-1:genai-invocations:genai-logs-bucket/invocations/"
        ),
        "Data": {"LoggingConfigured": "true", "Action": "configured"},
    }


def test_create_applies_the_defaults(handler, stub):
    currently(stub, None)
    expect_put(stub, OURS)  # key prefix bedrock-invocation-logs/, text/image/embedding on, video off
    assert handler.on_event(cfn_event("Create", PROPERTIES), CONTEXT)["PhysicalResourceId"] == OURS_ID


def test_create_fails_on_a_foreign_configuration(handler, stub):
    currently(stub, FOREIGN)
    with pytest.raises(ForeignConfigurationError, match="take_over"):
        handler.on_event(cfn_event("Create", PROPERTIES), CONTEXT)


def test_take_over_is_logged_as_a_warning_naming_what_was_replaced(handler, stub, log_lines):
    currently(stub, FOREIGN)
    expect_put(stub, OURS)
    response = handler.on_event(cfn_event("Create", {**PROPERTIES, "TakeOver": "true"}), CONTEXT)
    assert response["Data"] == {"LoggingConfigured": "true", "Action": "replaced"}
    warnings = [line for line in log_lines() if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert "security-team/bedrock" in warnings[0]["replaced"]
    assert warnings[0]["service"] == "invocation-logging"
    assert warnings[0]["function_request_id"] == CONTEXT.aws_request_id


def test_update_treats_the_old_properties_configuration_as_ours(handler, stub):
    new_properties = {
        **PROPERTIES,
        "LogGroupName": "genai-invocations-v2",
        "ImageDataDeliveryEnabled": "false",
    }
    currently(stub, OURS.logging_config())
    expect_put(stub, MOVED)
    event = cfn_event("Update", new_properties, OldResourceProperties=PROPERTIES, PhysicalResourceId=OURS_ID)
    assert handler.on_event(event, CONTEXT)["PhysicalResourceId"].startswith(
        "bedrock-invocation-logging:us-east-1:genai-invocations-v2:"
    )


def test_update_with_unreadable_old_properties_does_not_claim_a_foreign_configuration(handler, stub, stacks):
    currently(stub, FOREIGN)
    stack_status(stacks, "UPDATE_IN_PROGRESS")
    event = cfn_event("Update", PROPERTIES, OldResourceProperties={}, PhysicalResourceId=OURS_ID)
    with pytest.raises(ForeignConfigurationError):
        handler.on_event(event, CONTEXT)


# --------------------------------------------------------------------------------------------------
# The CloudFormation event sequences of a rollback (CloudFormation user guide, "Update request for
# CloudFormation custom resources": a rollback sends an Update with the old properties; a new
# PhysicalResourceId gets the old one deleted at cleanup).

MOVED_PROPERTIES = {**PROPERTIES, "LogGroupName": "genai-invocations-v2", "ImageDataDeliveryEnabled": "false"}
MOVED_ID = (
    "bedrock-invocation-logging:us-east-1:genai-invocations-v2:genai-logs-bucket/bedrock-invocation-logs/"
)


def test_an_update_refused_for_a_foreign_configuration_can_be_rolled_back(handler, stub, stacks):
    # Create: logging is ours.
    currently(stub, None)
    expect_put(stub, OURS)
    assert handler.on_event(cfn_event("Create", PROPERTIES), CONTEXT)["PhysicalResourceId"] == OURS_ID
    # Someone else sets the account's configuration; the next Update refuses to overwrite it ...
    currently(stub, FOREIGN)
    stack_status(stacks, "UPDATE_IN_PROGRESS")
    forward = cfn_event(
        "Update", MOVED_PROPERTIES, OldResourceProperties=PROPERTIES, PhysicalResourceId=OURS_ID
    )
    with pytest.raises(ForeignConfigurationError, match="security-team/bedrock"):
        handler.on_event(forward, CONTEXT)
    # ... and the rollback Update, with the old properties, completes and leaves it alone.
    currently(stub, FOREIGN)
    stack_status(stacks, "UPDATE_ROLLBACK_IN_PROGRESS")
    rollback = cfn_event(
        "Update", PROPERTIES, OldResourceProperties=MOVED_PROPERTIES, PhysicalResourceId=OURS_ID
    )
    assert handler.on_event(rollback, CONTEXT) == {
        "PhysicalResourceId": OURS_ID,
        "Data": {"LoggingConfigured": "false", "Action": "retained"},
    }
    # A later Delete of the stack leaves it alone as well.
    currently(stub, FOREIGN)
    assert handler.on_event(cfn_event("Delete", PROPERTIES, PhysicalResourceId=OURS_ID), CONTEXT)["Data"] == {
        "LoggingConfigured": "false",
        "Action": "retained",
    }


def test_a_rolled_back_move_restores_ours_and_the_cleanup_delete_keeps_it(handler, stub, stacks):
    # The forward Update moved the destinations; another resource failed; rollback with the old ones.
    currently(stub, OURS.logging_config())
    expect_put(stub, MOVED)
    forward = cfn_event(
        "Update", MOVED_PROPERTIES, OldResourceProperties=PROPERTIES, PhysicalResourceId=OURS_ID
    )
    assert handler.on_event(forward, CONTEXT)["PhysicalResourceId"] == MOVED_ID
    currently(stub, MOVED.logging_config())
    expect_put(stub, OURS)
    rollback = cfn_event(
        "Update", PROPERTIES, OldResourceProperties=MOVED_PROPERTIES, PhysicalResourceId=MOVED_ID
    )
    assert handler.on_event(rollback, CONTEXT)["PhysicalResourceId"] == OURS_ID
    # Cleanup: the Delete of the id the failed update made, with its properties, keeps ours.
    currently(stub, OURS.logging_config())
    cleanup = cfn_event("Delete", MOVED_PROPERTIES, PhysicalResourceId=MOVED_ID)
    assert handler.on_event(cleanup, CONTEXT)["Data"]["Action"] == "retained"


# The CDK provider framework answers a failed Create with this physical id and its Delete itself
# (aws-cdk-lib 2.275, custom-resources/lib/provider-framework/runtime/cfn-response.js).
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"


def test_a_delete_after_a_failed_create_leaves_the_foreign_configuration(handler, stub):
    currently(stub, FOREIGN)
    with pytest.raises(ForeignConfigurationError):
        handler.on_event(cfn_event("Create", PROPERTIES), CONTEXT)
    currently(stub, FOREIGN)
    response = handler.on_event(
        cfn_event("Delete", PROPERTIES, PhysicalResourceId=CREATE_FAILED_MARKER), CONTEXT
    )
    assert response == {
        "PhysicalResourceId": CREATE_FAILED_MARKER,
        "Data": {"LoggingConfigured": "false", "Action": "retained"},
    }


def test_delete_of_our_configuration_keeps_the_physical_id(handler, stub):
    currently(stub, OURS.logging_config())
    expect_delete(stub)
    response = handler.on_event(cfn_event("Delete", PROPERTIES, PhysicalResourceId=OURS_ID), CONTEXT)
    assert response == {
        "PhysicalResourceId": OURS_ID,
        "Data": {"LoggingConfigured": "false", "Action": "deleted"},
    }


def test_delete_of_a_foreign_configuration_succeeds_and_says_why(handler, stub, log_lines):
    currently(stub, FOREIGN)
    response = handler.on_event(cfn_event("Delete", PROPERTIES, PhysicalResourceId=OURS_ID), CONTEXT)
    assert response["Data"]["Action"] == "retained"
    assert any("security-audit-logs" in line.get("current", "") for line in log_lines())


def test_delete_ignores_properties_a_later_version_no_longer_knows(handler, stub):
    currently(stub, None)
    event = cfn_event("Delete", {**PROPERTIES, "RetiredProperty": "x"}, PhysicalResourceId=OURS_ID)
    assert handler.on_event(event, CONTEXT)["Data"]["Action"] == "absent"


class _NoAwsCalls:
    def __call__(self):
        raise AssertionError("the bedrock client must not be built for a bad request")


@pytest.mark.parametrize("missing", ["LogGroupName", "CloudWatchRoleArn", "BucketName"])
def test_a_missing_property_is_named(handler, monkeypatch, missing):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    properties = {key: value for key, value in PROPERTIES.items() if key != missing}
    with pytest.raises(ValueError, match=rf"ResourceProperties\.{missing}: Field required") as raised:
        handler.on_event(cfn_event("Create", properties), CONTEXT)
    assert "Traceback" not in str(raised.value)
    assert "errors.pydantic.dev" not in str(raised.value)


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ({**PROPERTIES, "TakeOver": "perhaps"}, "TakeOver"),
        ({**PROPERTIES, "Keyprefix": "logs/"}, "Keyprefix"),  # misspelt: must not fall back to the default
        ({**PROPERTIES, "CloudWatchRoleArn": "genai-bedrock-invocation-logging"}, "CloudWatchRoleArn"),
        ({**PROPERTIES, "LogGroupName": ""}, "LogGroupName"),
    ],
)
def test_a_bad_property_is_named(handler, monkeypatch, properties, named):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    with pytest.raises(ValueError, match=rf"ResourceProperties\.{named}:"):
        handler.on_event(cfn_event("Create", properties), CONTEXT)


def test_an_unknown_request_type_is_rejected(handler, monkeypatch):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    with pytest.raises(
        ValueError, match=r"event\.RequestType: Input should be 'Create', 'Update' or 'Delete'"
    ):
        handler.on_event(cfn_event("Replace", PROPERTIES), CONTEXT)


def test_import_makes_no_aws_call_and_the_client_is_built_once(monkeypatch):
    module, calls = import_counting_clients(monkeypatch, "lambdas.invocation_logging.handler")
    assert calls == []
    assert module.bedrock_client() is module.bedrock_client()
    assert module.cloudformation_client() is module.cloudformation_client()
    assert calls == ["bedrock", "cloudformation"]
