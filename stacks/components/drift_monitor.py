"""DriftMonitor: our own scheduled drift job over captured requests and Bedrock invocation logs.

SageMaker Model Monitor "is no longer open to new customers" (SageMaker developer guide, "Data capture",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html). Drift of LLM traffic
is measured instead by a Lambda function (`lambdas/drift_monitor`) that an EventBridge rule runs on the
profile's schedule (hourly by default). Each run reads the last window of

- SageMaker data capture under `data-capture/<endpoint>/AllTraffic/yyyy/mm/dd/hh/` of the artifacts
  bucket (where `ModelEndpoint` points the capture), and/or
- Bedrock model invocation logs under `bedrock-invocation-logs/AWSLogs/<account>/
  BedrockModelInvocationLogs/<region>/yyyy/mm/dd/hh/` of the data bucket (`InvocationLogging`),

and publishes to the `GenAiStack/Drift` namespace, dimensions Profile, Source, Target: Requests,
PromptLengthP50/P90, AnswerLengthP50/P90, NonAsciiShare, CjkShare, RefusalRate,
GuardrailInterventionRate, PromptDistance and AnswerDistance (cosine distance of the window's mean
hashed-trigram embedding from the baseline centroid, kept at each source's `baseline_key`; the first
window with `min_records` records becomes the baseline: delete the object to take a new one), and one
RunsCompleted per run (dimension Profile).

Alarms (registered with the hub):
- PromptDistance and AnswerDistance above `distance_threshold`, and RefusalRate above
  `refusal_rate_percent`, in two consecutive windows. Missing data is NOT_BREACHING on purpose: a window
  with fewer than `min_records` records publishes no rate or distance (an endpoint scaled to zero at
  night, a quiet hour), and that is not drift;
- RunsCompleted below 1 per window for three windows, missing data BREACHING: the job itself stopped
  (a failing function, a disabled rule, a broken role) must not look like "no drift".

The function's role may read exactly the sources' prefixes (s3:ListBucket with s3:prefix, s3:GetObject),
read and write exactly the baseline objects, use the platform key only through S3 (kms:ViaService), and
put metrics only in its namespace (cloudwatch:namespace).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.invocation_log_destination import INVOCATION_LOG_PREFIX
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction
from genai_stack.components.tag_conditions import key_through_s3
from genai_stack.config import DriftMonitoring

NAMESPACE = "GenAiStack/Drift"
ALL_MODELS = "all"  # lambdas.drift_monitor.logic.ALL_MODELS: every Bedrock model together

READS_SOURCE_FILES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker and Bedrock name the captured-data and invocation-log files per hour and request; the "
        "drift monitor reads only under the prefixes of the endpoints and logs it analyses."
    ),
)
NAMESPACED_DRIFT_METRICS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "cloudwatch:PutMetricData has no resource type in the Service Authorization Reference; the "
        "statement is limited to the GenAiStack/Drift namespace with the cloudwatch:namespace condition key."
    ),
)


def invocation_log_hours_prefix(account: str, region: str) -> str:
    """Where Bedrock writes the invocation logs of this account and region in the data bucket, above the
    yyyy/mm/dd/hh/ folders (Bedrock user guide, model-invocation-logging.html: the bucket policy's
    `<prefix>/AWSLogs/<account>/BedrockModelInvocationLogs/*`; InvocationLogging sets the prefix)."""
    return f"{INVOCATION_LOG_PREFIX}AWSLogs/{account}/BedrockModelInvocationLogs/{region}/"


@dataclass(frozen=True)
class DriftSource:
    """One place the job reads. `name` is the Target dimension (the SageMaker endpoint name, or
    `bedrock`); `alarm_targets` are the Target values that get alarms (the endpoint, or `all`)."""

    name: str
    source: Literal["sagemaker", "bedrock"]
    bucket: s3.IBucket
    prefix: str
    baseline_bucket: s3.IBucket
    baseline_key: str
    alarm_targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.prefix.endswith("/") or self.baseline_key.startswith(self.prefix):
            raise ValueError(
                f"drift source {self.name}: prefix must end in '/' and the baseline must lie outside it"
            )


class DriftMonitor(Construct):
    """The function, its schedule, its least-privilege role, its alarms and a dashboard section."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        sources: Sequence[DriftSource],
        settings: DriftMonitoring,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
    ) -> None:
        super().__init__(scope, construct_id)
        if not sources:
            raise ValueError("DriftMonitor needs at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"drift sources named more than once: {names}")
        self.profile_name = profile_name
        self.settings = settings
        self.period = Duration.hours(settings.window_hours)
        self.function = PythonFunction(
            self,
            "Function",
            package="drift_monitor",
            description=f"genai-stack {profile_name}: drift metrics of captured requests and invocation logs",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=300,
            memory_size=512,
            environment={
                "DRIFT_TARGETS": json.dumps(
                    [
                        {
                            "name": s.name,
                            "source": s.source,
                            "bucket": s.bucket.bucket_name,
                            "prefix": s.prefix,
                            "baseline_bucket": s.baseline_bucket.bucket_name,
                            "baseline_key": s.baseline_key,
                        }
                        for s in sources
                    ]
                ),
                "DRIFT_PROFILE": profile_name,
                "DRIFT_NAMESPACE": NAMESPACE,
                "DRIFT_WINDOW_HOURS": str(settings.window_hours),
                "DRIFT_MIN_RECORDS": str(settings.min_records),
            },
        )
        self.role = self.function.role
        self._grant(sources, encryption_key)
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"genai-stack {profile_name}: drift metrics of the last {settings.window_hours} h",
            schedule=events.Schedule.expression(settings.schedule),
            targets=[events_targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
        self.alarms: list[cw.Alarm] = []
        self._alarms(sources, hub)

    # ---------------------------------------------------------------------------------------- access

    def _grant(self, sources: Sequence[DriftSource], key: kms.IKey) -> None:
        acks = [NAMESPACED_DRIFT_METRICS]
        statements = []
        for index, source in enumerate(sources):
            statements += [
                iam.PolicyStatement(
                    sid=f"ListSource{index}",
                    actions=["s3:ListBucket"],
                    resources=[source.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{source.prefix}*"]}},
                ),
                iam.PolicyStatement(
                    sid=f"ReadSource{index}",
                    actions=["s3:GetObject"],
                    resources=[source.bucket.arn_for_objects(f"{source.prefix}*")],
                ),
                # The function asks whether the baseline exists with ListObjectsV2 (prefix = its key):
                # without s3:ListBucket, GetObject on a missing key is 403, not 404 (S3 API, GetObject).
                iam.PolicyStatement(
                    sid=f"FindBaseline{index}",
                    actions=["s3:ListBucket"],
                    resources=[source.baseline_bucket.bucket_arn],
                    conditions={"StringEquals": {"s3:prefix": [source.baseline_key]}},
                ),
                iam.PolicyStatement(
                    sid=f"ReadAndWriteBaseline{index}",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[source.baseline_bucket.arn_for_objects(source.baseline_key)],
                ),
            ]
            compliance.acknowledge(
                self.role, READS_SOURCE_FILES.on_resolved(source.bucket.arn_for_objects(f"{source.prefix}*"))
            )
        statements += [
            # SSE-KMS objects: reading the sources, writing the baseline.
            key_through_s3(self, key.key_arn, sid="UseThePlatformKeyThroughS3"),
            iam.PolicyStatement(
                sid="PutDriftMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # no resource type (Service Authorization Reference, CloudWatch)
                conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        compliance.acknowledge(self.role, *acks)

    # ------------------------------------------------------------------------------------- metrics

    def metric(self, name: str, source: str, target: str, statistic: str = "Maximum") -> cw.Metric:
        """A drift metric as the function publishes it (logic.metric_data)."""
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"Profile": self.profile_name, "Source": source, "Target": target},
            statistic=statistic,
            period=self.period,
        )

    def runs_completed(self) -> cw.Metric:
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name="RunsCompleted",
            dimensions_map={"Profile": self.profile_name},
            statistic="Sum",
            period=self.period,
        )

    def _alarms(self, sources: Sequence[DriftSource], hub: MonitoringHub) -> None:
        settings = self.settings
        # Period x evaluation periods stays within one day.
        windows = max(1, min(2, 24 // settings.window_hours))
        widgets: list[cw.IWidget] = []
        for source in sources:
            for target in source.alarm_targets:
                label = f"{source.source} {target}"
                for kind, name, threshold, what in (
                    ("PromptDrift", "PromptDistance", settings.distance_threshold, "prompt embedding"),
                    ("AnswerDrift", "AnswerDistance", settings.distance_threshold, "answer embedding"),
                    ("Refusals", "RefusalRate", settings.refusal_rate_percent, "refusal rate (%)"),
                ):
                    alarm = cw.Alarm(
                        self,
                        f"{kind}-{source.name}-{target}".replace(":", "-"),
                        alarm_description=(
                            f"Drift of {label}: {what} above {threshold:g} in {windows} consecutive "
                            f"{settings.window_hours} h windows"
                        ),
                        metric=self.metric(name, source.source, target),
                        threshold=threshold,
                        evaluation_periods=windows,
                        datapoints_to_alarm=windows,
                        # A window without traffic publishes no drift figures: not drift. That the
                        # monitor itself stopped is the "stopped" alarm's job (breaching, below).
                        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        # Too few records publish nothing: quiet hours and endpoints at zero are not drift.
                        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                    )
                    hub.add_alarm(alarm)
                    self.alarms.append(alarm)
                widgets += [
                    cw.GraphWidget(
                        title=f"{label}: distance from baseline",
                        left=[
                            self.metric("PromptDistance", source.source, target),
                            self.metric("AnswerDistance", source.source, target),
                        ],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title=f"{label}: refusals, guardrail, language (%)",
                        left=[
                            self.metric("RefusalRate", source.source, target),
                            self.metric("GuardrailInterventionRate", source.source, target),
                            self.metric("NonAsciiShare", source.source, target),
                            self.metric("CjkShare", source.source, target),
                        ],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title=f"{label}: lengths (characters)",
                        left=[
                            self.metric(n, source.source, target)
                            for n in (
                                "PromptLengthP50",
                                "PromptLengthP90",
                                "AnswerLengthP50",
                                "AnswerLengthP90",
                            )
                        ],
                        right=[self.metric("Requests", source.source, target, "Sum")],
                        width=8,
                    ),
                ]
        heartbeat_windows = max(1, min(3, 24 // settings.window_hours))
        stopped = cw.Alarm(
            self,
            "JobStopped",
            alarm_description=(
                f"Drift monitor of {self.profile_name}: no completed run in {heartbeat_windows} windows "
                "(function failing, rule disabled or role broken)"
            ),
            metric=self.runs_completed(),
            threshold=1,
            evaluation_periods=heartbeat_windows,
            datapoints_to_alarm=heartbeat_windows,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            # Missing is the failure this alarm exists for.
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        hub.add_alarm(stopped)
        self.alarms.append(stopped)
        hub.add_section(f"Drift ({', '.join(s.source for s in sources)})", widgets)
