"""Functions that CDK itself adds: the provider framework's onEvent function (aws-cdk-lib
custom-resources Provider), which invokes the user handler named by USER_ON_EVENT_FUNCTION_ARN,
and the handler of CDK's `Custom::VpcRestrictDefaultSG` resource (VPC
restrictDefaultSecurityGroup), which removes the default security group's rules.

- lambda:InvokeFunction on arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}
  (Service Authorization Reference, AWS Lambda).
- ec2:AuthorizeSecurityGroupIngress/Egress and ec2:RevokeSecurityGroupIngress/Egress on
  arn:${Partition}:ec2:${Region}:${Account}:security-group/${SecurityGroupId} (Service Authorization
  Reference, Amazon EC2).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

HANDLERS = ("framework.onEvent", "__entrypoint__.handler")


def rows(function: Function, deployment: Deployment) -> list[Call]:
    if function.handler == "framework.onEvent":
        handler = function.environment["USER_ON_EVENT_FUNCTION_ARN"]
        return [
            Call("lambda:InvokeFunction", handler, "the provider framework invokes the user handler"),
            Call(
                "lambda:InvokeFunction",
                deployment.arn("lambda", "function:another-function"),
                "and no other function",
                expect="deny",
            ),
        ]
    result = []
    template = deployment.templates[function.stack]
    for resource in template["Resources"].values():
        if resource["Type"] != "Custom::VpcRestrictDefaultSG":
            continue
        properties = deployment.resolver.resolve(function.stack, resource["Properties"])
        if properties["ServiceToken"] != function.arn:
            continue
        group = deployment.arn("ec2", f"security-group/{properties['DefaultSecurityGroupId']}")
        result += [
            Call(action, group, "CDK's restrictDefaultSecurityGroup handler strips the default group's rules")
            for action in (
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
            )
        ]
        result.append(
            Call(
                "ec2:RevokeSecurityGroupIngress",
                deployment.arn("ec2", "security-group/sg-0another0group00"),
                "only the default security group",
                expect="deny",
            )
        )
    return result
