"""Serving clean-up of a Bedrock customization (lambdas/custom_model_serving, logic.py remove_serving).

- states:ListExecutions on the state machine, states:StopExecution on its executions:
  arn:${Partition}:states:${Region}:${Account}:stateMachine:${StateMachineName} and
  arn:${Partition}:states:${Region}:${Account}:execution:${StateMachineName}:${ExecutionId}
  (Service Authorization Reference, AWS Step Functions:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html).
  DescribeStateMachineForExecution is authorized on the execution.
- bedrock:ListProvisionedModelThroughputs and bedrock:ListCustomModelDeployments have no resource
  type ("*"); DeleteProvisionedModelThroughput on provisioned-model/${ResourceId},
  DeleteCustomModelDeployment on custom-model-deployment/${ResourceId}
  (Service Authorization Reference, Amazon Bedrock:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html).
"""

from __future__ import annotations

from genai_stack.config import PROFILE_TAG
from tests.access.deployment import Deployment, Function
from tests.access.rows import Call, customization_tags, resource_tag_context

PACKAGE = "custom_model_serving"
HANDLERS = ("lambdas.custom_model_serving.handler.on_event",)
APIS = frozenset(
    {
        "stepfunctions.ListExecutions",
        "stepfunctions.StopExecution",
        "stepfunctions.DescribeStateMachineForExecution",
        "bedrock.ListProvisionedModelThroughputs",
        "bedrock.ListCustomModelDeployments",
        "bedrock.DeleteProvisionedModelThroughput",
        "bedrock.DeleteCustomModelDeployment",
    }
)


def rows(function: Function, deployment: Deployment) -> list[Call]:
    template = deployment.templates[function.stack]
    tags = customization_tags(deployment)
    # Serving created before 0.2 carries only the cost tag; that is enough to delete it.
    tagged = resource_tag_context({key: value for key, value in tags.items() if key != PROFILE_TAG})
    result = [
        Call(
            "bedrock:ListProvisionedModelThroughputs",
            "*",
            "logic.py provisioned_throughput_arns",
            api="bedrock.ListProvisionedModelThroughputs",
        ),
        Call(
            "bedrock:ListCustomModelDeployments",
            "*",
            "logic.py deployment_arns",
            api="bedrock.ListCustomModelDeployments",
        ),
        Call(
            "bedrock:DeleteProvisionedModelThroughput",
            deployment.arn("bedrock", "provisioned-model/abcd1234efgh"),
            "logic.py remove_serving (what the pipeline created carries its tags)",
            context=tagged,
            api="bedrock.DeleteProvisionedModelThroughput",
        ),
        Call(
            "bedrock:DeleteCustomModelDeployment",
            deployment.arn("bedrock", "custom-model-deployment/abcd1234efgh"),
            "logic.py remove_serving (what the pipeline created carries its tags)",
            context=tagged,
            api="bedrock.DeleteCustomModelDeployment",
        ),
        Call(
            "bedrock:DeleteProvisionedModelThroughput",
            deployment.arn("bedrock", "provisioned-model/abcd1234efgh"),
            "or with the profile's own tag only (the cost tag's value changed since it was created)",
            context=resource_tag_context({PROFILE_TAG: tags[PROFILE_TAG]}),
            api="bedrock.DeleteProvisionedModelThroughput",
        ),
        Call(
            "bedrock:DeleteProvisionedModelThroughput",
            deployment.arn("bedrock", "provisioned-model/someone-elses"),
            "not Provisioned Throughput without the pipeline's tags",
            expect="deny",
        ),
        Call(
            "bedrock:DeleteCustomModelDeployment",
            deployment.arn("bedrock", "custom-model-deployment/someone-elses"),
            "not a deployment without the pipeline's tags",
            expect="deny",
        ),
    ]
    for resource in template["Resources"].values():
        if resource["Type"] != "Custom::BedrockCustomModelServing":
            continue
        properties = deployment.resolver.resolve(function.stack, resource["Properties"])
        state_machine = properties["StateMachineArn"]
        name = state_machine.rsplit(":", 1)[-1]
        result += [
            Call(
                "states:ListExecutions",
                state_machine,
                "logic.py stop_executions",
                api="stepfunctions.ListExecutions",
            ),
            Call(
                "states:StopExecution",
                deployment.arn("states", f"execution:{name}:0f1e2d3c-aaaa-bbbb-cccc-123456789abc"),
                "logic.py stop_executions",
                api="stepfunctions.StopExecution",
            ),
            Call(
                "states:DescribeStateMachineForExecution",
                deployment.arn("states", f"execution:{name}:0f1e2d3c-aaaa-bbbb-cccc-123456789abc"),
                "logic.py reads the definition a running execution started with",
                api="stepfunctions.DescribeStateMachineForExecution",
            ),
            Call(
                "states:StopExecution",
                deployment.arn(
                    "states", "execution:another-state-machine:0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
                ),
                "only the pipeline's own executions",
                expect="deny",
            ),
        ]
    return result
