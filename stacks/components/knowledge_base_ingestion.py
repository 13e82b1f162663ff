"""KnowledgeBaseIngestion: start ingestion on a schedule and when documents change, alarm on failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction
from genai_stack.components.tag_conditions import through
from genai_stack.components.vector_store import AuroraStorage, VectorStorage

NAMESPACE = "GenAiStack/KnowledgeBases"  # lambdas/kb_ingestion/handler.py publishes here
CHECK_EVERY = Duration.minutes(15)


@dataclass(frozen=True)
class IngestionTarget:
    name: str
    knowledge_base_id: str
    knowledge_base_arn: str
    data_source_id: str
    prefix: str
    schedule: str  # an EventBridge schedule expression, validated by the profile
    # Where the vectors live: an Aurora store is woken from auto-pause before each job (kb_ingestion).
    storage: VectorStorage | None = None


class KnowledgeBaseIngestion(Construct):
    """One function (lambdas/kb_ingestion) driven by three kinds of EventBridge rule:
    a schedule per knowledge base, S3 object created/deleted under the knowledge-base prefixes of the
    data bucket (the bucket sends its events to EventBridge), and a status check every 15 minutes that
    publishes `IngestionJobFailed` per knowledge base, which an alarm watches. Bedrock publishes no
    event or metric for ingestion jobs of vector knowledge bases, hence the check.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        knowledge_bases: Sequence[IngestionTarget],
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        config = [
            {
                "name": k.name,
                "knowledge_base_id": k.knowledge_base_id,
                "data_source_id": k.data_source_id,
                "prefix": k.prefix,
                **(
                    {
                        "database": {
                            "cluster_arn": k.storage.cluster_arn,
                            "secret_arn": k.storage.secret_arn,
                            "database": k.storage.database,
                        }
                    }
                    if isinstance(k.storage, AuroraStorage)
                    else {}
                ),
            }
            for k in knowledge_bases
        ]
        aurora = [k.storage for k in knowledge_bases if isinstance(k.storage, AuroraStorage)]
        self.handler = PythonFunction(
            self,
            "Handler",
            package="kb_ingestion",
            description="Start Bedrock knowledge base ingestion jobs and report failed ones",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={"KNOWLEDGE_BASES": stack.to_json_string(config)},
            # Waking a paused Aurora store can take tens of seconds before the job starts.
            **({"timeout_seconds": 120} if aurora else {}),
        )
        if aurora:
            # `SELECT 1` through the Data API on the store's cluster with the store's login: the caller
            # needs rds-data:ExecuteStatement on the cluster and secretsmanager:GetSecretValue on the
            # secret, which the Data API reads with the caller's permissions (Aurora user guide,
            # "Authorizing access to the Amazon RDS Data API":
            # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.access.html), and so
            # kms:Decrypt on the secret's key through Secrets Manager.
            for statement in (
                iam.PolicyStatement(
                    sid="WakeTheVectorStores",
                    actions=["rds-data:ExecuteStatement"],
                    resources=sorted({a.cluster_arn for a in aurora}),
                ),
                iam.PolicyStatement(
                    sid="ReadTheVectorStoreLogins",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=sorted({a.secret_arn for a in aurora}),
                ),
                iam.PolicyStatement(
                    sid="DecryptTheVectorStoreLogins",
                    actions=["kms:Decrypt"],
                    resources=[encryption_key.key_arn],
                    conditions=through(self, "secretsmanager"),
                ),
            ):
                self.handler.function.add_to_role_policy(statement)
        self.handler.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="IngestTheKnowledgeBases",
                actions=["bedrock:StartIngestionJob", "bedrock:ListIngestionJobs"],
                resources=[k.knowledge_base_arn for k in knowledge_bases],
            )
        )
        target = targets.LambdaFunction(
            self.handler.function, retry_attempts=2, max_event_age=Duration.hours(1)
        )
        for kb in knowledge_bases:
            events.Rule(
                self,
                f"Schedule-{kb.name}",
                description=f"Ingest knowledge base {kb.name} on its schedule",
                schedule=events.Schedule.expression(kb.schedule),
                targets=[
                    targets.LambdaFunction(
                        self.handler.function,
                        event=events.RuleTargetInput.from_object(
                            {"action": "ingest", "knowledge_base": kb.name}
                        ),
                        retry_attempts=2,
                    )
                ],
            )
        events.Rule(
            self,
            "DocumentChanges",
            description="Ingest a knowledge base when a document under its prefix is created or deleted",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created", "Object Deleted"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {"key": [{"prefix": k.prefix} for k in knowledge_bases]},
                },
            ),
            targets=[target],
        )
        events.Rule(
            self,
            "StatusCheck",
            description="Publish IngestionJobFailed per knowledge base",
            schedule=events.Schedule.rate(CHECK_EVERY),
            targets=[
                targets.LambdaFunction(
                    self.handler.function,
                    event=events.RuleTargetInput.from_object({"action": "check"}),
                    retry_attempts=2,
                )
            ],
        )
        widgets: list[cw.IWidget] = []
        for index, kb in enumerate(knowledge_bases):
            # As the check publishes it: single_metric with KnowledgeBase, plus Powertools' service.
            failed = cw.Metric(
                namespace=NAMESPACE,
                metric_name="IngestionJobFailed",
                dimensions_map=self.handler.emf_dimensions(KnowledgeBase=kb.name),
                statistic="Maximum",
                period=CHECK_EVERY,
            )
            alarm = cw.Alarm(
                self,
                f"IngestionFailed{index}",
                alarm_description=(
                    f"Knowledge base {kb.name}: the latest ingestion job failed, or the status check has "
                    "published nothing for 30 minutes (see the ingestion function's log)"
                ),
                # Two check intervals per period: the schedule's jitter may leave one interval empty.
                metric=failed.with_(period=Duration.minutes(CHECK_EVERY.to_minutes() * 2)),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # The check publishes 0 or 1 every 15 minutes for every knowledge base: no data means
                # the check stopped (failing, throttled, rule disabled), which hides failures: breaching.
                treat_missing_data=cw.TreatMissingData.BREACHING,
            )
            hub.add_alarm(alarm)
            widgets.append(
                cw.GraphWidget(
                    title=f"{kb.name}: latest ingestion failed (1) or not (0)", left=[failed], width=12
                )
            )
        hub.add_section("Knowledge base ingestion", widgets)
