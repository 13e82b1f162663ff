"""BedrockCustomization: a Step Functions pipeline that customizes a Bedrock base model (fine-tuning or
continued pre-training) and then makes the custom model callable, on demand or on Provisioned
Throughput, with a custom resource that removes that serving when the stack goes."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from genai_stack import compliance
from genai_stack.compliance import STATE_MACHINE_DELIVERY_AND_TRACING, Acknowledgement, nag_resource
from genai_stack.components.bedrock_customization_role import output_prefix, training_key, validation_key
from genai_stack.components.model_access import foundation_model_arn
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.tag_conditions import request_tags, tag_scoped, through
from genai_stack.config import BedrockCustomization as BedrockCustomizationSettings

# Bedrock names: jobs [a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*, custom models, Provisioned Throughputs and
# deployments ([0-9a-zA-Z][_-]?){1,63} (botocore model bedrock 2023-04-20). Letters and digits with
# single hyphens between them satisfy both.
NAME = re.compile(r"^[0-9a-zA-Z](-?[0-9a-zA-Z])*$")
NAME_MAX = 63
RUN_ID_LENGTH = 12  # the last group of a UUID: 12 random hex digits, one per execution
PREFIX_MAX = NAME_MAX - 1 - RUN_ID_LENGTH

# Errors a Bedrock call may succeed after: retried with backoff. Names as Step Functions reports
# AWS SDK service exceptions (`<Service>.<Exception>`).
TRANSIENT_ERRORS = ["Bedrock.ThrottlingException", "Bedrock.InternalServerException"]
NOT_FOUND = ["Bedrock.ResourceNotFoundException"]
# Errors the deployment task (a Lambda function) may succeed after: Lambda's transient service errors
# (Step Functions developer guide, "Handle Lambda service exceptions":
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html) and the
# function's own Bedrock throttling/internal errors, reported under their exception names.
DEPLOYMENT_TRANSIENT_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "ThrottlingException",
    "InternalServerException",
]

# --------------------------------------------------------------------------------------------------
# Acknowledged findings: every wildcard below is a resource whose ARN Bedrock or Step Functions
# generates at run time, so no name of ours can narrow it.

GENERATED_BEDROCK_ARNS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Bedrock generates the ARNs of customization jobs, custom models, Provisioned Throughputs and "
        "custom model deployments (<type>/<base model>/<random id> or <type>/<random id>); the names this "
        "pipeline gives them are not part of the ARN, so the actions are scoped to the resource type in this "
        "account and region (as the Step Functions developer guide's Bedrock policies are). The base model, "
        "the passed role and the KMS key are exact ARNs."
    ),
)

SERVING_LISTS = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "bedrock:ListProvisionedModelThroughputs and bedrock:ListCustomModelDeployments have no resource "
        "type and accept only '*'; the handler deletes only the resources whose names are exactly this "
        "pipeline's."
    ),
)

PIPELINE_EXECUTIONS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Step Functions names executions at run time; states:StopExecution is limited to the executions of "
        "this one state machine (execution:<state machine name>:*)."
    ),
)


def provisioned_model_name(job_prefix: str) -> str:
    """The one Provisioned Throughput of a pipeline: each run moves it to the newest custom model."""
    return f"{job_prefix}-pt"


def deployment_name(job_prefix: str) -> str:
    """The one on-demand custom model deployment of a pipeline: each run moves it to the newest model."""
    return f"{job_prefix}-on-demand"


def check_job_prefix(job_prefix: str) -> None:
    """ValueError for a name base Bedrock would reject once a run id is appended."""
    if len(job_prefix) > PREFIX_MAX or not NAME.match(job_prefix):
        raise ValueError(
            f"{job_prefix!r} cannot name Bedrock customization jobs and custom models: at most {PREFIX_MAX} "
            "letters and digits, single '-' between them (a run id of 13 characters is appended, "
            f"within Bedrock's {NAME_MAX}); shorten the profile or customization name"
        )


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


class BedrockCustomization(Construct):
    """A Standard Step Functions state machine that runs one Bedrock model customization per execution
    and then, per `settings.serving`, makes the new custom model callable:

    1. `NameTheRun` draws a run id; the job and the custom model are named `<job_prefix>-<run id>`;
    2. `Customize` runs CreateModelCustomizationJob with `.sync` (Step Functions waits for the job, and
       stops it if the execution is stopped), training on `<data_prefix>train.jsonl` (and
       `validation.jsonl`) of the data bucket, writing to `customization/<name>/output/` of the artifacts
       bucket, the custom model encrypted with the platform key; `DescribeJob` reads the model's ARN;
    3. serving `provisioned`: the Provisioned Throughput `<job_prefix>-pt` (settings.model_units, no
       commitment) is created, or moved to the new model if it exists; `on_demand`: likewise the custom
       model deployment `<job_prefix>-on-demand`, by the Lambda task `Deploy` (Step Functions' Bedrock
       SDK integration cannot be shown to know the deployment APIs); `none`: the custom model ARN is
       the result.

    Provisioned Throughput is a FIXED HOURLY COST for as long as it exists, whether or not it is called.
    The pipeline keeps at most one per customization (later runs update it in place), and the custom
    resource `ServingCleanup` removes the serving of the mode its physical id records, stopping the runs
    of that mode first, when the stack is deleted or the serving mode changes (never the serving of the
    mode a rollback restored). Custom models themselves are kept: they cost only storage, and deleting
    trained models is a decision for people.

    Every Bedrock call retries throttling and internal errors with backoff; any other error ends the
    execution in the `Failed` state with the error and cause. Logs (ALL, with execution data) go to a
    KMS-encrypted log group; X-Ray tracing is on. `settings.schedule`, if any, starts an execution.

    Wiring: the stack that holds this construct also needs the foundation's `BedrockCustomizationRole`
    (passed as `role`); the platform key's policy must let bedrock.amazonaws.com use the key for custom
    models (see the Bedrock/Nova encryption guides) and the roles that invoke the model must be allowed
    kms:Decrypt and kms:GenerateDataKey via Bedrock.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BedrockCustomizationSettings,
        job_prefix: str,
        role: iam.IRole,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        region: str,
        log_retention_days: int,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_job_prefix(job_prefix)
        stack = Stack.of(self)
        self.settings = settings
        self.job_prefix = job_prefix
        self.provisions_throughput = settings.serving == "provisioned"
        self.provisioned_model_name = provisioned_model_name(job_prefix)
        self.deployment_name = deployment_name(job_prefix)
        self.base_model_arn = foundation_model_arn(region, settings.base_model)
        tags = dict(tags or {})
        self.tags = tags

        def bedrock_arn(resource: str) -> str:
            return stack.format_arn(service="bedrock", resource=resource, resource_name="*")

        custom_models = bedrock_arn("custom-model")
        jobs = bedrock_arn("model-customization-job")
        provisioned_models = bedrock_arn("provisioned-model")
        deployments = bedrock_arn("custom-model-deployment")

        failed = sfn.Fail(self, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")

        def guarded(state: sfn.TaskStateBase | sfn.CustomState, errors: list[str] = TRANSIENT_ERRORS) -> None:
            state.add_retry(
                errors=errors,
                interval=Duration.seconds(10),
                max_attempts=5,
                backoff_rate=2,
                jitter_strategy=sfn.JitterType.FULL,
            )
            state.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")

        run_name = f"States.Format('{job_prefix}-{{}}', $.runId)"
        name_the_run = sfn.Pass(
            self,
            "NameTheRun",
            comment="A run id of 12 random hex digits names this run's job and custom model",
            parameters={
                "runId": sfn.JsonPath.array_get_item(sfn.JsonPath.string_split(sfn.JsonPath.uuid(), "-"), 4)
            },
        )

        job: dict = {
            "JobName.$": run_name,
            "CustomModelName.$": run_name,
            "ClientRequestToken.$": run_name,  # a retried request creates no second job
            "BaseModelIdentifier": self.base_model_arn,
            "CustomizationType": settings.kind,
            "RoleArn": role.role_arn,
            "CustomModelKmsKeyId": encryption_key.key_arn,
            "TrainingDataConfig": {"S3Uri": f"s3://{data_bucket.bucket_name}/{training_key(settings)}"},
            "OutputDataConfig": {
                "S3Uri": f"s3://{artifacts_bucket.bucket_name}/{output_prefix(settings.name)}"
            },
        }
        if settings.hyperparameters:
            job["HyperParameters"] = dict(settings.hyperparameters)
        if validation := validation_key(settings):
            job["ValidationDataConfig"] = {
                "Validators": [{"S3Uri": f"s3://{data_bucket.bucket_name}/{validation}"}]
            }
        if tags:
            job["JobTags"] = _tags(tags)
            job["CustomModelTags"] = _tags(tags)
        customize = sfn.CustomState(
            self,
            "Customize",
            state_json={
                "Type": "Task",
                "Comment": f"{settings.kind} of {settings.base_model}; waits for the job to end",
                "Resource": f"arn:{Aws.PARTITION}:states:::bedrock:createModelCustomizationJob.sync",
                "Parameters": job,
                # (not null: CDK drops None values from a CustomState, which would make the job's
                # description replace the state, run id included)
                "ResultPath": "$.customization",
            },
        )
        guarded(customize)

        describe = tasks.CallAwsService(
            self,
            "DescribeJob",
            comment="The completed job's custom model",
            service="bedrock",
            action="getModelCustomizationJob",
            iam_action="bedrock:GetModelCustomizationJob",
            iam_resources=[jobs],
            parameters={
                "JobIdentifier": sfn.JsonPath.format(f"{job_prefix}-{{}}", sfn.JsonPath.string_at("$.runId"))
            },
            result_selector={
                "customModelArn": sfn.JsonPath.string_at("$.OutputModelArn"),
                "jobArn": sfn.JsonPath.string_at("$.JobArn"),
                "jobName": sfn.JsonPath.string_at("$.JobName"),
            },
            result_path="$.job",
        )
        guarded(describe)

        report = {
            "customModelArn": sfn.JsonPath.string_at("$.job.customModelArn"),
            "jobName": sfn.JsonPath.string_at("$.job.jobName"),
        }
        if settings.serving != "none":
            report["servingArn"] = sfn.JsonPath.string_at("$.serving.arn")
        done = sfn.Pass(self, "Report", parameters=report).next(sfn.Succeed(self, "Done"))

        definition = name_the_run.next(customize).next(describe)
        if settings.serving == "provisioned":
            definition = definition.next(
                self._provisioned(guarded, done, tags, custom_models, provisioned_models)
            )
        elif settings.serving == "on_demand":
            definition = definition.next(
                self._on_demand(
                    guarded, done, tags, custom_models, deployments, encryption_key, log_retention_days
                )
            )
        else:
            definition = definition.next(done)

        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=f"Bedrock customization {job_prefix}: {settings.kind} of {settings.base_model}, "
            f"serving {settings.serving}",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        for statement in (
            iam.PolicyStatement(
                sid="CreateTheCustomizationJob",
                actions=["bedrock:CreateModelCustomizationJob", *(["bedrock:TagResource"] if tags else [])],
                resources=[self.base_model_arn, custom_models, jobs],
                # Exactly the pipeline's tags. The job carries them twice (JobTags, CustomModelTags),
                # equal, so the condition holds whichever list AWS evaluates.
                conditions=request_tags(tags),
            ),
            iam.PolicyStatement(
                sid="WaitForTheCustomizationJob",
                actions=["bedrock:GetModelCustomizationJob"],
                resources=[jobs],
            ),
            *tag_scoped("StopTheCustomizationJob", ["bedrock:StopModelCustomizationJob"], [jobs], tags),
            iam.PolicyStatement(
                sid="PassTheCustomizationRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
            ),
            # The caller of CreateModelCustomizationJob with a customer managed key (Bedrock user guide,
            # "Encryption of custom models"; Nova user guide, PermissionsModelCustomization).
            iam.PolicyStatement(
                sid="EncryptTheCustomModel",
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                resources=[encryption_key.key_arn],
                conditions=through(self, "bedrock"),
            ),
        ):
            self.state_machine.add_to_role_policy(statement)
        if settings.serving == "on_demand":
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    sid="InvokeTheDeployer",
                    actions=["lambda:InvokeFunction"],
                    resources=[self.deployer.function.function_arn],
                )
            )
        # The generated-ARN wildcards each serving mode's calls use (beyond jobs and custom models).
        serving_arns = {"none": (), "provisioned": (provisioned_models,), "on_demand": ()}
        compliance.acknowledge(
            self.state_machine.role,
            STATE_MACHINE_DELIVERY_AND_TRACING,
            *(
                GENERATED_BEDROCK_ARNS.on(nag_resource(self, arn))
                for arn in (custom_models, jobs, *serving_arns[settings.serving])
            ),
        )

        if settings.schedule:
            events.Rule(
                self,
                "Schedule",
                description=f"Run the Bedrock customization {job_prefix} on its schedule",
                schedule=events.Schedule.expression(settings.schedule),
                targets=[
                    targets.SfnStateMachine(
                        self.state_machine, input=events.RuleTargetInput.from_object({}), retry_attempts=2
                    )
                ],
            )

        self.cleanup = self._cleanup(encryption_key, log_retention_days, provisioned_models, deployments)

    # ----------------------------------------------------------------------------------------------

    def _provisioned(
        self, guarded, done, tags, custom_models: str, provisioned_models: str
    ) -> sfn.IChainable:
        """Get the pipeline's Provisioned Throughput: move it to the new model, or create it."""
        name = self.provisioned_model_name
        create_parameters = {
            "ModelId": sfn.JsonPath.string_at("$.job.customModelArn"),
            "ProvisionedModelName": name,
            "ModelUnits": self.settings.model_units,
            # No CommitmentDuration: no-commitment Provisioned Throughput, deletable at any time.
            "ClientRequestToken": sfn.JsonPath.format(f"{name}-{{}}", sfn.JsonPath.string_at("$.runId")),
        }
        if tags:
            create_parameters["Tags"] = _tags(tags)
        create = tasks.CallAwsService(
            self,
            "CreateProvisionedThroughput",
            comment=f"Buy {self.settings.model_units} model unit(s) without commitment: a fixed hourly cost",
            service="bedrock",
            action="createProvisionedModelThroughput",
            iam_action="bedrock:CreateProvisionedModelThroughput",
            iam_resources=[custom_models, self.base_model_arn],
            additional_iam_statements=(
                [
                    iam.PolicyStatement(
                        actions=["bedrock:TagResource"],
                        resources=[provisioned_models],
                        conditions=request_tags(tags),
                    )
                ]
                if tags
                else None
            ),
            parameters=create_parameters,
            result_selector={"arn": sfn.JsonPath.string_at("$.ProvisionedModelArn")},
            result_path="$.serving",
        )
        guarded(create)
        update = tasks.CallAwsService(
            self,
            "UpdateProvisionedThroughput",
            comment="Move the existing Provisioned Throughput to the new custom model",
            service="bedrock",
            action="updateProvisionedModelThroughput",
            iam_action="bedrock:UpdateProvisionedModelThroughput",
            iam_resources=[provisioned_models, custom_models, self.base_model_arn],
            parameters={
                "ProvisionedModelId": name,
                "DesiredModelId": sfn.JsonPath.string_at("$.job.customModelArn"),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        guarded(update)
        find = tasks.CallAwsService(
            self,
            "FindProvisionedThroughput",
            comment=f"Does {name} exist?",
            service="bedrock",
            action="getProvisionedModelThroughput",
            iam_action="bedrock:GetProvisionedModelThroughput",
            iam_resources=[provisioned_models],
            parameters={"ProvisionedModelId": name},
            result_selector={"arn": sfn.JsonPath.string_at("$.ProvisionedModelArn")},
            result_path="$.serving",
        )
        find.add_catch(create, errors=NOT_FOUND, result_path=sfn.JsonPath.DISCARD)
        guarded(find)
        create.next(done)
        return find.next(update).next(done)

    def _on_demand(
        self,
        guarded,
        done,
        tags,
        custom_models: str,
        deployments: str,
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> sfn.IChainable:
        """Point the pipeline's on-demand deployment at the new model, or create it: one Lambda task.

        Not `aws-sdk:bedrock:createCustomModelDeployment` / `getCustomModelDeployment` /
        `updateCustomModelDeployment`: these APIs are newer than Step Functions' Bedrock SDK integration
        (January 2024), whose actions follow the SDK releases quarterly and are listed nowhere, so their
        support cannot be verified (lambdas/custom_model_deployment/logic.py cites the pages). The
        function calls them with boto3; its role may only manage deployments and read custom models of
        this account and Region, and the state machine may invoke only this function.
        """
        name = self.deployment_name
        self.deployer = PythonFunction(
            self,
            "Deployer",
            package="custom_model_deployment",
            description=f"Point the on-demand deployment {name} at the newest custom model",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
        )
        for statement in (
            iam.PolicyStatement(
                sid="FindTheDeployment",
                actions=["bedrock:GetCustomModelDeployment"],
                resources=[deployments],
            ),
            iam.PolicyStatement(
                sid="CreateTheDeployment",
                actions=["bedrock:CreateCustomModelDeployment"],
                resources=[deployments, custom_models],
                conditions=request_tags(tags),
            ),
            *tag_scoped(
                "MoveTheDeployment",
                ["bedrock:UpdateCustomModelDeployment"],
                [deployments, custom_models],
                tags,
            ),
            # The custom model is encrypted with the platform key: Bedrock uses it, through the caller,
            # when it sets up serving for the model (Nova user guide, customize-fine-tune-encrypt.html,
            # statement PermissionsNovaProvisionedThroughput; the page names provisioned throughput, the
            # on-demand deployment of a customer-key model is not described, so the same statement as
            # the state machine's, limited to calls through Bedrock, is granted here).
            iam.PolicyStatement(
                sid="ServeTheEncryptedModel",
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                resources=[encryption_key.key_arn],
                conditions=through(self, "bedrock"),
            ),
            *(
                [
                    iam.PolicyStatement(
                        sid="TagTheDeployment",
                        actions=["bedrock:TagResource"],
                        resources=[deployments],
                        conditions=request_tags(tags),
                    )
                ]
                if tags
                else []
            ),
        ):
            self.deployer.function.add_to_role_policy(statement)
        compliance.acknowledge(
            self.deployer.role,
            *(GENERATED_BEDROCK_ARNS.on(nag_resource(self, arn)) for arn in (deployments, custom_models)),
        )
        payload = {
            "DeploymentName": name,
            "ModelArn.$": "$.job.customModelArn",
            "ClientRequestToken.$": f"States.Format('{name}-{{}}', $.runId)",
            "Description": f"Newest custom model of the Bedrock customization {self.job_prefix}",
        }
        if tags:
            payload["Tags"] = _tags(tags)
        deploy = sfn.CustomState(
            self,
            "Deploy",
            state_json={
                "Type": "Task",
                "Comment": "Deploy the custom model for on-demand inference (billed per token), or move the "
                "deployment to it",
                "Resource": f"arn:{Aws.PARTITION}:states:::lambda:invoke",
                "Parameters": {"FunctionName": self.deployer.function.function_arn, "Payload": payload},
                "ResultSelector": {"arn.$": "$.Payload.arn"},
                "ResultPath": "$.serving",
            },
        )
        guarded(deploy, DEPLOYMENT_TRANSIENT_ERRORS)
        return deploy.next(done)

    def _cleanup(
        self, encryption_key: kms.IKey, log_retention_days: int, provisioned_models: str, deployments: str
    ) -> PythonCustomResource:
        """The custom resource that removes the serving on stack deletion or a serving change.

        It references the state machine, so CloudFormation deletes it first: the executions are
        stopped while the state machine (and its role, which stops the job) still exist.
        """
        stack = Stack.of(self)
        cleanup = PythonCustomResource(
            self,
            "ServingCleanup",
            package="custom_model_serving",
            description=f"Remove the serving of the Bedrock customization {self.job_prefix} with its stack",
            resource_type="Custom::BedrockCustomModelServing",
            properties={
                "JobPrefix": self.job_prefix,
                "StateMachineArn": self.state_machine.state_machine_arn,
                "ProvisionedModelName": self.provisioned_model_name,
                "DeploymentName": self.deployment_name,
                "Serving": self.settings.serving,
            },
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=600,
        )
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # Both serving kinds always: after a change of serving mode, the Delete of the old mode runs
        # with the new policy (and a Delete removes only the kind its physical id records).
        for statement in (
            iam.PolicyStatement(
                sid="ListThePipelineExecutions",
                actions=["states:ListExecutions"],
                resources=[self.state_machine.state_machine_arn],
            ),
            # Only the runs whose definition serves the Delete's mode are stopped: each run's own
            # definition comes from DescribeStateMachineForExecution (lambdas/custom_model_serving).
            iam.PolicyStatement(
                sid="StopThePipelineExecutions",
                actions=["states:DescribeStateMachineForExecution", "states:StopExecution"],
                resources=[executions],
            ),
            iam.PolicyStatement(
                sid="FindTheServing",
                actions=["bedrock:ListProvisionedModelThroughputs", "bedrock:ListCustomModelDeployments"],
                resources=["*"],
            ),
            *tag_scoped(
                "DeleteTheProvisionedThroughput",
                ["bedrock:DeleteProvisionedModelThroughput"],
                [provisioned_models],
                self.tags,
            ),
            *tag_scoped(
                "DeleteTheDeployment", ["bedrock:DeleteCustomModelDeployment"], [deployments], self.tags
            ),
        ):
            cleanup.handler.function.add_to_role_policy(statement)
        compliance.acknowledge(
            cleanup.handler.role,
            SERVING_LISTS,
            PIPELINE_EXECUTIONS.on(nag_resource(self, executions)),
            GENERATED_BEDROCK_ARNS.on(nag_resource(self, provisioned_models)),
            GENERATED_BEDROCK_ARNS.on(nag_resource(self, deployments)),
        )
        return cleanup

    # ----------------------------------------------------------------------------------------------

    def monitor(self, hub: MonitoringHub) -> cw.Alarm:
        """An alarm on failed executions (a failed or rejected customization job, or a serving call
        that failed) and a dashboard section: executions by outcome and their duration."""
        period = Duration.hours(1)
        failed = self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")
        alarm = cw.Alarm(
            self,
            "FailedAlarm",
            alarm_description=f"Bedrock customization {self.job_prefix}: an execution failed "
            "(see the state machine's execution history)",
            metric=failed,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # ExecutionsFailed exists only for periods with a failed execution: no data is none.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        hub.add_alarm(alarm)
        hub.add_section(
            f"Bedrock customization {self.job_prefix}",
            [
                cw.GraphWidget(
                    title="Executions",
                    left=[
                        self.state_machine.metric_started(period=period, statistic="Sum"),
                        self.state_machine.metric_succeeded(period=period, statistic="Sum"),
                        self.state_machine.metric_failed(period=period, statistic="Sum"),
                        self.state_machine.metric_aborted(period=period, statistic="Sum"),
                    ],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Execution time (ms)",
                    left=[self.state_machine.metric_time(period=period, statistic="Maximum")],
                    width=12,
                ),
            ],
        )
        return alarm
