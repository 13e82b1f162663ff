"""Roles passed as RoleARN of an Application Auto Scaling scalable target (CDK's ScalableTarget
creates one with no permissions).

For SageMaker endpoint variants and inference components, Application Auto Scaling does not use the
role: "If you specify a legacy service role for any other service (...), Application Auto Scaling
ignores it. Instead, it uses a service-linked role" (Application Auto Scaling user guide, "How
Application Auto Scaling works with IAM", service roles:
https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_service-with-iam.html;
API reference, RegisterScalableTarget RoleARN: "required for services that do not support
service-linked roles (such as Amazon EMR) ... If the service supports service-linked roles,
Application Auto Scaling uses a service-linked role, which it creates if it does not yet exist":
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
The calls (sagemaker:DescribeEndpoint, DescribeEndpointConfig, UpdateEndpointWeightsAndCapacities,
DescribeInferenceComponent, UpdateInferenceComponentRuntimeConfig, cloudwatch alarms) are made with
AWSServiceRoleForApplicationAutoScaling_SageMakerEndpointVariant, whose AWS managed policy
(AWSApplicationAutoscalingSageMakerEndpointPolicy) AWS maintains ("Service-linked roles for
Application Auto Scaling": https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
So the rows of these roles are what they must NOT be able to do: the role stays unused and empty;
whoever grants it something has misread where the permissions live.
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.service_resources import resources

WHY = (
    "Application Auto Scaling ignores a role passed for SageMaker and uses its service-linked role "
    "(security_iam_service-with-iam, API_RegisterScalableTarget)"
)


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    targets = [
        r.properties
        for r in resources(deployment, "AWS::ApplicationAutoScaling::ScalableTarget")
        if r.properties.get("RoleARN") == role.arn
    ]
    if not targets:
        return None
    result: list[Call] = []
    for target in targets:
        assert target["ServiceNamespace"] == "sagemaker", target
        resource_id = target["ResourceId"]  # endpoint/NAME/variant/VARIANT or inference-component/NAME
        if resource_id.startswith("endpoint/"):
            endpoint = deployment.arn("sagemaker", f"endpoint/{resource_id.split('/')[1].lower()}")
            result += [
                Call("sagemaker:DescribeEndpoint", endpoint, WHY, expect="deny"),
                Call("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint, WHY, expect="deny"),
            ]
        else:
            component = deployment.arn(
                "sagemaker", f"inference-component/{resource_id.split('/')[1].lower()}"
            )
            result += [
                Call("sagemaker:DescribeInferenceComponent", component, WHY, expect="deny"),
                Call("sagemaker:UpdateInferenceComponentRuntimeConfig", component, WHY, expect="deny"),
            ]
        result.append(
            Call(
                "cloudwatch:PutMetricAlarm",
                deployment.arn("cloudwatch", "alarm:TargetTracking-endpoint-AlarmHigh-0123"),
                WHY,
                expect="deny",
            )
        )
    return result


BUILDERS = (rows,)
