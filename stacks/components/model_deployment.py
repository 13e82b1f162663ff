"""ModelDeployment: roll an endpoint to each newly approved model version (lambdas/model_deployer).

Who owns the endpoint. The inference stack's CloudFormation creates the endpoint and owns its settings;
the model registry (through this deployer) owns which model it serves. CloudFormation never gives the
endpoint a configuration that serves the initial model once an approved version is live: between the
template's configuration and the endpoint sits a custom resource (ModelEndpoint with
`approved_models`), which hands the endpoint a copy of the new template configuration serving the live
approved model. An unchanged template makes no call at all (the CDK CLI skips an unchanged stack, and
CloudFormation updates only resources whose properties changed). The alternatives were weighed:
- CloudFormation alone with RetainAllVariantProperties: it retains only variant properties
  (DesiredInstanceCount, DesiredWeight, DataCaptureConfig; UpdateEndpoint, SageMaker API reference),
  never the model, so any template change of the configuration would put the initial model back;
- the deployer creating the endpoint itself: autoscaling, alarms and the monitoring schedule need an
  endpoint at deploy time, and a created-on-approval endpoint would leave the profile serving nothing;
- an approved-model parameter read by the template: the template could not switch between the
  initial weights (a model prefix) and a package, and a deploy would be needed to roll out.
The deployer builds each configuration from the endpoint's *current* one (logic.endpoint_config_request),
so the approved model gets exactly the template's settings: data capture with its destination, key
and CaptureContentTypeHeader, volume key, startup timeouts, routing.

Delivery. An EventBridge rule matches "SageMaker Model Package State Change" events of the configured
groups whose ModelApprovalStatus is Approved (the event also fires on creation and on rejection) and
puts them in an SQS queue; the deployer reads it one message at a time. Lambda's asynchronous retries
would not do: a function error is retried twice, one and two minutes later ("How Lambda handles errors
and retries with asynchronous invocation":
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), while a rollout
keeps an endpoint Updating for 30 minutes or more. With the queue, an approval for a busy endpoint is
reported as a batch item failure and comes back after the queue's visibility timeout (RETRY_DELAY):
"After your queue's visibility timeout runs out, the message will again reappear in the queue"
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). After MAX_WAIT
(maxReceiveCount receptions) SQS moves it to the KMS-encrypted dead-letter queue, whose depth is
alarmed; failures that waiting cannot fix are sent there by the deployer at once. The visibility
timeout is at least six times the function timeout, as the Lambda guide asks ("Creating and
configuring an Amazon SQS event source mapping":
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).

Outcome. UpdateEndpoint returns as soon as the rollout starts, and a rollout that fails (the new model
does not load or pass its health check in time) is rolled back by SageMaker: the endpoint keeps serving
the previous model and reports InService with a FailureReason (SageMaker API reference,
EndpointMetadata: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointMetadata.html).
Rather than hold a Lambda for a 30-60 minute rollout, a second rule puts the endpoints' "SageMaker
Endpoint State Change" events ("Events that Amazon SageMaker AI sends to Amazon EventBridge":
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html) into the
same queue; the deployer publishes RolloutFailed (GenAiStack/ModelRegistry, EndpointName) for a failed
or rolled-back update, and `monitor` raises an alarm on it through the MonitoringHub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from genai_stack import compliance
from genai_stack.compliance import Acknowledgement, CheckovSkip, nag_resource
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction
from genai_stack.components.tag_conditions import request_tags, sagemaker_tag_on_create, tag_scoped
from genai_stack.components.training_pipeline import SAGEMAKER_NAME, sagemaker_arn

# lambdas/model_deployer/handler.py names its entry point `handler`, not PythonFunction's `on_event`.
DEPLOYER_ENTRY_POINT = "lambdas.model_deployer.handler.handler"
DETAIL_TYPE = "SageMaker Model Package State Change"
ENDPOINT_DETAIL_TYPE = "SageMaker Endpoint State Change"
NAMESPACE = "GenAiStack/ModelRegistry"  # lambdas/model_deployer/handler.py NAMESPACE
ALARM_PERIOD = Duration.minutes(5)
# The deployer names models and endpoint configs `<endpoint>-v<version>-<8 hex digits>` and cuts the
# endpoint name to fit 63 characters (lambdas/model_deployer/logic.py resource_name). Up to this
# length (versions below 10^8) the name is never cut, so `<endpoint>-v*` covers every name it makes.
ENDPOINT_NAME_MAX = 63 - len("-v") - 8 - len("-") - 8
FUNCTION_TIMEOUT = Duration.seconds(60)
# An approval for a busy endpoint is tried again every RETRY_DELAY, for MAX_WAIT at most.
RETRY_DELAY = Duration.minutes(10)
MAX_WAIT = Duration.hours(6)
MAX_RECEIVES = int(MAX_WAIT.to_seconds() // RETRY_DELAY.to_seconds())
# EventBridge's delivery to the queue (the target's retry policy).
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(6)

APPROVALS_SQS_MANAGED_ENCRYPTION = CheckovSkip(
    check="CKV_AWS_27",
    reason=(
        "The approvals queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which "
        "checkov does not recognise. It holds SageMaker state-change events only (model package and "
        "endpoint names, ARNs, statuses and failure reasons); "
        "a customer managed key would need a key-policy grant to events.amazonaws.com on the platform key."
    ),
)
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
ENDPOINT_CONFIGS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "sagemaker:DescribeEndpointConfig (read-only) on this account's endpoint configurations: the "
        "deployer copies the endpoint's current configuration, which may be the inference stack's own, "
        "whose name CloudFormation generates and SageMaker lowercases in its ARN, so no exact ARN can be "
        "written into the policy."
    ),
)


@dataclass(frozen=True)
class EndpointDeployment:
    """One DEPLOYMENTS item of lambdas/model_deployer: which endpoint the approved versions of a group
    go to, and how their models are made. A group deployed to several endpoints has one item per
    endpoint; the deployer rolls each of them on one approval. The endpoint's settings (instance type
    and count, data capture, keys) are not repeated here: the deployer copies them from the endpoint's
    configuration.

    `kms_key_arn` is the key that configuration uses (storage volume and/or captured data): the deployer
    creates configurations with it, so it may create grants on it for SageMaker.
    """

    model_package_group: str
    endpoint_name: str
    execution_role_arn: str
    kms_key_arn: str | None = None
    enable_network_isolation: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        found = []
        for label, name in (
            ("model_package_group", self.model_package_group),
            ("endpoint_name", self.endpoint_name),
        ):
            if not SAGEMAKER_NAME.match(name):
                found.append(f"{label} {name!r} is not a SageMaker name")
        if len(self.endpoint_name) > ENDPOINT_NAME_MAX:
            found.append(
                f"endpoint_name {self.endpoint_name!r} is longer than {ENDPOINT_NAME_MAX} characters, "
                "so the deployer would cut it in model names and the IAM policy could not name them"
            )
        return [f"deployment of {self.model_package_group}: {p}" for p in found]

    def as_environment_item(self) -> dict[str, object]:
        """The item exactly as lambdas/model_deployer/handler.py's _Deployment validates it."""
        return {
            "model_package_group": self.model_package_group,
            "endpoint_name": self.endpoint_name,
            "execution_role_arn": self.execution_role_arn,
            "enable_network_isolation": self.enable_network_isolation,
            "environment": dict(self.environment),
        }


class ModelDeployment(Construct):
    """The deployer function (lambdas/model_deployer) with DEPLOYMENTS built from `deployments`, the
    EventBridge rule on approvals of their groups into the approvals queue (SQS-managed encryption, TLS
    only), its event source mapping, the dead-letter queue (encrypted with `encryption_key`, TLS only),
    and exactly the IAM the deployer needs:

    - sagemaker:DescribeModelPackage on the groups' versions; sagemaker:ListModelPackages (no resource);
    - sagemaker:CreateModel / CreateEndpointConfig on `model/<endpoint>-v*` / `endpoint-config/<endpoint>-v*`;
    - sagemaker:UpdateEndpoint on `endpoint/<endpoint>` and its tagged configs (never CreateEndpoint: the
      inference stack creates the endpoint), sagemaker:DescribeEndpoint on `endpoint/<endpoint>`,
      sagemaker:DescribeEndpointConfig on `endpoint-config/*` (see ENDPOINT_CONFIGS);
    - iam:PassRole on the execution roles, to SageMaker only;
    - kms:CreateGrant (for AWS resources) and kms:DescribeKey on the keys the endpoints use;
    - consuming the approvals queue (the event source mapping), sending to the dead-letter queue.

    A second rule puts the endpoints' state changes into the same queue: the rollouts' outcomes, which
    `monitor` alarms on (RolloutFailed, see the module docstring).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployments: Sequence[EndpointDeployment],
        encryption_key: kms.IKey,
        log_retention_days: int,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`tags`: put on every model and endpoint configuration the deployer creates, which it may
        create only with exactly them (aws:RequestTag, aws:TagKeys)."""
        super().__init__(scope, construct_id)
        tags = dict(tags or {})
        if not deployments:
            raise ValueError("ModelDeployment needs at least one deployment")
        problems = [p for d in deployments for p in d.problems()]
        # A group may be deployed to several endpoints (one approval rolls each); an endpoint serves
        # the approved versions of one group.
        endpoint_names = [d.endpoint_name for d in deployments]
        problems += [
            f"endpoint_name {v!r} is used by more than one deployment"
            for v in sorted(set(endpoint_names))
            if endpoint_names.count(v) > 1
        ]
        if problems:
            raise ValueError("; ".join(problems))
        stack = Stack.of(self)
        self.deployments = tuple(deployments)
        groups = list(dict.fromkeys(d.model_package_group for d in deployments))

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # SageMaker state-change events only (approvals, endpoint statuses): SQS-managed encryption, which
        # EventBridge can write to without a grant on a customer managed key.
        self.approvals = sqs.Queue(
            self,
            "Approvals",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=RETRY_DELAY,
            retention_period=MAX_WAIT.plus(Duration.days(1)),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVES, queue=self.dead_letters),
        )
        compliance.skip_checkov(self.approvals.node.default_child, APPROVALS_SQS_MANAGED_ENCRYPTION)

        self.handler = PythonFunction(
            self,
            "Deployer",
            package="model_deployer",
            description="genai-stack: deploy approved model package versions to their SageMaker endpoints",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={
                "DEPLOYMENTS": stack.to_json_string(
                    [{**d.as_environment_item(), "tags": tags} for d in deployments]
                ),
                "DEAD_LETTER_QUEUE_URL": self.dead_letters.queue_url,
            },
            timeout_seconds=int(FUNCTION_TIMEOUT.to_seconds()),
        )
        function = self.handler.function
        function.node.default_child.handler = DEPLOYER_ENTRY_POINT

        versions = [sagemaker_arn(stack, "model-package", f"{g}/*") for g in groups]
        models = [sagemaker_arn(stack, "model", f"{d.endpoint_name}-v*") for d in deployments]
        configs = [sagemaker_arn(stack, "endpoint-config", f"{d.endpoint_name}-v*") for d in deployments]
        endpoints = [sagemaker_arn(stack, "endpoint", d.endpoint_name) for d in deployments]
        all_configs = sagemaker_arn(stack, "endpoint-config", "*")
        statements = [
            iam.PolicyStatement(
                sid="ReadApprovedVersions", actions=["sagemaker:DescribeModelPackage"], resources=versions
            ),
            iam.PolicyStatement(
                sid="FindTheLatestVersion", actions=["sagemaker:ListModelPackages"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="CreateModels",
                actions=["sagemaker:CreateModel"],
                resources=models,
                conditions=request_tags(tags),
            ),
            iam.PolicyStatement(
                sid="CreateEndpointConfigs",
                actions=["sagemaker:CreateEndpointConfig"],
                resources=configs,
                conditions=request_tags(tags),
            ),
            *(
                [
                    sagemaker_tag_on_create(
                        "TagModelsAndConfigsOnCreation",
                        [*models, *configs],
                        tags,
                        ["CreateModel", "CreateEndpointConfig"],
                    )
                ]
                if tags
                else []
            ),
            # UpdateEndpoint is authorized on the endpoint and on the configuration it rolls to (Service
            # Authorization Reference, SageMaker AI): the endpoints by exact ARN; the configurations,
            # which the deployer creates with `tags`, only when they carry one of them (lambdas/
            # model_deployer/logic.py explains a refusal for an untagged one that 0.1 made).
            iam.PolicyStatement(
                sid="RollTheEndpoints", actions=["sagemaker:UpdateEndpoint"], resources=endpoints
            ),
            *tag_scoped("RollToTaggedConfigs", ["sagemaker:UpdateEndpoint"], configs, tags),
            iam.PolicyStatement(
                sid="WatchTheEndpoints", actions=["sagemaker:DescribeEndpoint"], resources=endpoints
            ),
            iam.PolicyStatement(
                sid="CopyTheEndpointConfigs",
                actions=["sagemaker:DescribeEndpointConfig"],
                resources=[all_configs],
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
            ENDPOINT_CONFIGS.on(nag_resource(self, all_configs)),
        )

        # One approval per invocation; a busy endpoint's approval is a batch item failure and waits.
        function.add_event_source(
            event_sources.SqsEventSource(
                self.approvals, batch_size=1, report_batch_item_failures=True, max_concurrency=2
            )
        )
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
                targets.SqsQueue(self.approvals, retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE)
            ],
        )
        # The rollouts' outcomes: every state change of the deployed endpoints (EndpointStatus is not
        # matched: the event spells it unlike the API, and InService with a FailureReason is a failure).
        self.outcome_rule = events.Rule(
            self,
            "OnEndpointStateChange",
            description="Report the outcome of model rollouts (failed or rolled-back endpoint updates)",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[ENDPOINT_DETAIL_TYPE],
                detail={"EndpointName": [d.endpoint_name for d in deployments]},
            ),
            targets=[
                targets.SqsQueue(self.approvals, retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE)
            ],
        )

    def rollout_failures(self, endpoint_name: str, period: Duration = ALARM_PERIOD) -> cw.Metric:
        """RolloutFailed of one endpoint, exactly as lambdas/model_deployer/handler.py publishes it
        (single_metric: the namespace, EndpointName and Powertools' service dimension)."""
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name="RolloutFailed",
            dimensions_map=self.handler.emf_dimensions(EndpointName=endpoint_name),
            statistic="Sum",
            period=period,
        )

    def monitor(self, hub: MonitoringHub) -> None:
        """Alarms as soon as a failed deployment is in the dead-letter queue and when a rollout fails
        (per endpoint); rollouts, failures and errors on the dashboard."""
        period = Duration.minutes(5)
        self.rollout_alarms = []
        for deployment in self.deployments:
            alarm = cw.Alarm(
                self,
                f"RolloutFailed-{deployment.endpoint_name}",
                alarm_description=(
                    f"Model deployment: an update of endpoint {deployment.endpoint_name} failed or was "
                    "rolled back by SageMaker (it serves its previous model); see FailureReason in the "
                    "deployer's logs and DescribeEndpoint"
                ),
                metric=self.rollout_failures(deployment.endpoint_name, period),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # Published only when a rollout fails: no data is no failure.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            hub.add_alarm(alarm)
            self.rollout_alarms.append(alarm)
        waiting = self.dead_letters.metric_approximate_number_of_messages_visible(
            period=period, statistic="Maximum"
        )
        hub.add_alarm(
            cw.Alarm(
                self,
                "FailedDeployments",
                alarm_description=(
                    "Model deployment: an approved model version could not be deployed (refused, or its "
                    "endpoint stayed busy for 6 hours); the event is in the dead-letter queue, see the "
                    "deployer's logs"
                ),
                metric=waiting,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # SQS publishes a queue's metrics only while it is active, up to six hours after the
                # last send or receive ("Available CloudWatch metrics for Amazon SQS": "all metrics
                # emit non-negative values only when the queue is active"; SQS developer guide,
                # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html).
                # A message that sits in the dead-letter queue stops the data after six hours:
                # notBreaching would turn the alarm OK with the failure still there. ignore keeps
                # the state until data says otherwise (the queue is redriven or purged).
                treat_missing_data=cw.TreatMissingData.IGNORE,
            )
        )
        function = self.handler.function
        deployed = [
            cw.Metric(
                namespace=NAMESPACE,
                metric_name="ModelDeployed",
                dimensions_map=self.handler.emf_dimensions(EndpointName=d.endpoint_name),
                statistic="Sum",
                period=Duration.hours(1),
                label=d.endpoint_name,
            )
            for d in self.deployments
        ]
        hub.add_section(
            "Model deployment",
            [
                cw.GraphWidget(
                    title="Rollouts started / failed per hour",
                    left=deployed,
                    right=[
                        self.rollout_failures(d.endpoint_name, Duration.hours(1)).with_(
                            label=f"{d.endpoint_name} failed"
                        )
                        for d in self.deployments
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Deployer invocations and errors",
                    left=[function.metric_invocations(period=period), function.metric_errors(period=period)],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Approvals waiting / dead-lettered",
                    left=[
                        self.approvals.metric_approximate_number_of_messages_not_visible(period=period),
                        waiting,
                    ],
                    width=8,
                ),
            ],
        )
