"""FoundationStack: the stateful base of a profile. Everything here is retained on stack deletion."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.alarm_topic import AlarmTopic
from genai_stack.components.aurora_vector_store import AuroraVectorStore
from genai_stack.components.cache_table import (
    AssistantRecordsTable,
    CacheTable,
    GatewayFeedbackTable,
    GatewayKeyTable,
    GatewaySpendTable,
)
from genai_stack.components.evidence_vault import EVIDENCE_LOGS_PREFIX, EvidenceSource, EvidenceVault
from genai_stack.components.invocation_log_destination import (
    INVOCATION_LOG_PREFIX,
    allow_bedrock_invocation_logs,
)
from genai_stack.components.platform_key import PlatformKey
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.components.vector_store import (
    SEMANTIC_CACHE_NON_FILTERABLE_KEYS,
    IndexSpec,
    KendraStorage,
    S3VectorsStorage,
    VectorStorage,
    VectorStore,
)
from genai_stack.config import SEMANTIC_CACHE_INDEX, Foundation, KnowledgeBase
from genai_stack.config import AuroraVectorStore as AuroraVectorStoreSettings
from genai_stack.lambdas.gateway.images import IMAGE_PREFIX
from genai_stack.lambdas.gateway_authorizer.keys import KEY_TABLE_OUTPUT


class FoundationStack(Stack):
    """KMS key, data / artifacts / access-log buckets and the alarm topic of one profile.

    Termination protection is on and every resource is retained: deleting the stack must never
    delete data. The construct IDs below fix the logical IDs; tests pin them.
    """

    key: kms.IKey
    data_bucket: s3.IBucket
    artifacts_bucket: s3.IBucket
    log_bucket: s3.IBucket
    alarm_topic: sns.ITopic

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        settings: Foundation,
        alarm_emails: Sequence[str],
        knowledge_bases: Sequence[KnowledgeBase] = (),
        aurora: AuroraVectorStoreSettings | None = None,
        bedrock_invocation_logs: bool = False,
        gateway_cache: bool = False,
        gateway_keys: bool = False,
        gateway_spend: bool = False,
        gateway_feedback: bool = False,
        gateway_semantic_cache: int | None = None,
        gateway_image_days: int | None = None,
        host_volumes: bool = False,
        custom_models: bool = False,
        assistant_records: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)

        platform_key = PlatformKey(
            self, "PlatformKey", description=f"genai-stack {profile_name}: data, artifacts, alarms"
        )
        self.key = platform_key.key
        if custom_models:  # Bedrock encrypts the customized models with this key
            platform_key.allow_bedrock_custom_models()
        if host_volumes:  # the model hosts' launch templates encrypt root volumes with this key
            platform_key.allow_auto_scaling_volumes()

        log_bucket = SecureBucket(
            self,
            "AccessLogs",
            noncurrent_version_days=settings.noncurrent_version_days,
            expiration_days=settings.access_log_days,
            # Its new objects are copied into the write-once evidence bucket (EvidenceVault).
            event_bridge=settings.evidence_lock is not None,
        )
        compliance.skip_checkov(log_bucket.bucket.node.default_child, compliance.ACCESS_LOG_BUCKET_NOT_LOGGED)
        self.log_bucket = log_bucket.bucket

        data_bucket = SecureBucket(
            self,
            "Data",
            encryption_key=self.key,
            access_logs_bucket=self.log_bucket,
            access_logs_prefix="data/",
            noncurrent_version_days=settings.noncurrent_version_days,
            event_bridge=True,
        ).bucket
        self.data_bucket = data_bucket
        if gateway_image_days is not None:
            # The gateway's generated images (url responses, lambdas/gateway/images.py) are served
            # by pre-signed URLs valid an hour at most: they expire after a few days, and their
            # noncurrent versions a day later (the bucket is versioned).
            data_bucket.add_lifecycle_rule(
                id="expire-gateway-images",
                prefix=IMAGE_PREFIX,
                expiration=Duration.days(gateway_image_days),
                noncurrent_version_expiration=Duration.days(1),
            )
        self.artifacts_bucket = SecureBucket(
            self,
            "Artifacts",
            encryption_key=self.key,
            access_logs_bucket=self.log_bucket,
            access_logs_prefix="artifacts/",
            noncurrent_version_days=settings.noncurrent_version_days,
        ).bucket
        # Where weights (models/<name>/) and vLLM's wheels (wheels/) go before the hosts or endpoints
        # start: deploy this stack first, upload, then the rest (docs/profiles/self-hosted.md).
        CfnOutput(
            self,
            "ArtifactsBucketName",
            value=self.artifacts_bucket.bucket_name,
            description="models/<name>/ for weights, wheels/ for vLLM (genai-stack wheelhouse)",
        )

        self.alarm_topic = AlarmTopic(self, "Alarms", encryption_key=self.key, emails=alarm_emails).topic

        # Knowledge-base vector stores are stateful: they live here, retained, with pinned logical IDs.
        # The service roles that read the documents and write the vectors live in the bedrock stack,
        # with the knowledge bases (docs/architecture.md "Where each role lives").
        self.knowledge_base_storage: dict[str, VectorStorage] = {}
        on_s3_vectors = [kb for kb in knowledge_bases if kb.vector_store == "s3_vectors"]
        for kb in knowledge_bases:  # an existing Kendra index: nothing to create, nothing to retain here
            if kb.on_kendra:
                self.knowledge_base_storage[kb.name] = KendraStorage(
                    index_arn=self.format_arn(
                        service="kendra", resource="index", resource_name=kb.kendra_index_id
                    )
                )
        on_aurora = [kb for kb in knowledge_bases if kb.vector_store == "aurora_pgvector"]
        # The gateway's semantic cache (`gateway_semantic_cache`: its vectors' dimensions) has an index
        # in the same bucket.
        indexes = [IndexSpec(kb.name, kb.dimensions) for kb in on_s3_vectors]
        if gateway_semantic_cache is not None:
            indexes.append(
                IndexSpec(SEMANTIC_CACHE_INDEX, gateway_semantic_cache, SEMANTIC_CACHE_NON_FILTERABLE_KEYS)
            )
        self.semantic_cache_index_arn: str | None = None
        if indexes:
            store = VectorStore(self, "VectorStore", encryption_key=self.key, indexes=indexes)
            for kb in on_s3_vectors:
                self.knowledge_base_storage[kb.name] = S3VectorsStorage(index_arn=store.index_arn(kb.name))
            if gateway_semantic_cache is not None:
                self.semantic_cache_index_arn = store.index_arn(SEMANTIC_CACHE_INDEX)
        if on_aurora:
            if aurora is None:
                raise ValueError("aurora_pgvector knowledge bases need the aurora settings")
            aurora_store = AuroraVectorStore(
                self,
                "AuroraVectorStore",
                encryption_key=self.key,
                tables=[IndexSpec(kb.table_name, kb.dimensions) for kb in on_aurora],
                min_capacity=aurora.min_capacity,
                max_capacity=aurora.max_capacity,
                auto_pause=Duration.minutes(aurora.auto_pause_minutes),
                log_retention_days=settings.log_retention_days,
                admin_username=aurora.admin_username,
                rotation_days=aurora.rotation.every_days,
                login_rotation=aurora.rotation.bedrock_login,
            )
            for kb in on_aurora:
                self.knowledge_base_storage[kb.name] = aurora_store.storage[kb.table_name]

        self.cache_table = (
            CacheTable(self, "GatewayCache", encryption_key=self.key).table if gateway_cache else None
        )
        self.key_table = (
            GatewayKeyTable(self, "GatewayKeys", encryption_key=self.key).table if gateway_keys else None
        )
        self.feedback_table = (
            GatewayFeedbackTable(self, "GatewayFeedback", encryption_key=self.key).table
            if gateway_feedback
            else None
        )
        self.spend_table = (
            GatewaySpendTable(self, "GatewaySpend", encryption_key=self.key).table if gateway_spend else None
        )
        self.assistant_records = (
            AssistantRecordsTable(self, "AssistantRecords", encryption_key=self.key).table
            if assistant_records
            else None
        )
        if self.key_table is not None:
            CfnOutput(
                self,
                KEY_TABLE_OUTPUT,
                value=self.key_table.table_name,
                description="the gateway's key table (genai-stack keys)",
            )

        if bedrock_invocation_logs:
            allow_bedrock_invocation_logs(self.data_bucket, self.key, prefix=INVOCATION_LOG_PREFIX)
        self.evidence: EvidenceVault | None = None
        if settings.evidence_lock is not None:
            sources = [
                EvidenceSource(
                    bucket=self.log_bucket,
                    prefixes=("",),
                    excluded=(EVIDENCE_LOGS_PREFIX,),
                    destination="access-logs/",
                )
            ]
            if bedrock_invocation_logs:
                sources.append(
                    EvidenceSource(
                        bucket=self.data_bucket,
                        prefixes=(INVOCATION_LOG_PREFIX,),
                        destination="",  # keeps bedrock-invocation-logs/AWSLogs/... as Bedrock wrote it
                        key=self.key,
                    )
                )
            self.evidence = EvidenceVault(
                self,
                "Evidence",
                mode=settings.evidence_lock.mode,
                retention_days=settings.evidence_lock.retention_days,
                encryption_key=self.key,
                access_logs_bucket=self.log_bucket,
                sources=sources,
                log_retention_days=settings.log_retention_days,
            )
