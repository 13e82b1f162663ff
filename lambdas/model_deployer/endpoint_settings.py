"""Lambda entry point (`on_event`) of the custom resource between the inference stack's endpoint
configuration and its endpoint (Custom::ApprovedModelEndpointConfig, stacks/components/model_endpoint.py).

CloudFormation gives the endpoint the configuration this resource returns as `EndpointConfigName`:
the template's configuration while the endpoint serves the stack's own model, and, once an approved
version is served, a copy of the template's configuration serving that version
(logic.config_for_settings). So a template change (instance type, capture, timeouts) reaches the
endpoint without putting the initial model back. The resource runs only when the template's
configuration is replaced (its name is a property); an unchanged template touches nothing.

ResourceProperties: EndpointName, TemplateConfigName, Tags (a mapping, put on the copies). Delete
makes no call: the endpoint goes with its own resource, and the configurations made here are kept
like the deployer's (earlier versions stay available for a manual rollback).
Environment: none of its own; boto3 takes the Region from Lambda's AWS_REGION.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from .logic import config_for_settings

NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
logger = Logger(service="model-endpoint-settings")


class _Properties(BaseModel):
    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(alias="EndpointName", max_length=63, pattern=NAME)
    template: str = Field(alias="TemplateConfigName", max_length=63, pattern=NAME)
    tags: dict[str, str] = Field(default_factory=dict, alias="Tags")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    physical_id: str | None = Field(default=None, alias="PhysicalResourceId")
    properties: _Properties = Field(alias="ResourceProperties")


@cache
def sagemaker() -> Any:
    return boto3.client("sagemaker")


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = _Event.model_validate(event)
    props = request.properties
    logger.append_keys(endpoint=props.endpoint, request_type=request.request_type)
    if request.request_type == "Delete":
        return {"PhysicalResourceId": request.physical_id or props.endpoint}
    name = config_for_settings(sagemaker(), props.endpoint, props.template, props.tags)
    logger.info("endpoint configuration chosen", extra={"template": props.template, "chosen": name})
    return {"PhysicalResourceId": props.endpoint, "Data": {"EndpointConfigName": name}}
