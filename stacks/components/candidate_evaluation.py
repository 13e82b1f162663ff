"""CandidateEvaluation: a training pipeline's evaluation gate (the profile's
`training.pipelines[].evaluation_gate`; docs/evaluation.md, "Training gate").

Between the metric check and the registration, the candidate answers the gate's set in the serving
container its first deploy_to endpoint runs, and Bedrock's judge scores the answers:

    Gate run (lambdas/evaluation select: the run's id and token)
    -> Candidate model (sagemaker:createModel: the endpoint's image, environment, execution role and
       network isolation, the weights the training job wrote)
    -> Copy requests (the set as chat requests, a CDK file asset, into the run's folder)
    -> Answer (sagemaker:createTransformJob.sync: one request a line; InputFilter sends the container
       the request only, JoinSource keeps each line with its answer: SageMaker developer guide,
       "Associate Prediction Results with Input Records")
    -> Remove the candidate model (the model is only a definition; its weights stay in the training
       output)
    -> Answers (lambdas/evaluation gate_dataset: the judge job's dataset in Bedrock's own-responses
       format)
    -> Create / Wait / Check / Collect (the judge job, as the evaluation runs do:
       model_evaluation.judged_job; collect compares with the gate's accepted run)
    -> Verdict (gate_verdict: thresholds and drops) -> Gate passed? -> the pipeline's Register,
       with the verdict in the model package's CustomerMetadataProperties | GateFailed

The gate's files are the evaluation runs' (the data bucket's `evaluation/` prefix), under its own key,
so the evaluation state machine's `{"accept": "<run id>"}` accepts a gate run as it accepts any run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import BedrockCatalog
from genai_stack.compliance import nag_resource
from genai_stack.components.model_access import ModelAccess
from genai_stack.components.model_evaluation import (
    PREFIX,
    RUN_FOLDERS,
    collect_step,
    copy_asset,
    dataset_text_file,
    evaluation_function,
    evaluation_job_role,
    evaluation_metric,
    invoke_step,
    job_creation_acknowledgements,
    job_creation_statements,
    job_summary,
    judged_job,
    judged_request,
    overall_scores,
    retried,
    run_object,
)
from genai_stack.components.tag_conditions import (
    key_through_s3,
    request_tags,
    sagemaker_tag_on_create,
    tag_scoped,
)
from genai_stack.components.training_pipeline import sync_rule_statement
from genai_stack.planning.evaluation import GateJob, own_responses_source

# SageMaker names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; a gate's model and transform job are
# `<prefix>-g-<12 hex digits of the run>`.
NAME_PREFIX_MAX = 63 - len("-g-") - 12
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
TRANSFORM_METRICS = "/aws/sagemaker/TransformJobs"
# The request fields the container gets (the rest of the line is the gate's own: reference, category).
INPUT_FILTER = "$['messages','max_tokens','temperature']"
ANSWER_TIMEOUT_SECONDS = 600  # one request's answer (ModelClientConfig.InvocationsTimeoutInSeconds)

CANDIDATE_NAMES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Each gate run names its candidate model and transform job <pipeline>-g-<run token>, a name made at "
        "run time; the statements are limited to that prefix."
    ),
)
TRANSFORM_METRICS_NAMESPACE = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "cloudwatch:PutMetricData has no resource type (Service Authorization Reference, CloudWatch); the "
        "statement is limited to SageMaker's transform job namespace with the cloudwatch:namespace key."
    ),
)
TRANSFORM_LOGS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker names a transform job's log streams (<job name>/<instance id>-<time>) in its log group "
        "/aws/sagemaker/TransformJobs; the candidate's role writes only there."
    ),
)


@dataclass(frozen=True)
class GateProps:
    """What a pipeline's gate evaluates with: the planned gate (planning.evaluation.gate_jobs), the
    profile's judge, and the first deploy_to endpoint's serving image, environment, execution role and
    instance type (or the gate's own)."""

    profile_name: str
    gate: GateJob
    judge: str
    catalog: BedrockCatalog
    model_image: str
    model_environment: Mapping[str, str]
    model_role: iam.IRole
    instance_type: str


class CandidateEvaluation(Construct):
    """The gate's states (`chain`), the function that reads the answers and decides, the role Bedrock's
    judge job runs with, the candidate's transform permissions on the endpoint's execution role
    (`model_role`), and what the pipeline's state machine needs (`grant`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: GateProps,
        name_prefix: str,
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        tags: Mapping[str, str],
    ) -> None:
        profile_name, gate, judge, catalog = props.profile_name, props.gate, props.judge, props.catalog
        model_role = props.model_role
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.gate = gate
        self.tags = dict(tags)
        self.prefix = name_prefix[:NAME_PREFIX_MAX].rstrip("-")
        self.data_bucket = data_bucket
        self.model_role = model_role
        key = gate.key
        self.models = stack.format_arn(
            service="sagemaker", resource="model", resource_name=f"{self.prefix}-g-*"
        )
        self.transform_jobs = stack.format_arn(
            service="sagemaker", resource="transform-job", resource_name=f"{self.prefix}-g-*"
        )
        self.requests_asset = assets.Asset(
            self, "Requests", path=str(dataset_text_file(gate.requests, "requests.jsonl"))
        )

        # --- the judge ------------------------------------------------------------------------------
        access = ModelAccess(
            self,
            "Access",
            catalog=catalog,
            models=[judge] if judge not in catalog.inference_profiles else [],
            inference_profiles=[judge] if judge in catalog.inference_profiles else [],
        )
        self.job_role = evaluation_job_role(
            self,
            description=f"genai-stack {profile_name}: Bedrock judge of the {gate.pipeline} candidates",
            data_bucket=data_bucket,
            encryption_key=encryption_key,
            access=access,
        )
        self.function = evaluation_function(
            self,
            profile_name=profile_name,
            description=f"genai-stack {profile_name}: evaluation gate of training pipeline {gate.pipeline}",
            data_bucket=data_bucket,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
        )

        # --- the candidate answers in the endpoint's container, with the endpoint's role -------------
        requests = data_bucket.arn_for_objects(f"{PREFIX}runs/*/{key}/requests.jsonl")
        answers = data_bucket.arn_for_objects(f"{PREFIX}runs/*/{key}/transform/*")
        group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRANSFORM_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        streams = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{TRANSFORM_LOG_GROUP}:log-stream:{self.prefix}-g-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # What a transform job's execution role needs (SageMaker developer guide, "How to use SageMaker
        # AI execution roles", CreateTransformJob API: execution role permissions): the input read,
        # the output written, the job's logs and metrics; the model's weights and image the role reads
        # already, as the endpoint's.
        self.candidate_policy = iam.Policy(
            self,
            "CandidateAnswers",
            roles=[model_role],
            statements=[
                iam.PolicyStatement(
                    sid="ListTheGateRequests",
                    actions=["s3:ListBucket"],
                    resources=[data_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{PREFIX}runs/*/{key}/*"]}},
                ),
                iam.PolicyStatement(
                    sid="ReadTheGateRequests", actions=["s3:GetObject"], resources=[requests]
                ),
                iam.PolicyStatement(
                    sid="WriteTheCandidateAnswers",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[answers],
                ),
                key_through_s3(self, encryption_key.key_arn, sid="UseThePlatformKeyThroughS3"),
                iam.PolicyStatement(
                    sid="WriteTheTransformLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    resources=[group, f"{group}:*", streams],
                ),
                iam.PolicyStatement(
                    sid="PutTransformMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": TRANSFORM_METRICS}},
                ),
            ],
        )
        compliance.acknowledge(
            self.candidate_policy,
            RUN_FOLDERS.on_resolved(requests),
            RUN_FOLDERS.on_resolved(answers),
            TRANSFORM_LOGS.on(nag_resource(self, streams)),
            TRANSFORM_LOGS.on(nag_resource(self, f"{group}:*")),
            TRANSFORM_METRICS_NAMESPACE,
        )
        self.model_image = props.model_image
        self.model_environment = dict(props.model_environment)
        self.instance_type = props.instance_type
        self.encryption_key = encryption_key
        self.profile_name = profile_name

    # --------------------------------------------------------------------------------- the states

    def chain(self, *, register: sfn.IChainable, failed: sfn.IChainable, catch: dict) -> sfn.IChainable:
        """The gate's states, from the run's name to `register` (a pass) or GateFailed; `failed` takes
        any task error (`catch`: the pipeline's catch arguments)."""
        gate, key = self.gate, self.gate.key
        stack = Stack.of(self)
        data_bucket = self.data_bucket
        name = sfn.JsonPath.format(f"{self.prefix}-g-{{}}", sfn.JsonPath.string_at("$.run.token"))

        def step(state_id: str, payload: dict, result_path: str | None):
            task = invoke_step(self, state_id, self.function, payload, result_path)
            task.add_catch(failed, **catch)
            return task

        start = step(
            "Gate run",
            {
                "action": "select",
                "reason": "manual",
                "digests": {},
                "jobs": [{"key": key, "digest": gate.planned.depends_on["gate"]}],
                "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
                "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            },
            "$.run",
        )
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())]
        # Custom states, not CallAwsService: that task adds its own unconditioned statement for its
        # action, and the role's CreateModel and DeleteModel are held to the pipeline's tags (grant).
        candidate = sfn.CustomState(
            self,
            "Candidate model",
            state_json={
                "Type": "Task",
                "Comment": "The candidate as the endpoint would serve it: image, env, role, isolation",
                "Resource": f"arn:{stack.partition}:states:::aws-sdk:sagemaker:createModel",
                "Parameters": sfn.FieldUtils.render_object(
                    {
                        "ModelName": name,
                        "PrimaryContainer": {
                            "Image": self.model_image,
                            "ModelDataUrl": sfn.JsonPath.string_at("$.evaluation.model_data_url"),
                            "Environment": self.model_environment,
                        },
                        "ExecutionRoleArn": self.model_role.role_arn,
                        "EnableNetworkIsolation": True,
                        **({"Tags": tag_list} if tag_list else {}),
                    }
                ),
                "ResultPath": None,
            },
        )
        # Only throttling is worth a retry: a create that failed otherwise fails again on the same name.
        retried(candidate, ["SageMaker.ThrottlingException"])
        candidate.add_catch(failed, **catch)
        copy = copy_asset(
            self,
            "Copy requests",
            asset=self.requests_asset,
            data_bucket=data_bucket,
            key=key,
            name="requests.jsonl",
            resource=data_bucket.arn_for_objects(f"{PREFIX}runs/*/{key}/requests.jsonl"),
            comment=f"The rows of set {gate.planned.set} as chat requests",
        )
        copy.add_catch(failed, **catch)
        answer = sfn.CustomState(self, "Answer", state_json=self._transform_state(name))
        answer.add_retry(
            errors=["SageMaker.ThrottlingException"],
            interval=Duration.seconds(30),
            max_attempts=3,
            backoff_rate=2,
        )
        # A failed transform removes the candidate model before the execution fails with its error.
        cleanup = sfn.CustomState(
            self, "Remove the candidate after a failure", state_json=self._remove_state(name)
        )
        retried(cleanup, ["SageMaker.ThrottlingException"])
        cleanup.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.cleanup")
        cleanup.next(failed)
        answer.add_catch(cleanup, **catch)
        remove = sfn.CustomState(self, "Remove the candidate model", state_json=self._remove_state(name))
        retried(remove, ["SageMaker.ThrottlingException"])
        answers = step(
            "Answers",
            {
                "action": "gate_dataset",
                "run": sfn.JsonPath.object_at("$.run"),
                "job": {"key": key, "label": own_responses_source(gate.planned)},
                "output_key": run_object(data_bucket, key, "transform/requests.jsonl.out"),
            },
            "$.answers",
        )
        summary = job_summary(key, key, gate.planned)

        def ended(state_id: str, status: str) -> sfn.Pass:
            return sfn.Pass(
                self,
                f"{state_id} {key}",
                parameters={
                    **summary,
                    "status": status,
                    "failures": sfn.JsonPath.array(
                        sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error"))
                    ),
                },
                result_path="$.collected",
            ).next(verdict)

        collect = collect_step(self, self.function, summary, gate.tolerance, "$.collected")
        collect.add_catch(failed, **catch)
        verdict = step(
            "Verdict",
            {
                "action": "gate_verdict",
                "run": sfn.JsonPath.object_at("$.run"),
                "evaluation": gate.planned.evaluation,
                "result": sfn.JsonPath.object_at("$.collected"),
                "answers": sfn.JsonPath.object_at("$.answers"),
                "thresholds": gate.thresholds,
            },
            "$.gate",
        )
        request = judged_request(
            gate.planned, key=key, role_arn=self.job_role.role_arn, data_bucket=data_bucket, tags=self.tags
        )
        judged = judged_job(
            self, key, planned=gate.planned, request=request, collect=collect.next(verdict), ended=ended
        )
        metadata = sfn.Pass(
            self,
            "Gate metadata",
            comment="The verdict joins the model package's metadata",
            parameters={
                "merged": sfn.JsonPath.json_merge(
                    sfn.JsonPath.object_at("$.evaluation.customer_metadata"),
                    sfn.JsonPath.object_at("$.gate.customer_metadata"),
                )
            },
            result_path="$.metadata",
        )
        decided = (
            sfn.Choice(self, "Gate passed?")
            .when(sfn.Condition.boolean_equals("$.gate.passed", True), metadata.next(register))
            .otherwise(
                sfn.Fail(
                    self,
                    "GateFailed",
                    comment="The judged answers missed a threshold or fell below the accepted run's",
                    error="EvaluationGateFailed",
                    cause_path="$.gate.reason",
                )
            )
        )
        verdict.next(decided)
        enough = (
            sfn.Choice(self, "Answered?")
            .when(sfn.Condition.number_greater_than("$.answers.rows", 0), judged)
            .otherwise(
                sfn.Fail(
                    self,
                    "NoAnswers",
                    comment="The transform wrote no answer the gate could read",
                    error="EvaluationGateFailed",
                    cause="The candidate's transform output has no answers (see the run's folder)",
                )
            )
        )
        # The answers are there even if the model could not be removed: the gate goes on.
        remove.add_catch(answers, errors=[sfn.Errors.ALL], result_path="$.cleanup")
        return start.next(copy).next(candidate).next(answer).next(remove).next(answers).next(enough)

    def accept(self) -> sfn.IChainable:
        """`{"accept": "<run id>"}`: that gate run's scores become the accepted ones (runs.accept), as
        the evaluation state machine accepts a run."""
        step = invoke_step(
            self,
            "Accept",
            self.function,
            {"action": "accept", "run": sfn.JsonPath.string_at("$.accept")},
            "$.accepted",
        )
        return step.next(sfn.Succeed(self, "Accepted"))

    def _remove_state(self, name: str) -> dict:
        """DeleteModel of the candidate: a definition only, its weights stay in the training output."""
        return {
            "Type": "Task",
            "Comment": "The model is a definition only; its weights stay in the training output",
            "Resource": f"arn:{Stack.of(self).partition}:states:::aws-sdk:sagemaker:deleteModel",
            "Parameters": sfn.FieldUtils.render_object({"ModelName": name}),
            "ResultPath": None,
        }

    def _transform_state(self, name: str) -> dict:
        """The transform as raw Amazon States Language: aws-cdk-lib's SageMakerCreateTransformJob has no
        DataProcessing (InputFilter, JoinSource) and grants on the passed role by itself."""
        parameters = {
            "TransformJobName": name,
            "ModelName": name,
            "BatchStrategy": "SingleRecord",
            "MaxConcurrentTransforms": 1,
            "ModelClientConfig": {
                "InvocationsTimeoutInSeconds": ANSWER_TIMEOUT_SECONDS,
                "InvocationsMaxRetries": 1,
            },
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": run_object(self.data_bucket, self.gate.key, "requests.jsonl", uri=True),
                    }
                },
                "ContentType": "application/json",
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": run_object(self.data_bucket, self.gate.key, "transform/", uri=True),
                "Accept": "application/json",
                "AssembleWith": "Line",
                "KmsKeyId": self.encryption_key.key_arn,
            },
            "TransformResources": {"InstanceType": self.instance_type, "InstanceCount": 1},
            "DataProcessing": {"InputFilter": INPUT_FILTER, "JoinSource": "Input"},
        }
        if self.tags:
            parameters["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())]
        return {
            "Type": "Task",
            "Comment": "The candidate answers each request (.sync: the state ends with the job)",
            "Resource": f"arn:{Stack.of(self).partition}:states:::sagemaker:createTransformJob.sync",
            "Parameters": sfn.FieldUtils.render_object(parameters),
            "ResultSelector": {"status.$": "$.TransformJobStatus"},
            "ResultPath": "$.transform",
        }

    def widgets(self) -> list[cw.GraphWidget]:
        """The candidates' judged scores (collect publishes them per run) and their drops."""
        evaluation = self.gate.planned.evaluation
        return [
            cw.GraphWidget(
                title=f"Evaluation gate: judged scores of the candidates ({evaluation})",
                left=[overall_scores(self.profile_name, evaluation)],
                width=12,
            ),
            cw.GraphWidget(
                title="Evaluation gate: metrics below the accepted candidate's",
                left=[evaluation_metric(self.profile_name, "Regressions", evaluation)],
                width=12,
            ),
        ]

    # ----------------------------------------------------------------------------------- the role

    def grant(self, role: iam.IRole, encryption_key: kms.IKey) -> list:
        """The pipeline state machine's statements for the gate; returns its acknowledgements."""
        asset = self.requests_asset
        statements = [
            *job_creation_statements(self, job_role=self.job_role, tags=self.tags),
            iam.PolicyStatement(
                sid="ReadTheGateRequests",
                actions=["s3:GetObject"],
                resources=[asset.bucket.arn_for_objects(asset.s3_object_key)],
            ),
            key_through_s3(self, encryption_key.key_arn, sid="EncryptTheGateRequests"),
            iam.PolicyStatement(
                sid="PassTheCandidateRole",
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            # What createTransformJob.sync calls (Step Functions developer guide, "IAM policies for
            # calling SageMaker AI": CreateTransformJob, DescribeTransformJob, StopTransformJob,
            # ListTags, and the managed rule it watches the job with).
            iam.PolicyStatement(
                sid="WatchTheTransformJobs",
                actions=["sagemaker:DescribeTransformJob", "sagemaker:ListTags"],
                resources=[self.transform_jobs],
            ),
            iam.PolicyStatement(
                sid="CreateTheCandidates",
                actions=["sagemaker:CreateModel", "sagemaker:CreateTransformJob"],
                resources=[self.models, self.transform_jobs],
                conditions=request_tags(self.tags),
            ),
            *tag_scoped(
                "StopTheTransformJobs", ["sagemaker:StopTransformJob"], [self.transform_jobs], self.tags
            ),
            *tag_scoped("RemoveTheCandidates", ["sagemaker:DeleteModel"], [self.models], self.tags),
            sync_rule_statement(
                self, "WatchTransformJobEvents", "StepFunctionsGetEventsForSageMakerTransformJobsRule"
            ),
        ]
        if self.tags:
            statements.append(
                sagemaker_tag_on_create(
                    "TagTheCandidates",
                    [self.models, self.transform_jobs],
                    self.tags,
                    ["CreateModel", "CreateTransformJob"],
                )
            )
        for statement in statements:
            role.add_to_principal_policy(statement)
        return [
            *job_creation_acknowledgements(self),
            RUN_FOLDERS.on_resolved(
                self.data_bucket.arn_for_objects(f"{PREFIX}runs/*/{self.gate.key}/requests.jsonl")
            ),
            CANDIDATE_NAMES.on(nag_resource(self, self.models)),
            CANDIDATE_NAMES.on(nag_resource(self, self.transform_jobs)),
            compliance.LAMBDA_TASK_VERSIONS.on(
                f"{nag_resource(self, self.function.function.function_arn)}:*"
            ),
        ]
