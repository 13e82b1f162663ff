"""Create or move the on-demand custom model deployment of a customization pipeline, over an injected
`bedrock` client (tests pass a stubbed one).

Why a Lambda task and not `arn:aws:states:::aws-sdk:bedrock:...`: Step Functions' AWS SDK integrations
cover the API actions of the SDK version Step Functions ships, and "API action support is released
quarterly" (Step Functions developer guide, "Change log for supported AWS SDK integrations":
https://docs.aws.amazon.com/step-functions/latest/dg/change-log-supported-services.html; "services or
SDKs that are not available might be recently released", "Learning to use AWS service SDK integrations
in Step Functions": https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
The Bedrock integration dates from January 18, 2024 and no page lists its actions, while
CreateCustomModelDeployment/GetCustomModelDeployment came with on-demand custom model deployments
(models customized on or after 2025-07-16: Bedrock user guide, "Deploy a custom model for on-demand
inference": https://docs.aws.amazon.com/bedrock/latest/userguide/deploy-custom-model-on-demand.html) and
UpdateCustomModelDeployment later still (Bedrock API reference, UpdateCustomModelDeployment:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_UpdateCustomModelDeployment.html). None of
the three can be shown to be callable through `aws-sdk:bedrock`, so this function calls them with boto3,
whose model has them (botocore `bedrock` 2023-04-20).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Deployment:
    """What the pipeline asks for: its one deployment, serving the newest custom model."""

    name: str
    model_arn: str
    client_request_token: str
    description: str
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    arn: str
    action: Action


def deploy(bedrock: Any, wanted: Deployment) -> Outcome:
    """Move the deployment named `wanted.name` to `wanted.model_arn`, or create it if it does not exist.

    A deployment already serving the model is left as it is (a retried task changes nothing); the
    create is idempotent through its client request token (one per pipeline run).
    """
    try:
        current = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=wanted.name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        request: dict[str, Any] = {
            "modelDeploymentName": wanted.name,
            "modelArn": wanted.model_arn,
            "description": wanted.description,
            "clientRequestToken": wanted.client_request_token,
        }
        if wanted.tags:
            request["tags"] = [{"key": key, "value": value} for key, value in wanted.tags]
        created = bedrock.create_custom_model_deployment(**request)
        return Outcome(created["customModelDeploymentArn"], "created")
    arn = current["customModelDeploymentArn"]
    if current.get("modelArn") == wanted.model_arn:
        return Outcome(arn, "unchanged")
    updated = bedrock.update_custom_model_deployment(
        customModelDeploymentIdentifier=wanted.name, modelArn=wanted.model_arn
    )
    return Outcome(updated.get("customModelDeploymentArn", arn), "updated")
