"""Model deployer (lambdas/model_deployer).

handler.py (SQS approvals, logic.py deploy): lists the group's approved versions, describes the
package, the endpoint and its current endpoint configuration, creates a model (passing the
endpoint's execution role) and an endpoint configuration named after the version, updates the
endpoint; a failed approval is sent to the dead-letter queue (sqs SendMessage).
endpoint_settings.py (custom resource, logic.py config_for_settings): describes the endpoint and its
configurations and creates a copy of the template's configuration serving the approved model.

ARN formats (Service Authorization Reference, Amazon SageMaker AI; SageMaker stores names lower case
in ARNs): model-package/${ModelPackageName} (a versioned package: GROUP/VERSION), model/${ModelName},
endpoint-config/${EndpointConfigName}, endpoint/${EndpointName}; ListModelPackages has no resource
type ("*"): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
CreateModel passes ExecutionRoleArn: iam:PassRole with iam:PassedToService sagemaker.amazonaws.com
("SageMaker AI roles": https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html).
SQS queue ARN: arn:${Partition}:sqs:${Region}:${Account}:${QueueName} (Service Authorization Reference, SQS).
Models and configurations are created with the deployment's tags (DEPLOYMENTS `tags`; the custom
resource's `Tags` property): the create carries them (aws:RequestTag, aws:TagKeys) and SageMaker
authorizes them as sagemaker:AddTags with sagemaker:TaggingAction naming the create.
"""

from __future__ import annotations

import json

from lambdas.model_deployer.logic import resource_name
from tests.access.deployment import Deployment, Function
from tests.access.rows import Call, resource_tag_context, sagemaker_tagged_create
from tests.access.rows.lambda_runtime import queue_rows

PACKAGE = "model_deployer"
HANDLERS = ("lambdas.model_deployer.handler.handler", "lambdas.model_deployer.endpoint_settings.on_event")
APIS = frozenset(
    {
        "sagemaker.ListModelPackages",
        "sagemaker.DescribeModelPackage",
        "sagemaker.DescribeEndpoint",
        "sagemaker.DescribeEndpointConfig",
        "sagemaker.CreateModel",
        "sagemaker.CreateEndpointConfig",
        "sagemaker.UpdateEndpoint",
        "sqs.SendMessage",
    }
)
PASSED = {"iam:PassedToService": "sagemaker.amazonaws.com"}
DIGEST = "0123456789abcdef"


def _sagemaker(deployment: Deployment, resource: str) -> str:
    return deployment.arn("sagemaker", resource.lower())


def _template_configs(deployment: Deployment, endpoint: str) -> list[str]:
    """Names of the endpoint configurations the inference stack's templates create for `endpoint`."""
    names = []
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::SageMaker::Endpoint":
                continue
            if deployment.resolver.get_att(stack, logical_id, "EndpointName") != endpoint:
                continue
            names.append(deployment.resolver.resolve(stack, resource["Properties"]["EndpointConfigName"]))
    return names


def _config_rows(deployment: Deployment, endpoint: str, api: str, tags: dict[str, str]) -> list[Call]:
    versioned = resource_name(endpoint, 3, DIGEST)
    return [
        Call(
            "sagemaker:DescribeEndpoint",
            _sagemaker(deployment, f"endpoint/{endpoint}"),
            "logic.py describe_endpoint",
            api="sagemaker.DescribeEndpoint",
        ),
        Call(
            "sagemaker:DescribeEndpointConfig",
            _sagemaker(deployment, f"endpoint-config/{versioned}"),
            "an approved version's configuration",
            api="sagemaker.DescribeEndpointConfig",
        ),
        *[
            Call(
                "sagemaker:DescribeEndpointConfig",
                _sagemaker(deployment, f"endpoint-config/{name}"),
                "the inference stack's configuration",
                api="sagemaker.DescribeEndpointConfig",
            )
            for name in _template_configs(deployment, endpoint)
        ],
        *sagemaker_tagged_create(
            "sagemaker:CreateEndpointConfig",
            _sagemaker(deployment, f"endpoint-config/{versioned}"),
            tags,
            "logic.py endpoint_config_request",
            api,
        ),
        Call(
            "sagemaker:CreateEndpointConfig",
            _sagemaker(deployment, f"endpoint-config/{resource_name('another-endpoint', 3, DIGEST)}"),
            "configurations for other endpoints",
            expect="deny",
        ),
    ]


def rows(function: Function, deployment: Deployment) -> list[Call]:
    if function.handler.endswith("endpoint_settings.on_event"):
        # Each endpoint's custom resource has its own handler (ModelEndpoint's ApprovedModelConfig):
        # the rows of the custom resource beside this function only (several with a multi-endpoint
        # deploy_to, issue 19).
        owner = function.path.split("/Handler/")[0] + "/"
        result = []
        for resource in deployment.templates[function.stack]["Resources"].values():
            path = resource.get("Metadata", {}).get("aws:cdk:path", "")
            if resource["Type"] == "Custom::ApprovedModelEndpointConfig" and path.startswith(owner):
                endpoint = deployment.resolver.resolve(function.stack, resource["Properties"]["EndpointName"])
                tags = deployment.resolver.resolve(function.stack, resource["Properties"]["Tags"])
                result += _config_rows(deployment, endpoint, "sagemaker.CreateEndpointConfig", tags)
        assert result, f"no Custom::ApprovedModelEndpointConfig beside {function.path}"
        return result

    result = [
        Call(
            "sagemaker:ListModelPackages",
            "*",
            "logic.py latest_approved_package",
            api="sagemaker.ListModelPackages",
        )
    ]
    for item in json.loads(function.environment["DEPLOYMENTS"]):
        group, endpoint = item["model_package_group"], item["endpoint_name"]
        model = resource_name(endpoint, 3, DIGEST)
        result += _config_rows(deployment, endpoint, "sagemaker.CreateEndpointConfig", item["tags"])
        result += sagemaker_tagged_create(
            "sagemaker:CreateModel",
            _sagemaker(deployment, f"model/{model}"),
            item["tags"],
            "logic.py deploy",
            "sagemaker.CreateModel",
        )
        result += [
            Call(
                "sagemaker:DescribeModelPackage",
                _sagemaker(deployment, f"model-package/{group}/3"),
                "logic.py deploy",
                api="sagemaker.DescribeModelPackage",
            ),
            Call(
                "iam:PassRole",
                item["execution_role_arn"],
                "CreateModel passes the endpoint's execution role",
                context=PASSED,
                api="sagemaker.CreateModel",
            ),
            Call(
                "sagemaker:UpdateEndpoint",
                _sagemaker(deployment, f"endpoint/{endpoint}"),
                "logic.py deploy",
                api="sagemaker.UpdateEndpoint",
            ),
            # ... and on the configuration it rolls to, which it created with the profile's tags.
            Call(
                "sagemaker:UpdateEndpoint",
                _sagemaker(deployment, f"endpoint-config/{model}"),
                "logic.py deploy: the configuration it rolls to",
                context=resource_tag_context(item["tags"]),
                api="sagemaker.UpdateEndpoint",
            ),
            *(
                [
                    Call(
                        "sagemaker:UpdateEndpoint",
                        _sagemaker(deployment, f"endpoint-config/{model}"),
                        "not to an untagged configuration (0.1 made those)",
                        expect="deny",
                    )
                ]
                if item["tags"]
                else []
            ),
            Call(
                "sagemaker:DescribeModelPackage",
                _sagemaker(deployment, "model-package/another-group/3"),
                "another group's packages",
                expect="deny",
            ),
            Call(
                "sagemaker:CreateModel",
                _sagemaker(deployment, f"model/{resource_name('another-endpoint', 3, DIGEST)}"),
                "models for other endpoints",
                expect="deny",
            ),
            Call(
                "sagemaker:UpdateEndpoint",
                _sagemaker(deployment, "endpoint/another-endpoint"),
                "another endpoint",
                expect="deny",
            ),
            Call(
                "iam:PassRole",
                deployment.arn("iam", "role/another-role", region=""),
                "no other role",
                context=PASSED,
                expect="deny",
            ),
        ]
    queue_url = function.environment.get("DEAD_LETTER_QUEUE_URL")
    if queue_url:
        queue = deployment.arn("sqs", queue_url.rsplit("/", 1)[-1])
        result += queue_rows(
            deployment,
            queue,
            ["sqs:SendMessage"],
            "handler.py sends a failed approval to the dead-letter queue",
            api="sqs.SendMessage",
        )
    return result
