"""TrainingPipeline: train (SageMaker) -> [evaluate the images (SageMaker)] -> evaluate (Lambda) ->
register (model registry), on Step Functions.

Start it by hand at any time (the schedule, when set, does the same):

    aws stepfunctions start-execution --state-machine-arn <StateMachineArn> --input '{}'

The execution fails when training or the image evaluation job fails, when the metric or an image
metric misses its threshold (state EvaluationFailed, with the reason) or when registration fails; a
passing model becomes a new version of the model package group, PendingManualApproval. Approving it
(console, or `aws sagemaker update-model-package --model-package-arn ... --model-approval-status
Approved`) is what a ModelDeployment reacts to.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import image_uri
from genai_stack.compliance import STATE_MACHINE_DELIVERY_AND_TRACING, Acknowledgement
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.tag_conditions import request_tags, sagemaker_tag_on_create, tag_scoped
from genai_stack.components.training_job_role import (
    checkpoint_prefix,
    nag_resource,
    output_prefix,
    uses_volume_key,
)
from genai_stack.config import TrainingMetric
from genai_stack.config import TrainingPipeline as TrainingPipelineSettings

if TYPE_CHECKING:  # the gate's construct imports the evaluation components, which need no pipeline
    from genai_stack.components.candidate_evaluation import GateProps

# SageMaker entity names (model package group, training job): [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
JOB_PREFIX_MAX = 30  # + "-" + 32 hex digits (MD5) = at most 63 characters
# Hyperparameters the SageMaker framework containers read (sagemaker-training-toolkit); a profile
# cannot set them, the pipeline does.
RESERVED_HYPERPARAMETERS = frozenset({"sagemaker_program", "sagemaker_submit_directory", "sagemaker_region"})
CODE_CHANNEL_DIR = "/opt/ml/input/data/code"  # where SageMaker puts the "code" channel in the container
# Transient errors of the optimized SageMaker integration (Step Functions names them
# SageMaker.<Exception>). A retry reuses the job name, so it can never start a second job; a job that
# ran and failed ends the task with States.TaskFailed, which is not retried. (If a create call fails
# after SageMaker made the job, the retries fail on the taken name and the execution reports that.)
TRAINING_RETRY_ERRORS = [
    "SageMaker.AmazonSageMakerException",
    "SageMaker.ThrottlingException",
    "ThrottlingException",
]
REGISTER_RETRY_ERRORS = ["SageMaker.ThrottlingException", "SageMaker.SageMakerException"]
CONTENT_TYPES = ["application/json"]
GATE_HOURS = 12  # a gate's batch transform (the container's start and the set) and its judge job

PIPELINE_TRAINING_JOBS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The state machine creates, describes and stops the training jobs it names per execution "
        "(<pipeline>-<md5 of the execution>); the statement is limited to that name prefix."
    ),
)
PIPELINE_MODEL_VERSIONS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "CreateModelPackage makes the next version of the pipeline's own model package group; versions "
        "(model-package/<group>/<n>) are numbered by SageMaker."
    ),
)


def sync_rule_statement(scope: Construct, sid: str, rule: str) -> iam.PolicyStatement:
    """How Step Functions waits for a .sync SageMaker job (Step Functions developer guide, "IAM
    policies for calling SageMaker AI"): the managed rule `rule` it creates in the account."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources=[Stack.of(scope).format_arn(service="events", resource="rule", resource_name=rule)],
    )


def job_name_prefix(pipeline_name: str) -> str:
    """The training job name prefix of a pipeline (job names are <prefix>-<32 hex digits>)."""
    return pipeline_name[:JOB_PREFIX_MAX].rstrip("-")


def sagemaker_arn(stack: Stack, resource: str, name: str) -> str:
    """arn:<partition>:sagemaker:<region>:<account>:<resource>/<name>; SageMaker ARNs hold names in
    lower case, so the policy does too."""
    return stack.format_arn(service="sagemaker", resource=resource, resource_name=name.lower())


def framework_hyperparameters(
    settings: TrainingPipelineSettings, code_uri: str, region: str
) -> dict[str, str]:
    """HyperParameters as the SageMaker Python SDK sends them for framework estimators: every value
    JSON-encoded (Framework._json_encode_hyperparameters), which the training toolkit decodes
    (environment.read_hyperparameters). With network isolation the code arrives as the "code" input
    channel and sagemaker_submit_directory is its path in the container, as the SDK does
    (CONTAINER_CODE_CHANNEL_SOURCEDIR_PATH); otherwise it is the S3 URI the toolkit downloads."""
    clash = sorted(RESERVED_HYPERPARAMETERS & settings.hyperparameters.keys())
    if clash:
        raise ValueError(
            f"training pipeline {settings.name}: hyperparameters {', '.join(clash)} are reserved"
        )
    submit_directory = (
        f"{CODE_CHANNEL_DIR}/{PurePosixPath(settings.source_key).name}"
        if settings.network_isolation
        else code_uri
    )
    values: dict[str, str] = {
        **settings.hyperparameters,
        "sagemaker_program": settings.entry_point,
        "sagemaker_submit_directory": submit_directory,
        "sagemaker_region": region,
    }
    return {key: json.dumps(value) for key, value in values.items()}


def _s3_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def _rule(metric: TrainingMetric) -> dict[str, Any]:
    """A metric's rule as the evaluation step reads it."""
    return {"name": metric.name, "threshold": metric.threshold, "goal": metric.goal}


class TrainingPipeline(Construct):
    """One training pipeline: a Standard state machine (X-Ray, every event logged without execution
    data to a KMS-encrypted log group) with the states

        NameTheJob -> Train (sagemaker:createTrainingJob.sync)
            [-> EvaluateImages (createTrainingJob.sync: image metrics on the held-out set)]
            -> Evaluate (Lambda: every threshold) -> Passed?
            -> Register (sagemaker:createModelPackage, PendingManualApproval) | EvaluationFailed

    and `PipelineFailed` for any task error (caught, so the execution fails with the task's error and
    cause). The model package group `pipeline_name` is created here and retained. An EventBridge
    schedule starts the pipeline when `settings.schedule` is set.

    `inference_image_uri` is the serving container registered with each model version (what an
    endpoint runs). Without it the training image is registered: the registry needs an image and
    that one is at least the model's true provenance, but the PyTorch training container has no
    model server, so a pipeline that feeds an endpoint should pass the endpoint's serving image.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TrainingPipelineSettings,
        pipeline_name: str,
        role: iam.IRole,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        region: str,
        log_retention_days: int,
        inference_image_uri: str | None = None,
        tags: Mapping[str, str] | None = None,
        gate: GateProps | None = None,
    ) -> None:
        """`gate`: the pipeline's evaluation gate (components/candidate_evaluation.py), judged between
        the metric check and the registration."""
        super().__init__(scope, construct_id)
        # Put on every training job; the role creates jobs only with them and stops only jobs with one.
        self.tags = dict(tags or {})
        if not SAGEMAKER_NAME.match(pipeline_name):
            raise ValueError(
                f"pipeline name {pipeline_name!r} is not a SageMaker model package group name "
                "(1-63 letters, digits and hyphens, starting and ending with a letter or digit)"
            )
        stack = Stack.of(self)
        self.settings = settings
        self.pipeline_name = pipeline_name
        self.training_image = image_uri(settings.image, region)
        self.inference_image = inference_image_uri or self.training_image

        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=pipeline_name,
            model_package_group_description=(
                f"genai-stack training pipeline {settings.name}: models that met "
                f"{settings.metric.name} {'<=' if settings.metric.goal == 'minimize' else '>='} "
                f"{settings.metric.threshold:g}"
            )[:1024],
        )
        self.model_package_group.apply_removal_policy(RemovalPolicy.RETAIN)
        self.model_package_group_name = pipeline_name
        self.model_package_group_arn = self.model_package_group.attr_model_package_group_arn

        self.evaluation = PythonFunction(
            self,
            "Evaluation",
            package="training_evaluation",
            description=f"genai-stack training pipeline {settings.name}: compare the metric to its threshold",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=30,
        )

        failed = sfn.Fail(
            self,
            "PipelineFailed",
            comment="A task failed",
            error_path="$.failure.Error",
            cause_path="$.failure.Cause",
        )
        catch = {"errors": [sfn.Errors.ALL], "result_path": "$.failure"}

        prefix = job_name_prefix(pipeline_name)
        name_the_job = sfn.Pass(
            self,
            "NameTheJob",
            comment="One training job name per execution: retries reuse it, so they never start a second job",
            parameters=self._job_names(prefix),
            result_path="$.job",
        )

        def job_state(state_id: str, state_json: dict[str, Any]) -> sfn.CustomState:
            """A createTrainingJob.sync state: transient errors retried (the name is reused, so no
            second job starts), any other error caught into a failed execution."""
            state = sfn.CustomState(self, state_id, state_json=state_json)
            state.add_retry(
                errors=TRAINING_RETRY_ERRORS, interval=Duration.seconds(30), max_attempts=3, backoff_rate=2
            )
            state.add_catch(failed, **catch)
            return state

        self._volume_key = encryption_key.key_arn
        training_json = self._training_state(
            stack, role, data_bucket, artifacts_bucket, encryption_key, region
        )
        train = job_state("Train", training_json)

        evaluation_payload: dict[str, Any] = {
            "training": sfn.JsonPath.object_at("$.training"),
            "rule": _rule(settings.metric),
        }
        evaluate_images = None
        if settings.image_evaluation is not None:
            # The candidate's images, scored by a second job of the same image on the held-out set.
            evaluate_images = job_state(
                "EvaluateImages", self._image_evaluation_state(training_json, data_bucket, artifacts_bucket)
            )
            evaluation_payload["images"] = sfn.JsonPath.object_at("$.image_evaluation")
            evaluation_payload["image_rules"] = [_rule(m) for m in settings.image_evaluation.metrics]

        evaluate = tasks.LambdaInvoke(
            self,
            "Evaluate",
            lambda_function=self.evaluation.function,
            payload=sfn.TaskInput.from_object(evaluation_payload),
            payload_response_only=True,
            result_path="$.evaluation",
        )
        evaluate.add_catch(failed, **catch)

        group_versions = sagemaker_arn(stack, "model-package", f"{pipeline_name}/*")
        register = tasks.CallAwsService(
            self,
            "Register",
            service="sagemaker",
            action="createModelPackage",
            iam_action="sagemaker:CreateModelPackage",
            iam_resources=[sagemaker_arn(stack, "model-package-group", pipeline_name), group_versions],
            parameters={
                "ModelPackageGroupName": pipeline_name,
                "ModelApprovalStatus": "PendingManualApproval",
                "ModelPackageDescription": sfn.JsonPath.string_at("$.evaluation.reason"),
                # Idempotent per execution: a retried call returns the version the first call made.
                "ClientToken": sfn.JsonPath.hash(sfn.JsonPath.execution_id, "MD5"),
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image": self.inference_image,
                            "ModelDataUrl": sfn.JsonPath.string_at("$.evaluation.model_data_url"),
                        }
                    ],
                    "SupportedContentTypes": CONTENT_TYPES,
                    "SupportedResponseMIMETypes": CONTENT_TYPES,
                },
                "CustomerMetadataProperties": sfn.JsonPath.object_at(
                    "$.metadata.merged" if gate else "$.evaluation.customer_metadata"
                ),
            },
            result_selector={"ModelPackageArn": sfn.JsonPath.string_at("$.ModelPackageArn")},
            result_path="$.registration",
        )
        register.add_retry(
            errors=REGISTER_RETRY_ERRORS, interval=Duration.seconds(5), max_attempts=3, backoff_rate=2
        )
        register.add_catch(failed, **catch)

        evaluation_failed = sfn.Fail(
            self,
            "EvaluationFailed",
            comment="The model missed the metric threshold; it is not registered",
            error="EvaluationFailed",
            cause_path="$.evaluation.reason",
        )
        self.gate = None
        passed = register
        if gate is not None:
            from genai_stack.components.candidate_evaluation import CandidateEvaluation

            self.gate = CandidateEvaluation(
                self,
                "Gate",
                props=gate,
                name_prefix=job_name_prefix(pipeline_name),
                data_bucket=data_bucket,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                tags=self.tags,
            )
            passed = self.gate.chain(register=register, failed=failed, catch=catch)
        trained = name_the_job.next(train)
        if evaluate_images is not None:
            trained = trained.next(evaluate_images)
        definition = trained.next(evaluate).next(
            sfn.Choice(self, "Passed?")
            .when(sfn.Condition.boolean_equals("$.evaluation.passed", True), passed)
            .otherwise(evaluation_failed)
        )
        if (
            self.gate is not None
        ):  # start-execution --input '{"accept": "<gate run id>"}' moves the gate's bar
            definition = (
                sfn.Choice(self, "Accept?")
                .when(sfn.Condition.is_present("$.accept"), self.gate.accept())
                .otherwise(definition)
            )

        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        longest = settings.spot.max_wait_hours if settings.spot else settings.max_runtime_hours
        if settings.image_evaluation is not None:
            longest += settings.image_evaluation.max_runtime_hours
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=(
                f"genai-stack training pipeline {settings.name}: train, "
                f"{'evaluate the images, ' if settings.image_evaluation else ''}evaluate, register"
            ),
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            # ALL events (cdk-nag SF1) but no execution data: hyperparameters, S3 locations and job
            # descriptions stay out of the logs; the execution history has them for those allowed.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
            # The longest the job may run (or wait for spot capacity) plus an hour for the rest, and
            # GATE_HOURS for a gate's transform and judge job.
            timeout=Duration.minutes(round(longest * 60) + 60 + (GATE_HOURS * 60 if gate else 0)),
        )
        self.state_machine.node.add_dependency(self.model_package_group)
        sm_role = self.state_machine.role
        jobs = sagemaker_arn(stack, "training-job", f"{prefix}-*")
        for statement in (
            *self._job_statements(jobs),
            iam.PolicyStatement(
                sid="PassTheTrainingRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            sync_rule_statement(
                self, "WatchTheTrainingJobs", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
            ),
        ):
            sm_role.add_to_principal_policy(statement)
        function_arn = self.evaluation.function.function_arn
        gate_acknowledgements = self.gate.grant(sm_role, encryption_key) if self.gate else []
        compliance.acknowledge(
            sm_role,
            *gate_acknowledgements,
            STATE_MACHINE_DELIVERY_AND_TRACING,
            PIPELINE_TRAINING_JOBS.on(
                nag_resource(self, sagemaker_arn(stack, "training-job", f"{prefix}-*"))
            ),
            PIPELINE_MODEL_VERSIONS.on(nag_resource(self, group_versions)),
            compliance.LAMBDA_TASK_VERSIONS.on(f"{nag_resource(self, function_arn)}:*"),
        )

        self.schedule: events.Rule | None = None
        if settings.schedule:
            self.schedule = events.Rule(
                self,
                "Schedule",
                description=f"Retrain {settings.name} periodically",
                schedule=events.Schedule.expression(settings.schedule),
                targets=[
                    targets.SfnStateMachine(
                        self.state_machine, input=events.RuleTargetInput.from_object({}), retry_attempts=2
                    )
                ],
            )

    def _job_names(self, prefix: str) -> dict[str, Any]:
        """The execution's job names, <prefix>-<MD5 of execution id @ start time> for training and the
        MD5 of the same with '#images' for the image evaluation: unique per execution, stable across
        retries, within the training job role's and the state machine's name prefix."""
        run = sfn.JsonPath.format(
            "{}@{}", sfn.JsonPath.execution_id, sfn.JsonPath.string_at("$$.Execution.StartTime")
        )
        names = {"name": sfn.JsonPath.format(f"{prefix}-{{}}", sfn.JsonPath.hash(run, "MD5"))}
        if self.settings.image_evaluation is not None:
            names["evaluation_name"] = sfn.JsonPath.format(
                f"{prefix}-{{}}", sfn.JsonPath.hash(sfn.JsonPath.format("{}#images", run), "MD5")
            )
        return names

    def _image_evaluation_state(
        self, training: dict[str, Any], data_bucket: s3.IBucket, artifacts_bucket: s3.IBucket
    ) -> dict[str, Any]:
        """The EvaluateImages task: a training job of the pipeline's image running
        `image_evaluation.entry_point` with the channels `model` (the candidate's model.tar.gz, as
        SageMaker wrote it), `holdout` (held-out photos and captions) and `weights` (the metric networks,
        read offline), and the metrics' definitions read from its log. The job
        trains nothing; a training job is SageMaker's job that reports log metrics the evaluation step
        reads (FinalMetricDataList), as the training metric is read."""
        settings = self.settings
        evaluation = settings.image_evaluation
        assert evaluation is not None  # only called for pipelines with one
        state = copy.deepcopy(training)  # the Train state's job: image, role, output, network, tags
        parameters = state["Parameters"]
        data = data_bucket.bucket_name
        model_channel = _s3_channel("model", "")
        model_channel["DataSource"]["S3DataSource"].pop("S3Uri")
        model_channel["DataSource"]["S3DataSource"]["S3Uri.$"] = "$.training.ModelArtifacts.S3ModelArtifacts"
        channels = [
            _s3_channel("holdout", f"s3://{data}/{evaluation.holdout_prefix}"),
            _s3_channel("weights", f"s3://{data}/{evaluation.weights_prefix}"),
            model_channel,
        ]
        if settings.network_isolation:
            channels.append(_s3_channel("code", f"s3://{artifacts_bucket.bucket_name}/{settings.source_key}"))
        hyperparameters = {
            key: value
            for key, value in parameters["HyperParameters"].items()
            if key in RESERVED_HYPERPARAMETERS
        }
        hyperparameters["sagemaker_program"] = json.dumps(evaluation.entry_point)
        parameters.update(
            {
                "TrainingJobName.$": "$.job.evaluation_name",
                "HyperParameters": hyperparameters,
                "InputDataConfig": channels,
                "StoppingCondition": {"MaxRuntimeInSeconds": round(evaluation.max_runtime_hours * 3600)},
            }
        )
        parameters["AlgorithmSpecification"]["MetricDefinitions"] = [
            {"Name": m.name, "Regex": m.regex} for m in evaluation.metrics
        ]
        resources = parameters["ResourceConfig"]
        resources.update(
            {
                "InstanceType": evaluation.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": evaluation.volume_gb,
            }
        )
        volume_key = resources.pop("VolumeKmsKeyId", None) or self._volume_key
        if uses_volume_key(settings, evaluation.instance_type):
            resources["VolumeKmsKeyId"] = volume_key
        for key in ("EnableManagedSpotTraining", "CheckpointConfig"):
            parameters.pop(key, None)
        return {
            **state,
            "Comment": "Generate images for the held-out captions with the candidate and score them (.sync)",
            "ResultPath": "$.image_evaluation",
        }

    def _training_state(
        self,
        stack: Stack,
        role: iam.IRole,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        region: str,
    ) -> dict[str, Any]:
        """The Train task as raw Amazon States Language: aws-cdk-lib's SageMakerCreateTrainingJob has no
        spot training, checkpoints or inter-container encryption, and grants KMS on the passed role
        (which lives in the foundation stack) by itself."""
        settings = self.settings
        artifacts = artifacts_bucket.bucket_name
        code_uri = f"s3://{artifacts}/{settings.source_key}"
        channels = [_s3_channel("train", f"s3://{data_bucket.bucket_name}/{settings.data_prefix}")]
        if settings.network_isolation:
            channels.append(_s3_channel("code", code_uri))
        resources: dict[str, Any] = {
            "InstanceType": settings.instance_type,
            "InstanceCount": settings.instance_count,
            "VolumeSizeInGB": settings.volume_gb,
        }
        if uses_volume_key(settings):
            resources["VolumeKmsKeyId"] = encryption_key.key_arn
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": round(settings.max_runtime_hours * 3600)}
        parameters: dict[str, Any] = {
            "TrainingJobName.$": "$.job.name",
            "RoleArn": role.role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": self.training_image,
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": settings.metric.name, "Regex": settings.metric.regex}],
            },
            "HyperParameters": framework_hyperparameters(settings, code_uri, region),
            "InputDataConfig": channels,
            "OutputDataConfig": {
                "S3OutputPath": f"s3://{artifacts}/{output_prefix(settings)}",
                "KmsKeyId": encryption_key.key_arn,
            },
            "ResourceConfig": resources,
            "StoppingCondition": stopping,
            "EnableNetworkIsolation": settings.network_isolation,
            "EnableInterContainerTrafficEncryption": True,
        }
        if self.tags:
            parameters["Tags"] = [{"Key": key, "Value": value} for key, value in sorted(self.tags.items())]
        if settings.spot is not None:
            stopping["MaxWaitTimeInSeconds"] = round(settings.spot.max_wait_hours * 3600)
            parameters["EnableManagedSpotTraining"] = True
            # One checkpoint prefix per job: a new job must not resume an older job's checkpoints.
            parameters["CheckpointConfig"] = {
                "S3Uri.$": f"States.Format('s3://{artifacts}/{checkpoint_prefix(settings)}{{}}/', $.job.name)"
            }
        return {
            "Type": "Task",
            "Comment": "Run the training job and wait for it to end (.sync)",
            "Resource": f"arn:{stack.partition}:states:::sagemaker:createTrainingJob.sync",
            "Parameters": parameters,
            "ResultPath": "$.training",
        }

    def _job_statements(self, jobs: str) -> list[iam.PolicyStatement]:
        """What createTrainingJob.sync calls on the pipeline's jobs (Step Functions developer guide,
        "IAM policies for calling SageMaker AI": Create, Describe, Stop, ListTags). With tags: creation
        only with exactly them, and their tag-on-create (sagemaker:AddTags, limited by
        sagemaker:TaggingAction to CreateTrainingJob); stopping only jobs that carry one."""
        if not self.tags:
            return [
                iam.PolicyStatement(
                    sid="RunTheTrainingJobs",
                    actions=[
                        "sagemaker:CreateTrainingJob",
                        "sagemaker:DescribeTrainingJob",
                        "sagemaker:StopTrainingJob",
                        "sagemaker:ListTags",
                    ],
                    resources=[jobs],
                )
            ]
        created = request_tags(self.tags)
        return [
            iam.PolicyStatement(
                sid="RunTheTrainingJobs",
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
                resources=[jobs],
            ),
            iam.PolicyStatement(
                sid="CreateTheTrainingJobs",
                actions=["sagemaker:CreateTrainingJob"],
                resources=[jobs],
                conditions=created,
            ),
            sagemaker_tag_on_create("TagTheTrainingJobsOnCreation", [jobs], self.tags, ["CreateTrainingJob"]),
            *tag_scoped("StopTheTrainingJobs", ["sagemaker:StopTrainingJob"], [jobs], self.tags),
        ]

    def monitor(self, hub: MonitoringHub) -> None:
        """Alarms on failed and timed-out executions; a dashboard section with the execution counts."""
        period = Duration.hours(1)
        started = self.state_machine.metric_started(period=period, label="Started")
        succeeded = self.state_machine.metric_succeeded(period=period, label="Succeeded")
        failed = self.state_machine.metric_failed(period=period, label="Failed")
        timed_out = self.state_machine.metric_timed_out(period=period, label="Timed out")
        for alarm_id, metric, what in (
            (
                "ExecutionsFailed",
                self.state_machine.metric_failed,
                "failed (training, evaluation or registration)",
            ),
            ("ExecutionsTimedOut", self.state_machine.metric_timed_out, "timed out"),
        ):
            hub.add_alarm(
                cw.Alarm(
                    self,
                    alarm_id,
                    alarm_description=f"Training pipeline {self.settings.name}: an execution {what}",
                    metric=metric(period=Duration.minutes(5), statistic="Sum"),
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    # Step Functions publishes ExecutionsFailed/TimedOut only for periods with such an
                    # execution: no data is none of them.
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        hub.add_section(
            f"Training pipeline {self.settings.name}",
            [
                cw.GraphWidget(
                    title="Executions per hour", left=[started, succeeded, failed, timed_out], width=12
                ),
                cw.GraphWidget(
                    title="Execution time",
                    left=[self.state_machine.metric_time(period=period, statistic="Maximum")],
                    width=12,
                ),
                *(self.gate.widgets() if self.gate else []),
            ],
        )
