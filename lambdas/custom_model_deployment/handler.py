"""Lambda entry point: a task of the Bedrock customization state machine (serving `on_demand`) that
points the pipeline's custom model deployment at the model the run just trained (logic.deploy).

Event (the task's Payload): {"DeploymentName", "ModelArn", "ClientRequestToken", "Description",
"Tags": [{"Key", "Value"}]}. Response: {"arn": deployment ARN, "action": created|updated|unchanged}.
A Bedrock error is raised: Step Functions reports it with the exception's name as the error
(Bedrock's ThrottlingException and InternalServerException are retried by the state's Retry).

Environment: none of its own; boto3 takes the Region from Lambda's AWS_REGION.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import Deployment, deploy

# Bedrock resource names ([0-9a-zA-Z][_-]?){1,63}; custom model ARNs (botocore model 2023-04-20).
NAME = r"^([0-9a-zA-Z][_-]?){1,63}$"
CUSTOM_MODEL_ARN = r"^arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:\d{12}:custom-model/\S+$"
IDEMPOTENCY_PATTERN = r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$"

logger = Logger(service="custom-model-deployment")


class _Tag(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(alias="Key", min_length=1, max_length=128)
    value: str = Field(alias="Value", max_length=256)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    deployment_name: str = Field(alias="DeploymentName", pattern=NAME)
    model_arn: str = Field(alias="ModelArn", pattern=CUSTOM_MODEL_ARN)
    client_request_token: str = Field(alias="ClientRequestToken", pattern=IDEMPOTENCY_PATTERN)
    description: str = Field(alias="Description", min_length=1, max_length=200)
    tags: tuple[_Tag, ...] = Field(default=(), alias="Tags")


@cache
def bedrock_client() -> Any:
    """The `bedrock` control-plane client, built on first use: no AWS work at import time."""
    return boto3.client("bedrock", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        request = _Request.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ValueError(f"invalid deployment request: {problems}") from None
    outcome = deploy(
        bedrock_client(),
        Deployment(
            name=request.deployment_name,
            model_arn=request.model_arn,
            client_request_token=request.client_request_token,
            description=request.description,
            tags=tuple((tag.key, tag.value) for tag in request.tags),
        ),
    )
    logger.info(
        "custom model deployment serves the new model",
        extra={"deployment": outcome.arn, "action": outcome.action, "model": request.model_arn},
    )
    return {"arn": outcome.arn, "action": outcome.action}
