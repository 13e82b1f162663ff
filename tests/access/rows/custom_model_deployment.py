"""On-demand deployment of a Bedrock custom model (lambdas/custom_model_deployment, a Step Functions
task of the customization pipeline): logic.py finds the deployment by name
(GetCustomModelDeployment), creates it for the new custom model with tags
(CreateCustomModelDeployment) or moves it to that model (UpdateCustomModelDeployment).

ARN formats (Service Authorization Reference, Amazon Bedrock:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html):
custom-model-deployment/${ResourceId}, custom-model/${BaseModelIdentifier}/${ResourceId}. Creating
with tags also needs bedrock:TagResource on the new resource ("Tagging Amazon Bedrock resources":
https://docs.aws.amazon.com/bedrock/latest/userguide/tagging.html).
"""

from __future__ import annotations

from genai_stack.config import PROFILE_TAG
from tests.access.deployment import Deployment, Function
from tests.access.rows import Call, customization_tags, request_tag_context, resource_tag_context

PACKAGE = "custom_model_deployment"
HANDLERS = ("lambdas.custom_model_deployment.handler.on_event",)
APIS = frozenset(
    {
        "bedrock.GetCustomModelDeployment",
        "bedrock.CreateCustomModelDeployment",
        "bedrock.UpdateCustomModelDeployment",
    }
)


def _platform_key(deployment: Deployment) -> str:
    """The ARN of the profile's one KMS key (the custom model is encrypted with it)."""
    (key,) = [
        deployment.resolver.get_att(stack, logical_id, "Arn")
        for stack, logical_id, _ in deployment._resources("AWS::KMS::Key")
    ]
    return key


def rows(function: Function, deployment: Deployment) -> list[Call]:
    model = deployment.arn("bedrock", "custom-model/amazon.nova-micro-v1:0:128k/abcd1234efgh")
    target = deployment.arn("bedrock", "custom-model-deployment/abcd1234efgh")
    key = _platform_key(deployment)
    via_bedrock = {"kms:ViaService": f"bedrock.{deployment.region}.amazonaws.com"}
    tags = customization_tags(deployment)
    # A deployment created before 0.2 carries only the cost tag; that is enough to move it.
    tagged = resource_tag_context({key: value for key, value in tags.items() if key != PROFILE_TAG})
    requested = request_tag_context(tags)
    serving_key = [
        Call(
            action,
            key,
            "Bedrock uses the custom model's key through the caller when it sets up serving "
            "(Nova user guide, customize-fine-tune-encrypt.html, PermissionsNovaProvisionedThroughput)",
            # Bedrock, a service integrated with KMS, creates the grant on the caller's behalf: the
            # request carries kms:GrantIsForAWSResource true (AWS KMS developer guide, conditions-kms.html).
            context={**via_bedrock, "kms:GrantIsForAWSResource": True}
            if action == "kms:CreateGrant"
            else via_bedrock,
            api="bedrock.CreateCustomModelDeployment",
        )
        for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant")
    ]
    return [
        *serving_key,
        Call("kms:Decrypt", key, "the key only through Bedrock, not directly", expect="deny"),
        Call(
            "bedrock:GetCustomModelDeployment",
            target,
            "logic.py finds the deployment",
            api="bedrock.GetCustomModelDeployment",
        ),
        Call(
            "bedrock:CreateCustomModelDeployment",
            model,
            "logic.py deploys the new custom model, with the pipeline's tags",
            context=requested,
            api="bedrock.CreateCustomModelDeployment",
        ),
        Call(
            "bedrock:TagResource",
            target,
            "the deployment is created with the pipeline's tags",
            context=requested,
            api="bedrock.CreateCustomModelDeployment",
        ),
        Call("bedrock:CreateCustomModelDeployment", model, "not without the pipeline's tags", expect="deny"),
        Call(
            "bedrock:TagResource",
            target,
            "no tag key beyond the pipeline's",
            context={**requested, "aws:TagKeys": [*requested["aws:TagKeys"], "owner"]},
            expect="deny",
        ),
        Call(
            "bedrock:UpdateCustomModelDeployment",
            target,
            "logic.py moves the deployment (created with the pipeline's tags)",
            context=tagged,
            api="bedrock.UpdateCustomModelDeployment",
        ),
        Call(
            "bedrock:UpdateCustomModelDeployment",
            model,
            "to the new custom model (created with the pipeline's tags)",
            context=tagged,
            api="bedrock.UpdateCustomModelDeployment",
        ),
        Call(
            "bedrock:UpdateCustomModelDeployment",
            target,
            "not a deployment without the pipeline's tags",
            expect="deny",
        ),
        Call(
            "bedrock:UpdateCustomModelDeployment",
            deployment.arn("bedrock", "custom-model-deployment/abcd1234efgh", account="210987654321"),
            "not another account's deployment",
            expect="deny",
        ),
    ]
