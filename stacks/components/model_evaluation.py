"""ModelEvaluation: the profile's Bedrock evaluation jobs (stacks/planning/evaluation.py run_jobs), run
by a Standard Step Functions state machine on the profile's schedule and after every deployment of the
Bedrock stack that changes a job's inputs (docs/evaluation.md).

One execution is one run:

1. `Accept?`: an execution started with `{"accept": "<run id>"}` makes that run's scores the accepted
   ones (lambdas/evaluation, `accept`) and ends;
2. `Select` (lambdas/evaluation, `select`) names the run (`<UTC time>-<12 hex digits>`) and picks its
   jobs: every job on a schedule or by hand, after a deployment the jobs whose input digest differs
   from the last run's (`evaluation/state/last-run.json`);
3. one branch per job (`Jobs`, a Parallel state): copy the job's dataset (a file asset, published by
   `cdk deploy` to the bootstrap bucket) to `evaluation/runs/<run>/<key>/dataset.jsonl` of the data
   bucket, so a run keeps the exact rows it was scored on; CreateEvaluationJob (AWS SDK integration:
   Bedrock's evaluation jobs have no optimized `.sync` integration); GetEvaluationJob every
   POLL_SECONDS while it is InProgress or Stopping; then `collect` reads the job's output files, writes
   its scores and report, compares them with the accepted run and publishes the scores;
   A traffic job (the profile's `evaluation.traffic`, on the schedule only) samples the alias target's
   logged invocations instead of copying a dataset: `sample` (lambdas/evaluation/traffic.py) reads
   Bedrock's invocation logs in the data bucket, redacts the sample with the guardrail's PII policy
   (ApplyGuardrail) and writes the dataset; Bedrock's judge then scores those responses (an
   own-responses job: `precomputedInferenceSource`) and `collect` compares them with the accepted
   scores of the model evaluation job of the same target;
4. `Report` (`report`) writes the run's Markdown report, the latest report, each evaluation's verdict
   (`evaluation/latest/<evaluation>.json`, which the training approval can require) and the digests of
   the jobs that completed; a run with a job that did not complete ends failed.

Bedrock evaluation jobs cannot take a guardrail (CreateEvaluationJob has no guardrail field for a
model's inference); the role that runs them therefore invokes the evaluated models, the judge and the
generator without the profile's mandatory-guardrail condition. Its datasets are the profile's own
reviewed files, never user input. A retrieve_and_generate job passes the guardrail in its
generationConfiguration.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import BedrockCatalog
from genai_stack.compliance import STATE_MACHINE_DELIVERY_AND_TRACING, nag_resource
from genai_stack.components.invocation_log_destination import INVOCATION_LOG_PREFIX
from genai_stack.components.model_access import (
    ApplicationProfileRef,
    GuardrailRef,
    ModelAccess,
    model_or_profile_arn,
)
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.tag_conditions import key_through_s3, request_tags
from genai_stack.planning.evaluation import RunJob, create_request, own_responses_source

NAMESPACE = "GenAiStack/Evaluation"
PREFIX = "evaluation/"  # everything a run reads and writes in the data bucket
POLL_SECONDS = 300  # GetEvaluationJob while the job runs (a judge job takes tens of minutes or more)
TIMEOUT = Duration.days(3)  # an execution longer than this times out (and alarms)
# Errors a call may succeed after, retried with backoff (Step Functions names AWS SDK service
# exceptions `<Service>.<Exception>`: "AWS SDK service integrations", error handling).
TRANSIENT = {
    "bedrock": ["Bedrock.ThrottlingException", "Bedrock.InternalServerException"],
    "s3": ["S3.InternalErrorException", "S3.SlowDownException", "S3.S3Exception"],
}
LAMBDA_TRANSIENT = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
RUNNING = ("InProgress", "Stopping")  # GetEvaluationJob statuses that are not an end
QUOTA_RETRY_SECONDS = 600  # then doubled up to an hour, with jitter: eight tries wait up to 6.5 hours
# A traffic job with fewer redacted rows than this reports NoTraffic instead of scoring so few.
MIN_TRAFFIC_ROWS = 10

GENERATED_JOB_ARNS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Bedrock generates an evaluation job's ARN (evaluation-job/<random id>); the job's name is not "
        "part of it, so CreateEvaluationJob and GetEvaluationJob are scoped to the resource type in this "
        "account and Region, and the role Bedrock assumes trusts only evaluation jobs of this account "
        "(aws:SourceArn)."
    ),
)
RUN_FOLDERS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Each run writes under evaluation/runs/<run id>/, a name made at run time; the role reads and writes "
        "only under the evaluation/ prefix of the data bucket."
    ),
)
CREATE_ON_ANY_MODEL = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "bedrock:CreateEvaluationJob is authorized on the models a job names or '*' (Service Authorization "
        "Reference, Amazon Bedrock), and an application inference profile is not among its resource types; "
        "the statement holds every job to the profile's tags, and only the job role can invoke the models."
    ),
)
RETRIEVE_AND_GENERATE = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "bedrock:RetrieveAndGenerate has no resource type in the Service Authorization Reference ('*' "
        "only); the knowledge bases it reads are the job role's bedrock:Retrieve, on their exact ARNs."
    ),
)
READS_THE_LOGS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Bedrock names its invocation log objects by hour and request (yyyy/mm/dd/hh/<id>.json.gz); the "
        "evaluation function reads, never writes, the logs of this account and Region under that prefix."
    ),
)
NAMESPACED_METRICS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "cloudwatch:PutMetricData has no resource type in the Service Authorization Reference; the "
        "statement is limited to the GenAiStack/Evaluation namespace with the cloudwatch:namespace "
        "condition key."
    ),
)


def retried(state, errors: list[str], *, interval: int = 10, attempts: int = 5):
    """`state` retried on `errors` with exponential backoff and full jitter."""
    state.add_retry(
        errors=errors,
        interval=Duration.seconds(interval),
        max_attempts=attempts,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return state


@dataclass(frozen=True)
class EvaluatedJob:
    """A job and the deployed names it runs against. `model`: what a model job invokes (the alias
    target's application inference profile, so the cost-allocation tag reaches its tokens);
    `prompt_version`: the version of the prompt its rows fill (a token; "-" without a prompt);
    `knowledge_base_id` / `knowledge_base_arn`: a knowledge-base job's (its generator is the plan's);
    `logged_as`: a traffic job's, the model ids its invocations are logged under (every application
    inference profile of the alias that copies the model)."""

    job: RunJob
    model: ApplicationProfileRef | None = None
    prompt_version: str = "-"
    knowledge_base_id: str | None = None
    knowledge_base_arn: str | None = None
    logged_as: tuple[str, ...] = ()


def dataset_file(job: RunJob) -> Path:
    """The job's dataset as a file the asset is made from."""
    return dataset_text_file(job.dataset, "dataset.jsonl")


def dataset_text_file(text: str, name: str) -> Path:
    """`text` as a file an asset is made from (in a folder named by its content, so a synthesis of the
    same profile makes the same asset)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "genai-stack-evaluation" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def sdk_parameters(value: object) -> object:
    """A boto3-shaped request as an AWS SDK integration takes it: every member name PascalCase, nested
    ones too ("AWS SDK service integrations": parameter names as in the API, first letter upper case)."""
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: sdk_parameters(item) for key, item in value.items()}
    if isinstance(value, list):
        return [sdk_parameters(item) for item in value]
    return value


def evaluation_jobs_arn(scope: Construct) -> str:
    """Every evaluation job of this account and Region: Bedrock makes the job ids."""
    return Stack.of(scope).format_arn(service="bedrock", resource="evaluation-job", resource_name="*")


def evaluation_metric(profile_name: str, name: str, evaluation: str, statistic: str = "Maximum") -> cw.Metric:
    """A metric lambdas/evaluation/runs.py publishes per evaluation (Profile, Evaluation)."""
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"Profile": profile_name, "Evaluation": evaluation},
        statistic=statistic,
        period=Duration.hours(1),
    )


def overall_scores(profile_name: str, evaluation: str | None = None) -> cw.MathExpression:
    """Every job's overall mean of every metric (Category `all`), whatever the prompt version (or one
    evaluation's): a SEARCH over the Score schema (CloudWatch user guide, "CloudWatch search expression
    syntax": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html)."""
    schema = "{" + f"{NAMESPACE},Profile,Evaluation,Alias,Target,PromptVersion,Metric,Category" + "}"
    query = f'{schema} MetricName="Score" Profile="{profile_name}" Category="all"'
    if evaluation is not None:
        query += f' Evaluation="{evaluation}"'
    return cw.MathExpression(
        expression=f"SEARCH('{query}', 'Average', 3600)",
        label="Score",
        period=Duration.hours(1),
        using_metrics={},
    )


def evaluation_job_role(
    scope: Construct,
    *,
    description: str,
    data_bucket: s3.IBucket,
    encryption_key: kms.IKey,
    access: ModelAccess,
) -> iam.Role:
    """The role Bedrock runs evaluation jobs with, trusted by bedrock.amazonaws.com for this account's
    evaluation jobs only ("The wildcard (*) model evaluation job ARN is required": Bedrock user guide,
    automatic-service-roles.html and rag-eval-service-roles.html). What AWS's service-role pages grant
    (those two and judge-service-roles.html): the dataset read, the output bucket's list, location and
    multipart calls, the output written, and the models `access` names. The bucket-level calls are on
    the data bucket as the pages show them, without a prefix condition: the pages do not say which
    prefix Bedrock lists with. The pages' example roles also allow batch inference
    (CreateModelInvocationJob, StopModelInvocationJob on model-invocation-job/*); no page says an
    evaluation job uses it, and those job ARNs cannot be held to tags, so it is not granted
    (docs/evaluation.md, "Permissions")."""
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        "JobRole",
        description=description,
        assumed_by=iam.ServicePrincipal(
            "bedrock.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": evaluation_jobs_arn(scope)},
            },
        ),
        managed_policies=[access.policy],
    )
    datasets = data_bucket.arn_for_objects(f"{PREFIX}runs/*/dataset.jsonl")
    outputs = data_bucket.arn_for_objects(f"{PREFIX}runs/*/output/*")
    for statement in (
        iam.PolicyStatement(
            sid="ReadTheDatasetsAndResults", actions=["s3:GetObject"], resources=[datasets, outputs]
        ),
        iam.PolicyStatement(
            sid="WriteTheResults", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[outputs]
        ),
        iam.PolicyStatement(
            sid="FindTheBucket",
            actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            resources=[data_bucket.bucket_arn],
        ),
        key_through_s3(scope, encryption_key.key_arn, sid="UseThePlatformKeyThroughS3"),
    ):
        role.add_to_policy(statement)
    compliance.acknowledge(role, RUN_FOLDERS.on_resolved(datasets), RUN_FOLDERS.on_resolved(outputs))
    return role


def evaluation_function(
    scope: Construct,
    *,
    profile_name: str,
    description: str,
    data_bucket: s3.IBucket,
    encryption_key: kms.IKey,
    log_retention_days: int,
    timeout_seconds: int = 300,
) -> PythonFunction:
    """lambdas/evaluation, reading and writing under the evaluation prefix of the data bucket and
    publishing to the evaluation namespace only."""
    function = PythonFunction(
        scope,
        "Function",
        package="evaluation",
        # traffic.py and gate.py read log records and answers with the drift monitor's parser.
        with_packages=("drift_monitor",),
        description=description,
        encryption_key=encryption_key,
        log_retention_days=log_retention_days,
        timeout_seconds=timeout_seconds,
        memory_size=512,
        environment={
            "EVALUATION_BUCKET": data_bucket.bucket_name,
            "EVALUATION_PREFIX": PREFIX,
            "EVALUATION_PROFILE": profile_name,
            "EVALUATION_NAMESPACE": NAMESPACE,
        },
    )
    for statement in (
        iam.PolicyStatement(
            sid="ListTheEvaluationFolder",
            actions=["s3:ListBucket"],
            resources=[data_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{PREFIX}*"]}},
        ),
        iam.PolicyStatement(
            sid="ReadAndWriteTheEvaluationFolder",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[data_bucket.arn_for_objects(f"{PREFIX}*")],
        ),
        key_through_s3(scope, encryption_key.key_arn, sid="UseThePlatformKeyThroughS3"),
        iam.PolicyStatement(
            sid="PutEvaluationMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],  # no resource type (Service Authorization Reference, CloudWatch)
            conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
        ),
    ):
        function.role.add_to_policy(statement)
    compliance.acknowledge(
        function.role, NAMESPACED_METRICS, RUN_FOLDERS.on_resolved(data_bucket.arn_for_objects(f"{PREFIX}*"))
    )
    return function


def job_creation_statements(scope: Construct, *, job_role: iam.IRole, tags: Mapping[str, str]) -> list:
    """What a state machine needs to create evaluation jobs run by `job_role`. CreateEvaluationJob's
    resource types are the models a job names (foundation-model, custom-model, prompt routers) or "*"
    (Service Authorization Reference, Amazon Bedrock); the job's own ARN is not one, and an application
    inference profile is not listed. The action is allowed on "*", held to the profile's tags
    (aws:RequestTag, aws:TagKeys); the models themselves are invoked by the job role, which names each."""
    statements = [
        iam.PolicyStatement(
            sid="CreateTheEvaluationJobs",
            actions=["bedrock:CreateEvaluationJob"],
            resources=["*"],
            conditions=request_tags(tags),
        ),
        iam.PolicyStatement(
            sid="PassTheJobRole",
            actions=["iam:PassRole"],
            resources=[job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
        ),
    ]
    if tags:
        statements.append(
            iam.PolicyStatement(
                sid="TagTheEvaluationJobs",
                actions=["bedrock:TagResource"],
                resources=[evaluation_jobs_arn(scope)],
                conditions=request_tags(tags),
            )
        )
    return statements


def job_creation_acknowledgements(scope: Construct) -> list:
    return [GENERATED_JOB_ARNS.on(nag_resource(scope, evaluation_jobs_arn(scope))), CREATE_ON_ANY_MODEL]


def invoke_step(
    scope: Construct, state_id: str, function: PythonFunction, payload: dict, result_path: str | None
) -> tasks.LambdaInvoke:
    """A step of the evaluation function: its answer at `result_path` (None: the answer is the state's
    output), retried on Lambda's transient errors."""
    task = tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=function.function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_path=result_path,
    )
    return retried(task, LAMBDA_TRANSIENT, interval=5, attempts=4)


def run_folder(key: str) -> str:
    """A job's folder in a run, `{}` standing for the run id (States.Format)."""
    return f"{PREFIX}runs/{{}}/{key}/"


def run_object(data_bucket: s3.IBucket, key: str, name: str, *, uri: bool = False) -> str:
    """The key (or s3:// URI) of `name` in the job's folder of the running execution's run."""
    run_id = sfn.JsonPath.string_at("$.run.id")
    if uri:
        return sfn.JsonPath.format(f"s3://{{}}/{run_folder(key)}{name}", data_bucket.bucket_name, run_id)
    return sfn.JsonPath.format(f"{run_folder(key)}{name}", run_id)


def judged_request(
    planned, *, key: str, role_arn: str, data_bucket: s3.IBucket, tags: Mapping[str, str], **targets
) -> dict:
    """create_request for a job of the running execution: named `<key with '-'>-<run token>`, its
    dataset and output in the job's folder of the run; `targets`: create_request's model,
    knowledge base, generator and guardrail."""
    return create_request(
        planned,
        job_name=sfn.JsonPath.format(f"{key.replace('_', '-')}-{{}}", sfn.JsonPath.string_at("$.run.token")),
        role_arn=role_arn,
        dataset_uri=run_object(data_bucket, key, "dataset.jsonl", uri=True),
        output_uri=run_object(data_bucket, key, "output/", uri=True),
        tags=dict(tags),
        **targets,
    )


def job_summary(key: str, baseline_key: str, planned, prompt_version: str = "-") -> dict:
    """What `collect` is told of a job (lambdas/evaluation/handler.py _JobSummary, with tolerance)."""
    return {
        "key": key,
        "baseline_key": baseline_key,
        "evaluation": planned.evaluation,
        "kind": planned.kind,
        "target": planned.target,
        "alias": planned.alias or "-",
        "prompt_version": prompt_version,
        "metrics": list(planned.metrics),
    }


def collect_step(
    scope: Construct, function: PythonFunction, summary: dict, tolerance: float, result_path: str | None
) -> tasks.LambdaInvoke:
    """`collect` of a finished judge job (its GetEvaluationJob answer at $.check)."""
    return invoke_step(
        scope,
        f"Collect {summary['key']}",
        function,
        {
            "action": "collect",
            "run": sfn.JsonPath.object_at("$.run"),
            "job": {**summary, "tolerance": tolerance},
            "check": sfn.JsonPath.object_at("$.check"),
        },
        result_path,
    )


def copy_asset(
    scope: Construct,
    state_id: str,
    *,
    asset: assets.Asset,
    data_bucket: s3.IBucket,
    key: str,
    name: str,
    resource: str,
    comment: str,
) -> tasks.CallAwsService:
    """A file asset (in the CDK bootstrap bucket) copied to `name` in the job's folder of the run;
    `resource`: the copies the state machine may write (one statement for all of its copies)."""
    return retried(
        tasks.CallAwsService(
            scope,
            state_id,
            comment=comment,
            service="s3",
            action="copyObject",
            iam_action="s3:PutObject",
            iam_resources=[resource],
            parameters={
                "Bucket": data_bucket.bucket_name,
                "Key": run_object(data_bucket, key, name),
                "CopySource": f"{asset.s3_bucket_name}/{asset.s3_object_key}",
                # The copy carries no tags, so it needs no s3:GetObjectTagging on the asset.
                "TaggingDirective": "REPLACE",
            },
            result_path=sfn.JsonPath.DISCARD,
        ),
        TRANSIENT["s3"],
    )


def judged_job(
    scope: Construct, key: str, *, planned, request: dict, collect: sfn.IChainable, ended
) -> sfn.IChainable:
    """CreateEvaluationJob, then GetEvaluationJob every POLL_SECONDS while the job runs, then `collect`.
    `ended(state_id, status)` makes the state a failure ends the branch in."""
    # A custom state, not CallAwsService: that task adds its own statement for the action on
    # iam_resources, unconditioned, and the role's CreateEvaluationJob is held to the profile's tags.
    create = sfn.CustomState(
        scope,
        f"Create {key}",
        state_json={
            "Type": "Task",
            "Comment": f"{planned.name}: {', '.join(planned.metrics)}",
            "Resource": f"arn:{Aws.PARTITION}:states:::aws-sdk:bedrock:createEvaluationJob",
            "Parameters": sfn.FieldUtils.render_object(sdk_parameters(request)),
            "ResultSelector": {"arn.$": "$.JobArn"},
            "ResultPath": "$.job",
        },
    )
    retried(create, TRANSIENT["bedrock"])
    # The account's concurrent evaluation jobs are a Bedrock quota: a run's jobs start together, and a
    # job over the quota waits for others to end ("Resubmit your request later": Bedrock API
    # reference, CreateEvaluationJob, ServiceQuotaExceededException).
    create.add_retry(
        errors=["Bedrock.ServiceQuotaExceededException"],
        interval=Duration.seconds(QUOTA_RETRY_SECONDS),
        max_attempts=8,
        backoff_rate=2,
        max_delay=Duration.hours(1),
        jitter_strategy=sfn.JitterType.FULL,
    )
    create.add_catch(ended("NotCreated", "NotCreated"), errors=[sfn.Errors.ALL], result_path="$.error")
    wait = sfn.Wait(scope, f"Wait {key}", time=sfn.WaitTime.duration(Duration.seconds(POLL_SECONDS)))
    check = retried(
        tasks.CallAwsService(
            scope,
            f"Check {key}",
            service="bedrock",
            action="getEvaluationJob",
            iam_action="bedrock:GetEvaluationJob",
            iam_resources=[evaluation_jobs_arn(scope)],
            parameters={"JobIdentifier": sfn.JsonPath.string_at("$.job.arn")},
            result_selector={
                "status": sfn.JsonPath.string_at("$.Status"),
                "job": sfn.JsonPath.string_at("$.JobArn"),
                "response": sfn.JsonPath.entire_payload,
            },
            result_path="$.check",
        ),
        TRANSIENT["bedrock"],
    )
    check.add_catch(ended("Unchecked", "Unknown"), errors=[sfn.Errors.ALL], result_path="$.error")
    poll = wait.next(check).next(
        sfn.Choice(scope, f"Running {key}?")
        .when(sfn.Condition.or_(*(sfn.Condition.string_equals("$.check.status", s) for s in RUNNING)), wait)
        .otherwise(collect)
    )
    return create.next(poll)


class ModelEvaluation(Construct):
    """The state machine, the role Bedrock runs the jobs with, the function that selects, collects,
    reports and accepts, the two triggers, the alarms and a dashboard section."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        jobs: Sequence[EvaluatedJob],
        judge: str,
        schedule: str,
        tolerance: float,
        catalog: BedrockCatalog,
        guardrail: GuardrailRef | None,
        guardrail_profile_arns: Sequence[str] = (),
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        job_tags: Mapping[str, str] | None = None,
    ) -> None:
        """`guardrail` (and its profiles in other Regions): what a retrieve_and_generate job answers
        under. The job role invokes exactly the evaluated application inference profiles (and what they
        copy), the judge and the generators, through a ModelAccess policy of its own."""
        super().__init__(scope, construct_id)
        if not jobs:
            raise ValueError("ModelEvaluation needs at least one job")
        self.profile_name = profile_name
        self.jobs = list(jobs)
        tags = dict(job_tags or {})
        self.evaluation_jobs = evaluation_jobs_arn(self)
        datasets = self.datasets = data_bucket.arn_for_objects(f"{PREFIX}runs/*/dataset.jsonl")

        # --- what the jobs invoke -----------------------------------------------------------------
        # A traffic job's model is what its logged invocations name: Bedrock scores their answers and
        # invokes only the judge.
        applications = list(
            {
                e.model.arn: e.model
                for e in self.jobs
                if e.model is not None and e.job.planned.kind == "model"
            }.values()
        )
        generators = sorted({e.job.planned.generator for e in self.jobs if e.job.planned.generator})
        self.generator_arns = {g: model_or_profile_arn(self, g, catalog) for g in generators}
        # The application profiles' sources are invoked through them (ModelAccess's destination rules).
        sources = sorted({a.source for a in applications} | {judge, *generators})
        rail = guardrail if generators else None
        access = ModelAccess(
            self,
            "Access",
            catalog=catalog,
            models=[m for m in sources if m not in catalog.inference_profiles],
            inference_profiles=[m for m in sources if m in catalog.inference_profiles],
            application_profiles=applications,
            guardrail=rail,
            guardrail_profile_arns=guardrail_profile_arns if rail else (),
        )
        inference_profile_arns = [a.arn for a in applications] + [
            model_or_profile_arn(self, m, catalog) for m in sources if m in catalog.inference_profiles
        ]
        knowledge_base_arns = sorted(
            {e.knowledge_base_arn for e in self.jobs if e.knowledge_base_arn}, key=str
        )
        # RetrieveAndGenerate's guardrailConfiguration takes the guardrail's id (`[a-z0-9]+`, Bedrock API
        # reference, GuardrailConfiguration): the last part of its ARN (guardrail/<id>).
        self.guardrail_config = (Fn.select(1, Fn.split("/", rail.arn)), rail.version) if rail else None

        # --- the role Bedrock runs the jobs with ------------------------------------------------
        self.service_role = evaluation_job_role(
            self,
            description=f"genai-stack {profile_name}: Bedrock evaluation jobs",
            data_bucket=data_bucket,
            encryption_key=encryption_key,
            access=access,
        )
        job_statements = []
        if inference_profile_arns:
            job_statements.append(
                iam.PolicyStatement(
                    sid="ReadTheInferenceProfiles",
                    actions=["bedrock:GetInferenceProfile"],
                    resources=sorted(set(inference_profile_arns), key=str),
                )
            )
        if knowledge_base_arns:
            job_statements.append(
                iam.PolicyStatement(
                    sid="QueryTheKnowledgeBases",
                    actions=["bedrock:Retrieve"],
                    resources=sorted(set(knowledge_base_arns), key=str),
                )
            )
        if generators:
            # RetrieveAndGenerate has no resource type ("*" only, Service Authorization Reference); the
            # knowledge base it reads is still the Retrieve above.
            job_statements.append(
                iam.PolicyStatement(
                    sid="GenerateFromTheKnowledgeBases",
                    actions=["bedrock:RetrieveAndGenerate"],
                    resources=["*"],
                )
            )
        for statement in job_statements:
            self.service_role.add_to_policy(statement)
        if generators:
            compliance.acknowledge(self.service_role, RETRIEVE_AND_GENERATE)

        # --- the function ---------------------------------------------------------------------
        self.function = evaluation_function(
            self,
            profile_name=profile_name,
            description=(
                f"genai-stack {profile_name}: selects, samples, collects, reports and accepts evaluation runs"
            ),
            data_bucket=data_bucket,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            # A traffic sample reads a week of logs and redacts each row with ApplyGuardrail: Lambda's
            # longest run; traffic.py stops drawing before it ends.
            timeout_seconds=900 if any(e.job.planned.kind == "traffic" for e in self.jobs) else 300,
        )
        self.traffic_guardrail = None
        if any(e.job.planned.kind == "traffic" for e in self.jobs):
            self._allow_sampling(data_bucket, guardrail, guardrail_profile_arns)

        # --- the state machine ------------------------------------------------------------------

        accept = self._invoke(
            "Accept", {"action": "accept", "run": sfn.JsonPath.string_at("$.accept")}, "$.accepted"
        ).next(sfn.Succeed(self, "Accepted"))
        select = self._invoke(
            "Select",
            {
                "action": "select",
                "reason": sfn.JsonPath.string_at("$.reason"),
                "digests": sfn.JsonPath.object_at("$.digests"),
                "jobs": [
                    {
                        "key": e.job.key,
                        "digest": e.job.digest,
                        "schedule_only": e.job.planned.kind == "traffic",
                    }
                    for e in self.jobs
                ],
                "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
                "started": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            },
            "$.run",
        )
        defaults = sfn.Pass(
            self,
            "Defaults",
            comment="A run started without reason or digests (by hand) runs every job",
            parameters={"reason": "manual", "digests": {}},
        )
        parallel = sfn.Parallel(self, "Jobs", result_path="$.results")
        self.assets: dict[str, assets.Asset] = {}
        for evaluated in self.jobs:
            parallel.branch(self._branch(evaluated, judge, tolerance, data_bucket, tags))
        report = self._invoke(
            "Report",
            {
                "action": "report",
                "run": sfn.JsonPath.object_at("$.run"),
                "results": sfn.JsonPath.list_at("$.results"),
            },
            "$.report",
        )
        ended = (
            sfn.Choice(self, "AllCompleted?")
            .when(
                sfn.Condition.is_present("$.report.failed[0]"),
                sfn.Fail(
                    self,
                    "SomeJobsFailed",
                    error="EvaluationJobsFailed",
                    cause="A job of the run did not complete: the run's report lists it and Bedrock's reason",
                ),
            )
            .otherwise(sfn.Succeed(self, "Done"))
        )
        anything = (
            sfn.Choice(self, "AnythingToRun?")
            .when(sfn.Condition.is_present("$.run.keys[0]"), parallel.next(report).next(ended))
            .otherwise(sfn.Succeed(self, "NothingChanged"))
        )
        run = select.next(anything)
        definition = (
            sfn.Choice(self, "Accept?")
            .when(sfn.Condition.is_present("$.accept"), accept)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.reason"), sfn.Condition.is_present("$.digests")
                ),
                run,
            )
            .otherwise(defaults.next(run))
        )
        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=f"genai-stack {profile_name}: Bedrock evaluation runs ({len(self.jobs)} jobs)",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=TIMEOUT,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        # CreateEvaluationJob's resource types are the models a job names (foundation-model, custom-model,
        # prompt routers) or "*" (Service Authorization Reference, Amazon Bedrock); the job's own ARN is
        # not one, and an application inference profile is not listed. The action is allowed on "*",
        # held to the profile's tags (aws:RequestTag, aws:TagKeys); the models themselves are invoked
        # by the job role, which names each.
        machine_statements = [
            *job_creation_statements(self, job_role=self.service_role, tags=tags),
            key_through_s3(self, encryption_key.key_arn, sid="EncryptTheDatasetCopies"),
        ]
        if self.assets:
            machine_statements.append(
                iam.PolicyStatement(
                    sid="ReadTheDatasetAssets",
                    actions=["s3:GetObject"],
                    resources=sorted(
                        {a.bucket.arn_for_objects(a.s3_object_key) for a in self.assets.values()}, key=str
                    ),
                )
            )
        for statement in machine_statements:
            self.state_machine.add_to_role_policy(statement)
        compliance.acknowledge(
            self.state_machine.role,
            STATE_MACHINE_DELIVERY_AND_TRACING,
            *job_creation_acknowledgements(self),
            RUN_FOLDERS.on_resolved(datasets),
            compliance.LAMBDA_TASK_VERSIONS.on(
                f"{nag_resource(self, self.function.function.function_arn)}:*"
            ),
        )

        # --- triggers ---------------------------------------------------------------------------
        self.digests = {e.job.key: e.job.digest for e in self.jobs}
        self.schedule_rule = events.Rule(
            self,
            "Schedule",
            description=f"genai-stack {profile_name}: run every evaluation on its schedule",
            schedule=events.Schedule.expression(schedule),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object({"reason": "schedule", "digests": self.digests}),
                    retry_attempts=2,
                )
            ],
        )
        # The stack's own deployments (CloudFormation's stack status change events on the default bus:
        # CloudFormation user guide, "Using EventBridge with CloudFormation"). This rule is in the stack
        # whose prompts, guardrail, knowledge bases and application inference profiles the jobs use, and
        # its input is the jobs' digests: the deployment that changes one also updates this input before
        # the stack reaches UPDATE_COMPLETE, and the run re-runs exactly the jobs whose digest changed.
        self.deployment_rule = events.Rule(
            self,
            "Deployment",
            description=f"genai-stack {profile_name}: re-run the evaluations a deployment changed",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=["CloudFormation Stack Status Change"],
                resources=[Stack.of(self).stack_id],
                detail={"status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}},
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object(
                        {"reason": "deployment", "digests": self.digests}
                    ),
                    retry_attempts=2,
                )
            ],
        )
        self._alarms(hub)

    def _allow_sampling(
        self, data_bucket: s3.IBucket, guardrail: GuardrailRef | None, guardrail_profile_arns: Sequence[str]
    ) -> None:
        """What `sample` needs for the traffic jobs: the invocation logs of this account and Region in
        the data bucket (where InvocationLogging delivers them: `<prefix>AWSLogs/<account>/
        BedrockModelInvocationLogs/<region>/`, Bedrock user guide, "Monitor model invocation using
        CloudWatch Logs and Amazon S3"), read only; ApplyGuardrail with the profile's guardrail (and its
        guardrail profile in each destination Region, as ModelAccess grants it)."""
        if guardrail is None:
            raise ValueError("traffic evaluations redact with the profile's guardrail: it has none")
        stack = Stack.of(self)
        logs = f"{INVOCATION_LOG_PREFIX}AWSLogs/{stack.account}/BedrockModelInvocationLogs/{stack.region}/"
        self.logs_prefix = logs
        self.traffic_guardrail = guardrail
        self.function.function.add_environment("EVALUATION_LOGS_PREFIX", logs)
        role = self.function.role
        for statement in (
            iam.PolicyStatement(
                sid="ListTheInvocationLogs",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{logs}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheInvocationLogs",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(f"{logs}*")],
            ),
            iam.PolicyStatement(
                sid="RedactWithTheGuardrail",
                actions=["bedrock:ApplyGuardrail"],
                resources=[guardrail.arn, *guardrail_profile_arns],
            ),
        ):
            role.add_to_policy(statement)
        if guardrail.key_arn is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="DecryptTheGuardrail", actions=["kms:Decrypt"], resources=[guardrail.key_arn]
                )
            )
        compliance.acknowledge(role, READS_THE_LOGS.on_resolved(data_bucket.arn_for_objects(f"{logs}*")))

    def _invoke(self, state_id: str, payload: dict, result_path: str | None) -> tasks.LambdaInvoke:
        return invoke_step(self, state_id, self.function, payload, result_path)

    # ----------------------------------------------------------------------------------- a job

    def _branch(
        self,
        evaluated: EvaluatedJob,
        judge: str,
        tolerance: float,
        data_bucket: s3.IBucket,
        tags: Mapping[str, str],
    ) -> sfn.IChainable:
        job = evaluated.job
        planned = job.planned
        key = job.key
        summary = job_summary(key, job.baseline_key, planned, evaluated.prompt_version)

        def ended(state_id: str, status: str) -> sfn.Pass:
            return sfn.Pass(
                self,
                f"{state_id} {key}",
                parameters={**summary, "status": status, "error": sfn.JsonPath.object_at("$.error")},
            )

        prepare = (
            self._sample(evaluated, summary, ended)
            if planned.kind == "traffic"
            else self._copy(job, data_bucket, ended)
        )

        request = judged_request(
            planned,
            key=key,
            role_arn=self.service_role.role_arn,
            data_bucket=data_bucket,
            tags=tags,
            model=evaluated.model.arn if evaluated.model else None,
            knowledge_base_id=evaluated.knowledge_base_id,
            generator=self.generator_arns.get(planned.generator) if planned.generator else None,
            guardrail=self.guardrail_config if planned.generator else None,
        )
        if planned.judge is not None and planned.judge != judge:
            raise ValueError(f"{planned.name}: judged by {planned.judge}, not the profile's judge {judge}")
        collect = collect_step(self, self.function, summary, tolerance, None)
        collect.add_catch(
            ended("NotCollected", "NotCollected"), errors=[sfn.Errors.ALL], result_path="$.error"
        )
        judged = judged_job(self, key, planned=planned, request=request, collect=collect, ended=ended)
        return (
            sfn.Choice(self, f"Selected {key}?")
            .when(sfn.Condition.is_present(f"$.run.selected.{key}"), prepare(judged))
            .otherwise(sfn.Pass(self, f"Skip {key}", parameters={**summary, "status": "Skipped"}))
        )

    def _copy(self, job: RunJob, data_bucket: s3.IBucket, ended):
        """The job's dataset (a file asset) copied into the run's folder; `then` follows the copy."""
        asset = assets.Asset(self, f"Dataset-{job.key}", path=str(dataset_file(job)))
        self.assets[job.key] = asset
        copy = copy_asset(
            self,
            f"Copy {job.key}",
            asset=asset,
            data_bucket=data_bucket,
            key=job.key,
            name="dataset.jsonl",
            resource=self.datasets,
            comment=f"The rows of set {job.planned.set} as this run scores them",
        )
        copy.add_catch(ended("NotCopied", "NotCreated"), errors=[sfn.Errors.ALL], result_path="$.error")
        return lambda then: copy.next(then)

    def _sample(self, evaluated: EvaluatedJob, summary: dict, ended):
        """A traffic job's dataset sampled from the invocation logs and redacted (lambdas/evaluation/
        traffic.py); with fewer than MIN_TRAFFIC_ROWS rows the branch ends NoTraffic."""
        job, key = evaluated.job, evaluated.job.key
        if not evaluated.logged_as:
            raise ValueError(
                f"{job.planned.name}: a traffic job needs the model ids its target is logged under"
            )
        rail = self.traffic_guardrail
        sample = self._invoke(
            f"Sample {key}",
            {
                "action": "sample",
                "run": sfn.JsonPath.object_at("$.run"),
                "job": {
                    "key": key,
                    # The gateway invokes each target through its application inference profile, so
                    # its invocations are logged under that ARN; the evaluation jobs' own invocations of
                    # it (their role) are left out.
                    "identifiers": list(evaluated.logged_as),
                    "excluded_roles": [self.service_role.role_name],
                    "label": own_responses_source(job.planned),
                    "sample": job.planned.rows,
                    "days": job.planned.days,
                },
                "guardrail": {"id": rail.arn, "version": rail.version},
            },
            "$.sampled",
        )
        sample.add_catch(ended("NotSampled", "NotCreated"), errors=[sfn.Errors.ALL], result_path="$.error")
        too_few = sfn.Pass(
            self,
            f"NoTraffic {key}",
            parameters={**summary, "status": "NoTraffic", "rows": sfn.JsonPath.number_at("$.sampled.rows")},
        )
        return lambda then: sample.next(
            sfn.Choice(self, f"Enough {key}?")
            .when(sfn.Condition.number_greater_than_equals("$.sampled.rows", MIN_TRAFFIC_ROWS), then)
            .otherwise(too_few)
        )

    # ---------------------------------------------------------------------------------- signals

    def metric(self, name: str, evaluation: str, statistic: str = "Maximum") -> cw.Metric:
        """A metric the function publishes per evaluation (lambdas/evaluation/runs.py)."""
        return evaluation_metric(self.profile_name, name, evaluation, statistic)

    def overall_scores(self) -> cw.MathExpression:
        return overall_scores(self.profile_name)

    def _alarms(self, hub: MonitoringHub) -> None:
        self.alarms: list[cw.Alarm] = []
        evaluations = sorted({e.job.planned.evaluation for e in self.jobs})
        for evaluation in evaluations:
            self.alarms.append(
                hub.alarm(
                    self,
                    f"Regressions-{evaluation}",
                    metric=self.metric("Regressions", evaluation),
                    threshold=1,
                    description=(
                        f"Evaluation {evaluation} of {self.profile_name}: a score fell beyond the tolerance "
                        "below the accepted run's"
                    ),
                    # A run publishes its count once; until the next run (or an accepted run, which
                    # publishes 0) the verdict stands.
                    missing=cw.TreatMissingData.IGNORE,
                )
            )
        self.alarms.append(
            hub.alarm(
                self,
                "RunsFailed",
                metric=self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                description=(
                    f"Evaluation runs of {self.profile_name}: a run failed (a job was not created, failed or "
                    "was not collected: the run's report says which)"
                ),
                # Step Functions publishes ExecutionsFailed only for periods with a failed execution.
                missing=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        hub.add_section(
            f"Evaluations ({self.profile_name})",
            [
                cw.GraphWidget(
                    title="Overall scores (each evaluation, target, prompt version and metric)",
                    left=[self.overall_scores()],
                    width=24,
                ),
                cw.GraphWidget(
                    title="Metrics beyond tolerance, per evaluation",
                    left=[self.metric("Regressions", e) for e in evaluations],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Evaluation runs",
                    left=[
                        self.state_machine.metric_started(period=Duration.hours(1), label="Started"),
                        self.state_machine.metric_failed(period=Duration.hours(1), label="Failed"),
                    ],
                    width=12,
                ),
            ],
        )
