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

Create and Update make no AWS call: they validate the properties and report. The physical id
`custom-model-serving:<JobPrefix>:<Serving>` names the pipeline and its serving mode, so a changed
serving mode makes CloudFormation delete the old "resource", which removes the serving the pipeline
no longer uses. A Delete removes only what its physical id owns (logic.remove_serving with that id's
mode): the rollback of a switch from provisioned to on_demand ends with a Delete of the on_demand id,
which must leave the Provisioned Throughput in use alone. A Delete whose id records no mode (the
provider framework's marker after a failed Create, which the framework answers itself) owns nothing.

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

from .logic import (
    CONFLICT_RETRY_SECONDS,
    MODES,
    Mode,
    Outcome,
    Serving,
    remove_serving,
)

# Bedrock resource names: ([0-9a-zA-Z][_-]?){1,63} (botocore model 2023-04-20).
NAME = r"^([0-9a-zA-Z][_-]?){1,63}$"
STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s]{1,80}$"
PHYSICAL_ID_PREFIX = "custom-model-serving"
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
        return f"{PHYSICAL_ID_PREFIX}:{self.job_prefix}:{self.serving}"

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


def registered_mode(physical_resource_id: str | None) -> Mode | None:
    """The serving mode a physical id of ours records, or None for any other id."""
    parts = (physical_resource_id or "").split(":")
    if len(parts) == 3 and parts[0] == PHYSICAL_ID_PREFIX and parts[2] in MODES:
        return parts[2]  # type: ignore[return-value]
    return None


def _delete(request: CustomResourceEvent, context: LambdaContext) -> Outcome | None:
    """Remove what the physical id owns; None (and no AWS call) when it records no serving mode."""
    mode = registered_mode(request.physical_resource_id)
    if mode is None:
        logger.warning(
            "physical id records no serving mode: nothing to remove",
            extra={"physical_resource_id": request.physical_resource_id},
        )
        return None
    properties = _parse(RecordedProperties, request.resource_properties, "ResourceProperties")
    if properties.serving != mode:
        logger.warning(
            "the properties name another serving mode than the physical id; the id decides",
            extra={"physical_id_serving": mode, "properties_serving": properties.serving},
        )
    return remove_serving(
        bedrock_client(), stepfunctions_client(), properties.resources(), mode=mode, wait=_waiter(context)
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
    if outcome is None:
        return {
            "PhysicalResourceId": request.physical_resource_id or f"{PHYSICAL_ID_PREFIX}:unknown",
            "Data": {"Action": "nothing-owned"},
        }
    logger.info(
        "serving removed",
        extra={
            "stopped_executions": outcome.stopped_executions,
            "provisioned_throughput": outcome.provisioned_throughput,
            "deployment": outcome.deployment,
        },
    )
    return {
        "PhysicalResourceId": request.physical_resource_id,
        "Data": {
            "Action": "removed",
            "StoppedExecutions": str(len(outcome.stopped_executions)),
            "ProvisionedThroughput": outcome.provisioned_throughput,
            "Deployment": outcome.deployment,
        },
    }
