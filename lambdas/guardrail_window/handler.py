"""Lambda entry point: the `on_event` handler of a CDK provider-framework custom resource
(Custom::GuardrailVersionWindow) that returns the guardrail versions the model-access policy
accepts (see logic.py). It makes no AWS call.

ResourceProperties (strings): GuardrailArn, Version. Data: Current, Previous (each `ARN:VERSION`).
A Delete does nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import window

PHYSICAL_ID = "guardrail-version-window"
ARN_PATTERN = r"^arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+$"  # Bedrock API
VERSION_PATTERN = r"^[1-9][0-9]{0,7}$"  # numeric versions only (GuardrailVersion.Version)

logger = Logger(service="guardrail-window")


class Properties(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # ServiceToken, ServiceTimeout

    guardrail_arn: str = Field(alias="GuardrailArn", pattern=ARN_PATTERN)
    version: str = Field(alias="Version", pattern=VERSION_PATTERN)


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    resource_properties: dict[str, Any] = Field(alias="ResourceProperties")
    old_resource_properties: dict[str, Any] | None = Field(default=None, alias="OldResourceProperties")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")


def _parse(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join([where, *(str(p) for p in problem['loc'])])}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ValueError(f"invalid custom resource request: {problems}") from None


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = _parse(Event, event, "event")
    if request.request_type == "Delete":
        return {"PhysicalResourceId": request.physical_resource_id or PHYSICAL_ID}
    new = _parse(Properties, request.resource_properties, "ResourceProperties")
    old = None
    if request.request_type == "Update" and request.old_resource_properties:
        try:
            old = _parse(Properties, request.old_resource_properties, "OldResourceProperties")
        except ValueError as error:  # an unreadable old value: accept only the new version
            logger.warning("old properties are not usable", extra={"error": str(error)})
    result = window(
        request.request_type,
        guardrail_arn=new.guardrail_arn,
        version=new.version,
        old_guardrail_arn=old.guardrail_arn if old else None,
        old_version=old.version if old else None,
    )
    logger.info("guardrail versions accepted", extra=result.data())
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": result.data()}


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event)
