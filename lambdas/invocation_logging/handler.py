"""Lambda entry point: the `on_event` handler of a CDK provider framework custom resource that
configures Bedrock model invocation logging (CloudFormation has no resource type for it).

The provider framework passes the CloudFormation custom resource event and reports the result:
return `{"PhysicalResourceId", "Data"}`, raise to fail the request.

ResourceProperties (CloudFormation passes every value as a string):
- LogGroupName, CloudWatchRoleArn, BucketName: required;
- KeyPrefix: default "bedrock-invocation-logs/";
- TextDataDeliveryEnabled, ImageDataDeliveryEnabled, EmbeddingDataDeliveryEnabled: "true"/"false",
  default "true"; VideoDataDeliveryEnabled: default "false";
- TakeOver: "true" to replace a configuration someone else set, default "false".

An Update during a rollback (the stack's status is UPDATE_ROLLBACK_IN_PROGRESS, read with
cloudformation:DescribeStacks on the event's StackId only when a foreign configuration is found)
leaves a foreign configuration in place and succeeds, so that a rollback can always complete; a
Delete never fails on a configuration it does not own.

Environment: none of its own; boto3 takes the Region from Lambda's AWS_REGION.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal, TypeVar

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import (
    DEFAULT_KEY_PREFIX,
    LoggingSettings,
    Outcome,
    apply,
    remove,
)

# The pattern botocore's model gives RoleArn: checked here so a wrong value fails with a clear message.
ROLE_ARN_PATTERN = r"^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+$"

logger = Logger(service="invocation-logging")

Model = TypeVar("Model", bound=BaseModel)


class CustomResourceEvent(BaseModel):
    """The fields of the CloudFormation custom resource event this handler uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    resource_properties: dict[str, Any] = Field(alias="ResourceProperties")
    old_resource_properties: dict[str, Any] | None = Field(default=None, alias="OldResourceProperties")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")
    logical_resource_id: str | None = Field(default=None, alias="LogicalResourceId")
    stack_id: str | None = Field(default=None, alias="StackId")


class LoggingProperties(BaseModel):
    """ResourceProperties of a Create or Update. Unknown keys are rejected so that a misspelt
    property fails the deployment instead of silently taking its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Added by CloudFormation itself, not by the stack author.
    service_token: str | None = Field(default=None, alias="ServiceToken")
    service_timeout: str | int | None = Field(default=None, alias="ServiceTimeout")

    log_group_name: str = Field(alias="LogGroupName", min_length=1, max_length=512)
    cloud_watch_role_arn: str = Field(alias="CloudWatchRoleArn", max_length=2048, pattern=ROLE_ARN_PATTERN)
    bucket_name: str = Field(alias="BucketName", min_length=3, max_length=63)
    key_prefix: str = Field(default=DEFAULT_KEY_PREFIX, alias="KeyPrefix", max_length=1024)
    text_data_delivery_enabled: bool = Field(default=True, alias="TextDataDeliveryEnabled")
    image_data_delivery_enabled: bool = Field(default=True, alias="ImageDataDeliveryEnabled")
    embedding_data_delivery_enabled: bool = Field(default=True, alias="EmbeddingDataDeliveryEnabled")
    video_data_delivery_enabled: bool = Field(default=False, alias="VideoDataDeliveryEnabled")
    take_over: bool = Field(default=False, alias="TakeOver")

    def settings(self) -> LoggingSettings:
        return LoggingSettings(
            log_group_name=self.log_group_name,
            role_arn=self.cloud_watch_role_arn,
            bucket_name=self.bucket_name,
            key_prefix=self.key_prefix,
            text_data_delivery=self.text_data_delivery_enabled,
            image_data_delivery=self.image_data_delivery_enabled,
            embedding_data_delivery=self.embedding_data_delivery_enabled,
            video_data_delivery=self.video_data_delivery_enabled,
        )


class RecordedProperties(LoggingProperties):
    """Properties a previous request already accepted (a Delete's, an Update's old ones): unknown
    keys are ignored, so a property dropped in a later version cannot block deleting the stack."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _parse(model: type[Model], data: Any, where: str) -> Model:
    """Validate `data`, turning pydantic's report into a short ValueError that names each field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join([where, *(str(part) for part in problem['loc'])])}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ValueError(f"invalid custom resource request: {problems}") from None


_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def bedrock_client() -> Any:
    """The `bedrock` control-plane client, built on first use: no AWS work at import time."""
    return boto3.client("bedrock", config=_RETRIES)


@cache
def cloudformation_client() -> Any:
    return boto3.client("cloudformation", config=_RETRIES)


# The stack statuses of a rollback in progress (CloudFormation user guide, "Stack status codes":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
# ContinueUpdateRollback puts a stack back into UPDATE_ROLLBACK_IN_PROGRESS.
ROLLBACK_STATUSES = frozenset({"UPDATE_ROLLBACK_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})


def stack_is_rolling_back(client: Any, stack_id: str | None) -> bool:
    """Whether the stack that sent the request is rolling back (False when the event names none)."""
    if not stack_id:
        return False
    (stack,) = client.describe_stacks(StackName=stack_id)["Stacks"]
    return stack["StackStatus"] in ROLLBACK_STATUSES


def _previous_settings(request: CustomResourceEvent) -> LoggingSettings | None:
    """What this resource set before an Update; None when the old properties cannot be read,
    so that only an absent or already-matching configuration then counts as ours."""
    try:
        return _parse(RecordedProperties, request.old_resource_properties, "OldResourceProperties").settings()
    except ValueError as error:
        logger.warning("old properties are not usable", extra={"error": str(error)})
        return None


def _create_or_update(request: CustomResourceEvent) -> Outcome:
    properties = _parse(LoggingProperties, request.resource_properties, "ResourceProperties")
    previous = _previous_settings(request) if request.request_type == "Update" else None
    return apply(
        bedrock_client(),
        properties.settings(),
        previous=previous,
        take_over=properties.take_over,
        # CloudFormation creates nothing while rolling back: only an Update can be a rollback's.
        rolling_back=(
            (lambda: stack_is_rolling_back(cloudformation_client(), request.stack_id))
            if request.request_type == "Update"
            else (lambda: False)
        ),
    )


def _delete(request: CustomResourceEvent) -> Outcome:
    properties = _parse(RecordedProperties, request.resource_properties, "ResourceProperties")
    return remove(bedrock_client(), properties.settings())


def _log(outcome: Outcome) -> None:
    fields = {"action": outcome.action, "physical_resource_id": outcome.physical_resource_id}
    if outcome.action == "replaced":
        logger.warning(
            "replaced another party's invocation logging configuration (TakeOver is true)",
            extra={**fields, "replaced": outcome.detail},
        )
    elif outcome.action == "retained":
        logger.info(
            "left the invocation logging configuration in place: it is not the one this resource set",
            extra={**fields, "current": outcome.detail},
        )
    else:
        logger.info("invocation logging request done", extra=fields)


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Validate the event before any AWS call, apply or remove the configuration, shape the response.

    A Delete keeps the physical id CloudFormation sent: the response cannot rename what is deleted.
    """
    request = _parse(CustomResourceEvent, event, "event")
    logger.append_keys(request_type=request.request_type, logical_resource_id=request.logical_resource_id)
    if request.request_type == "Delete":
        outcome = _delete(request)
        physical_id = request.physical_resource_id or outcome.physical_resource_id
    else:
        outcome = _create_or_update(request)
        physical_id = outcome.physical_resource_id
    _log(outcome)
    return {
        "PhysicalResourceId": physical_id,
        "Data": {"LoggingConfigured": str(outcome.configured).lower(), "Action": outcome.action},
    }
