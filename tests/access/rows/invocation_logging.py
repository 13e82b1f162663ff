"""Invocation logging custom resource (lambdas/invocation_logging, logic.py apply / remove):
Get/Put/DeleteModelInvocationLoggingConfiguration, and iam:PassRole of the CloudWatch delivery role
that PutModelInvocationLoggingConfiguration names.

- The three actions have no resource type, so they are evaluated on "*" (Service Authorization
  Reference, Amazon Bedrock: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html).
- Passing a role to a service needs iam:PassRole on the role, with iam:PassedToService in the request
  context ("Grant a user permissions to pass a role to an AWS service":
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html; Bedrock user guide,
  "Monitor model invocation using CloudWatch Logs and Amazon S3":
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

PACKAGE = "invocation_logging"
HANDLERS = ("lambdas.invocation_logging.handler.on_event",)
APIS = frozenset(
    {
        "bedrock.GetModelInvocationLoggingConfiguration",
        "bedrock.PutModelInvocationLoggingConfiguration",
        "bedrock.DeleteModelInvocationLoggingConfiguration",
        "cloudformation.DescribeStacks",
    }
)


def _custom_resources(function: Function, deployment: Deployment) -> list[dict]:
    template = deployment.templates[function.stack]
    return [
        deployment.resolver.resolve(function.stack, resource["Properties"])
        for resource in template["Resources"].values()
        if resource["Type"] == "Custom::BedrockInvocationLogging"
    ]


def rows(function: Function, deployment: Deployment) -> list[Call]:
    result = [
        Call(f"bedrock:{operation}", "*", f"logic.py {where}", api=f"bedrock.{operation}")
        for operation, where in (
            ("GetModelInvocationLoggingConfiguration", "current_config"),
            ("PutModelInvocationLoggingConfiguration", "apply"),
            ("DeleteModelInvocationLoggingConfiguration", "remove"),
        )
    ]
    # handler.py stack_is_rolling_back: DescribeStacks on the stack that sent the request,
    # arn:${Partition}:cloudformation:${Region}:${Account}:stack/${StackName}/${Id} (Service
    # Authorization Reference, AWS CloudFormation).
    stack_id = deployment.resolver.resolve(function.stack, {"Ref": "AWS::StackId"})
    result += [
        Call(
            "cloudformation:DescribeStacks",
            stack_id,
            "handler.py stack_is_rolling_back",
            api="cloudformation.DescribeStacks",
        ),
        Call(
            "cloudformation:DescribeStacks",
            deployment.arn("cloudformation", "stack/another-stack/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"),
            "only its own stack",
            expect="deny",
        ),
    ]
    passed = {"iam:PassedToService": "bedrock.amazonaws.com"}
    for properties in _custom_resources(function, deployment):
        result.append(
            Call(
                "iam:PassRole",
                properties["CloudWatchRoleArn"],
                "PutModelInvocationLoggingConfiguration passes the delivery role (id_roles_use_passrole)",
                context=passed,
                api="bedrock.PutModelInvocationLoggingConfiguration",
            )
        )
    delivery_role = result[-1].resource
    result += [
        Call(
            "iam:PassRole",
            deployment.arn("iam", "role/another-role", region=""),
            "no other role may be passed",
            context=passed,
            expect="deny",
        ),
        Call(
            "iam:PassRole",
            delivery_role,
            "the delivery role goes to Bedrock only",
            context={"iam:PassedToService": "ec2.amazonaws.com"},
            expect="deny",
        ),
    ]
    return result
