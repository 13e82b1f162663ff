"""ModelDeployment: roll an endpoint to each newly approved model version (lambdas/model_deployer).

An EventBridge rule matches "SageMaker Model Package State Change" events of the configured model
package groups whose ModelApprovalStatus is Approved (the event also fires on creation and on
rejection, hence the status filter) and invokes the deployer asynchronously. The deployer creates a
Model and EndpointConfig named `<endpoint>-v<version>-<digest>` and creates or updates the
endpoint. A failed deployment is retried by Lambda (twice, for up to six hours: an endpoint that is
busy updating raises, so the event comes back later) and then lands in a KMS-encrypted dead-letter
queue, whose depth is alarmed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import compliance
from stacks.compliance import Acknowledgement, nag_resource
from stacks.components.monitoring import MonitoringHub
from stacks.components.python_function import PythonFunction
from stacks.components.training_pipeline import SAGEMAKER_NAME, sagemaker_arn

# lambdas/model_deployer/handler.py names its entry point `handler`, not PythonFunction's `on_event`.
DEPLOYER_ENTRY_POINT = "lambdas.model_deployer.handler.handler"
DETAIL_TYPE = "SageMaker Model Package State Change"
# The deployer names models and endpoint configs `<endpoint>-v<version>-<8 hex digits>` and cuts the
# endpoint name to fit 63 characters (lambdas/model_deployer/logic.py resource_name). Up to this
# length (versions below 10^8) the name is never cut, so `<endpoint>-v*` covers every name it makes.
ENDPOINT_NAME_MAX = 63 - len("-v") - 8 - len("-") - 8
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(6)

MODEL_PACKAGE_LISTING = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "sagemaker:ListModelPackages (the deployer's check that an event names the group's latest "
        "approved version) takes no resource: 'Except for the ListTags API, resource-level restrictions are "
        "not available on List- calls' (SageMaker developer guide, API permissions reference). It returns "
        "package metadata only; describing a package is limited to the configured groups."
    ),
)
DEPLOYED_VERSIONS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The deployer describes the approved versions of its configured model package groups "
        "(model-package/<group>/<n>) and creates one model and endpoint configuration per version, "
        "named <endpoint>-v<version>-<digest>; the version numbers are SageMaker's."
    ),
)
DEAD_LETTERS_NOT_REDRIVEN = Acknowledgement(
    finding="AwsSolutions-SQS3",
    reason=(
        "This queue is itself the dead-letter queue: the on-failure destination of the deployer's "
        "asynchronous invocations (cdk-nag only recognises redrive policies of other queues)."
    ),
)


@dataclass(frozen=True)
class EndpointDeployment:
    """One DEPLOYMENTS item of lambdas/model_deployer: where the approved versions of a group go.

    `kms_key_arn` encrypts the endpoint's storage volume and the captured data; leave it unset for
    instance types with local NVMe storage (ml.g5, ml.g6), for which SageMaker refuses the key.
    """

    model_package_group: str
    endpoint_name: str
    execution_role_arn: str
    instance_type: str
    initial_instance_count: int
    kms_key_arn: str | None = None
    data_capture_s3_uri: str | None = None
    data_capture_percentage: int = 100
    enable_network_isolation: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    variant_name: str = "AllTraffic"

    def problems(self) -> list[str]:
        found = []
        for label, name in (
            ("model_package_group", self.model_package_group),
            ("endpoint_name", self.endpoint_name),
            ("variant_name", self.variant_name),
        ):
            if not SAGEMAKER_NAME.match(name):
                found.append(f"{label} {name!r} is not a SageMaker name")
        if len(self.endpoint_name) > ENDPOINT_NAME_MAX:
            found.append(
                f"endpoint_name {self.endpoint_name!r} is longer than {ENDPOINT_NAME_MAX} characters, "
                "so the deployer would cut it in model names and the IAM policy could not name them"
            )
        if not re.match(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$", self.instance_type):
            found.append(f"instance_type {self.instance_type!r} is not an ml.* instance type")
        if self.initial_instance_count < 1:
            found.append("initial_instance_count must be at least 1")
        if not 1 <= self.data_capture_percentage <= 100:
            found.append("data_capture_percentage must be between 1 and 100")
        return [f"deployment of {self.model_package_group}: {p}" for p in found]

    def as_environment_item(self) -> dict[str, object]:
        """The item exactly as lambdas/model_deployer/handler.py's _Deployment validates it (unset
        optional fields are left out; the capture percentage only goes with a capture destination)."""
        item: dict[str, object] = {
            "model_package_group": self.model_package_group,
            "endpoint_name": self.endpoint_name,
            "execution_role_arn": self.execution_role_arn,
            "instance_type": self.instance_type,
            "initial_instance_count": self.initial_instance_count,
            "variant_name": self.variant_name,
            "enable_network_isolation": self.enable_network_isolation,
            "environment": dict(self.environment),
        }
        if self.kms_key_arn is not None:
            item["kms_key_arn"] = self.kms_key_arn
        if self.data_capture_s3_uri is not None:
            item["data_capture_s3_uri"] = self.data_capture_s3_uri
            item["data_capture_percentage"] = self.data_capture_percentage
        return item


class ModelDeployment(Construct):
    """The deployer function (lambdas/model_deployer) with DEPLOYMENTS built from `deployments`, the
    EventBridge rule on approvals of their groups, Lambda's asynchronous retries with a dead-letter
    queue (encrypted with `encryption_key`, TLS only), and exactly the IAM the deployer needs:

    - sagemaker:DescribeModelPackage on the groups' versions; sagemaker:ListModelPackages (no resource);
    - sagemaker:CreateModel / CreateEndpointConfig on `model/<endpoint>-v*` / `endpoint-config/<endpoint>-v*`;
    - sagemaker:CreateEndpoint / UpdateEndpoint on `endpoint/<endpoint>` and its configs,
      sagemaker:DescribeEndpoint on `endpoint/<endpoint>`;
    - iam:PassRole on the execution roles, to SageMaker only;
    - kms:CreateGrant (for AWS resources) and kms:DescribeKey on the keys the endpoints use.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployments: Sequence[EndpointDeployment],
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if not deployments:
            raise ValueError("ModelDeployment needs at least one deployment")
        problems = [p for d in deployments for p in d.problems()]
        for key in ("model_package_group", "endpoint_name"):
            values = [getattr(d, key) for d in deployments]
            problems += [
                f"{key} {v!r} is used by more than one deployment"
                for v in sorted(set(values))
                if values.count(v) > 1
            ]
        if problems:
            raise ValueError("; ".join(problems))
        stack = Stack.of(self)
        self.deployments = tuple(deployments)
        groups = [d.model_package_group for d in deployments]

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        compliance.acknowledge(self.dead_letters, DEAD_LETTERS_NOT_REDRIVEN)

        self.handler = PythonFunction(
            self,
            "Deployer",
            package="model_deployer",
            description="genai-stack: deploy approved model package versions to their SageMaker endpoints",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={
                "DEPLOYMENTS": stack.to_json_string([d.as_environment_item() for d in deployments]),
            },
            timeout_seconds=60,
        )
        function = self.handler.function
        function.node.default_child.handler = DEPLOYER_ENTRY_POINT

        versions = [sagemaker_arn(stack, "model-package", f"{g}/*") for g in groups]
        models = [sagemaker_arn(stack, "model", f"{d.endpoint_name}-v*") for d in deployments]
        configs = [sagemaker_arn(stack, "endpoint-config", f"{d.endpoint_name}-v*") for d in deployments]
        endpoints = [sagemaker_arn(stack, "endpoint", d.endpoint_name) for d in deployments]
        statements = [
            iam.PolicyStatement(
                sid="ReadApprovedVersions", actions=["sagemaker:DescribeModelPackage"], resources=versions
            ),
            iam.PolicyStatement(
                sid="FindTheLatestVersion", actions=["sagemaker:ListModelPackages"], resources=["*"]
            ),
            iam.PolicyStatement(sid="CreateModels", actions=["sagemaker:CreateModel"], resources=models),
            iam.PolicyStatement(
                sid="CreateEndpointConfigs", actions=["sagemaker:CreateEndpointConfig"], resources=configs
            ),
            iam.PolicyStatement(
                sid="RollTheEndpoints",
                actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[*endpoints, *configs],
            ),
            iam.PolicyStatement(
                sid="WatchTheEndpoints", actions=["sagemaker:DescribeEndpoint"], resources=endpoints
            ),
            iam.PolicyStatement(
                sid="PassTheExecutionRoles",
                actions=["iam:PassRole"],
                resources=sorted({d.execution_role_arn for d in deployments}, key=str),
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="ReportFailures",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letters.queue_arn],
            ),
            iam.PolicyStatement(
                sid="EncryptFailureReports",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[encryption_key.key_arn],
            ),
        ]
        keys = sorted({d.kms_key_arn for d in deployments if d.kms_key_arn}, key=str)
        if keys:
            # CreateEndpointConfig with KmsKeyId: the caller lets SageMaker use the key (grants for
            # the endpoint's volumes and captured data).
            statements += [
                iam.PolicyStatement(
                    sid="LetEndpointsUseTheirKeys",
                    actions=["kms:CreateGrant"],
                    resources=keys,
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
                iam.PolicyStatement(sid="CheckTheKeys", actions=["kms:DescribeKey"], resources=keys),
            ]
        for statement in statements:
            self.handler.role.add_to_policy(statement)
        compliance.acknowledge(
            self.handler.role,
            MODEL_PACKAGE_LISTING,
            *(DEPLOYED_VERSIONS.on(nag_resource(self, arn)) for arn in [*versions, *models, *configs]),
        )

        # Lambda's asynchronous retries (function errors: a busy endpoint, throttling) and the queue
        # for what still fails. The role must be allowed to send before the configuration is made.
        invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncInvoke",
            function_name=function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.dead_letters.queue_arn
                )
            ),
        )
        invoke_config.node.add_dependency(self.handler.role)

        self.rule = events.Rule(
            self,
            "OnApproval",
            description="Deploy a model package version when it is approved",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[DETAIL_TYPE],
                detail={"ModelPackageGroupName": groups, "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[
                targets.LambdaFunction(function, retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE)
            ],
        )

    def monitor(self, hub: MonitoringHub) -> None:
        """An alarm as soon as a failed deployment is in the dead-letter queue; deployments and errors."""
        period = Duration.minutes(5)
        waiting = self.dead_letters.metric_approximate_number_of_messages_visible(
            period=period, statistic="Maximum"
        )
        hub.add_alarm(
            cw.Alarm(
                self,
                "FailedDeployments",
                alarm_description=(
                    "Model deployment: an approved model version could not be deployed after retries "
                    "(the event is in the dead-letter queue; see the deployer's logs)"
                ),
                metric=waiting,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        function = self.handler.function
        deployed = [
            cw.Metric(
                namespace="GenAiStack/ModelRegistry",  # lambdas/model_deployer/handler.py NAMESPACE
                metric_name="ModelDeployed",
                dimensions_map={"EndpointName": d.endpoint_name},
                statistic="Sum",
                period=Duration.hours(1),
                label=d.endpoint_name,
            )
            for d in self.deployments
        ]
        hub.add_section(
            "Model deployment",
            [
                cw.GraphWidget(title="Versions deployed per hour", left=deployed, width=8),
                cw.GraphWidget(
                    title="Deployer invocations and errors",
                    left=[function.metric_invocations(period=period), function.metric_errors(period=period)],
                    width=8,
                ),
                cw.GraphWidget(title="Dead-letter queue", left=[waiting], width=8),
            ],
        )
