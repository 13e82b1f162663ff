"""Lambda entry point: the `on_event` handler of a CDK provider framework custom resource that removes
what a Bedrock customization pipeline made callable, which CloudFormation has no resource type for
(Provisioned Throughput, custom model deployments), when the stack is deleted or the serving changes.

The provider framework passes the CloudFormation custom resource event and reports the result:
return `{"PhysicalResourceId", "Data"}`, raise to fail the request.

ResourceProperties (CloudFormation passes every value as a string):
- JobPrefix: the pipeline's name base (`<profile>-<name>`);
- StateMachineArn: the pipeline; its running executions are stopped first;
- ProvisionedModelName, DeploymentName: the exact names of the serving resources the pipeline makes;
- Serving: none | on_demand | provisioned.

Create and Update make no AWS call: they validate the properties and report. The physical id names
the pipeline and its serving mode, so a changed serving mode makes CloudFormation delete the old
"resource", which removes the serving the pipeline no longer uses. Delete (logic.remove_serving)
stops the executions, then deletes the two named resources if they exist.

Environment: none of its own; boto3 takes the Region from Lambda's AWS_REGION.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any, Literal, TypeVar

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.custom_model_serving.logic import CONFLICT_RETRY_SECONDS, Outcome, Serving, remove_serving

# Bedrock resource names: ([0-9a-zA-Z][_-]?){1,63} (botocore model 2023-04-20).
NAME = r"^([0-9a-zA-Z][_-]?){1,63}$"
STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s]{1,80}$"
# Stop retrying deletions this long before Lambda's own timeout, to report a clear error in time.
SAFETY_MARGIN_MS = 20_000

logger = Logger(service="custom-model-serving")

Model = TypeVar("Model", bound=BaseModel)


class CustomResourceEvent(BaseModel):
    """The fields of the CloudFormation custom resource event this handler uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    resource_properties: dict[str, Any] = Field(alias="ResourceProperties")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")
    logical_resource_id: str | None = Field(default=None, alias="LogicalResourceId")


class ServingProperties(BaseModel):
    """ResourceProperties of a Create or Update; unknown keys are rejected (a misspelt property must
    fail the deployment, not leave a Provisioned Throughput behind later)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Added by CloudFormation itself, not by the stack author.
    service_token: str | None = Field(default=None, alias="ServiceToken")
    service_timeout: str | int | None = Field(default=None, alias="ServiceTimeout")

    job_prefix: str = Field(alias="JobPrefix", pattern=NAME)
    state_machine_arn: str = Field(alias="StateMachineArn", pattern=STATE_MACHINE_ARN)
    provisioned_model_name: str = Field(alias="ProvisionedModelName", pattern=NAME)
    deployment_name: str = Field(alias="DeploymentName", pattern=NAME)
    serving: Literal["none", "on_demand", "provisioned"] = Field(alias="Serving")

    def physical_resource_id(self) -> str:
        return f"custom-model-serving:{self.job_prefix}:{self.serving}"

    def resources(self) -> Serving:
        return Serving(
            state_machine_arn=self.state_machine_arn,
            provisioned_model_name=self.provisioned_model_name,
            deployment_name=self.deployment_name,
        )


class RecordedProperties(ServingProperties):
    """Properties a previous request accepted (a Delete's): unknown keys are ignored, so that a
    property dropped in a later version cannot block deleting the stack."""

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


_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


@cache
def bedrock_client() -> Any:
    """The `bedrock` control-plane client, built on first use: no AWS work at import time."""
    return boto3.client("bedrock", config=_RETRIES)


@cache
def stepfunctions_client() -> Any:
    return boto3.client("stepfunctions", config=_RETRIES)


def _waiter(context: LambdaContext) -> Any:
    """Sleep before a retry while there is time left in this invocation."""

    def wait() -> bool:
        left = context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS - CONFLICT_RETRY_SECONDS * 1000
        if left <= 0:
            return False
        time.sleep(CONFLICT_RETRY_SECONDS)
        return True

    return wait


def _delete(request: CustomResourceEvent, context: LambdaContext) -> Outcome:
    properties = _parse(RecordedProperties, request.resource_properties, "ResourceProperties")
    return remove_serving(
        bedrock_client(), stepfunctions_client(), properties.resources(), wait=_waiter(context)
    )


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Validate the event before any AWS call; on Delete remove the serving; shape the response.

    A Delete keeps the physical id CloudFormation sent: the response cannot rename what is deleted.
    """
    request = _parse(CustomResourceEvent, event, "event")
    logger.append_keys(request_type=request.request_type, logical_resource_id=request.logical_resource_id)
    if request.request_type != "Delete":
        properties = _parse(ServingProperties, request.resource_properties, "ResourceProperties")
        logger.info(
            "serving clean-up registered",
            extra={
                "serving": properties.serving,
                "provisioned_model_name": properties.provisioned_model_name,
                "deployment_name": properties.deployment_name,
            },
        )
        return {"PhysicalResourceId": properties.physical_resource_id(), "Data": {"Action": "registered"}}

    outcome = _delete(request, context)
    logger.info(
        "serving removed",
        extra={
            "stopped_executions": outcome.stopped_executions,
            "provisioned_throughput": outcome.provisioned_throughput,
            "deployment": outcome.deployment,
        },
    )
    return {
        "PhysicalResourceId": request.physical_resource_id or "custom-model-serving:unknown",
        "Data": {
            "Action": "removed",
            "StoppedExecutions": str(len(outcome.stopped_executions)),
            "ProvisionedThroughput": outcome.provisioned_throughput,
            "Deployment": outcome.deployment,
        },
    }
