"""EvidenceVault: write-once copies of the audit evidence in a bucket with S3 Object Lock.

The logs themselves stay where their writers put them (S3 server access logs and load-balancer logs in
the access-log bucket, Bedrock invocation logs in the data bucket): server access logs cannot be
delivered to a locked bucket, and S3 Replication would not lock the replicas (lambdas/evidence_copy/
logic.py quotes the S3 user guide on both). So every new log object raises an EventBridge "Object
Created" event, and lambdas/evidence_copy puts a copy of it into the evidence bucket, whose default
retention (GOVERNANCE or COMPLIANCE, `retention_days`) locks the copy as it is written.

The evidence bucket's own server access logs go to the access-log bucket under `evidence/` and are not
copied back: each copy would log a write that would be copied again, without end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_function import PythonFunction

EVIDENCE_LOGS_PREFIX = "evidence/"  # the evidence bucket's own access logs, in the access-log bucket


@dataclass(frozen=True)
class EvidenceSource:
    """New objects of `bucket` under one of `prefixes` (all keys: `("",)`), except under `excluded`,
    are evidence; their copies go under `destination` + key."""

    bucket: s3.IBucket
    prefixes: tuple[str, ...]
    destination: str
    excluded: tuple[str, ...] = ()
    # The key that encrypts its objects, when SSE-KMS (the copy reads them).
    key: kms.IKey | None = None


class EvidenceVault(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        mode: Literal["GOVERNANCE", "COMPLIANCE"],
        retention_days: int,
        encryption_key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        sources: Sequence[EvidenceSource],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= retention_days <= 36500:
            raise ValueError(f"retention_days must be 1 to 36500, not {retention_days}")
        if not sources:
            raise ValueError("an evidence vault needs at least one source")
        retention = (
            s3.ObjectLockRetention.compliance(Duration.days(retention_days))
            if mode == "COMPLIANCE"
            else s3.ObjectLockRetention.governance(Duration.days(retention_days))
        )
        # The house defaults of SecureBucket, plus Object Lock (which needs versioning, and is set when
        # the bucket is created: S3 user guide, "Configuring S3 Object Lock"). Copies expire once their
        # lock has: a lifecycle rule cannot delete a locked version ("a locked version of an object
        # cannot be deleted by a S3 Lifecycle expiration policy": "Object Lock considerations").
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=retention,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=EVIDENCE_LOGS_PREFIX,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-after-retention",
                    expiration=Duration.days(retention_days + 1),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.copier = PythonFunction(
            self,
            "Copy",
            package="evidence_copy",
            description="Copies each new access-log and invocation-log object into the write-once bucket",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=120,
            memory_size=1024,  # a log object is held in memory once (logic.py MAX_BYTES)
            environment={
                "EVIDENCE_BUCKET": self.bucket.bucket_name,
                "SOURCES": Stack.of(self).to_json_string(_sources_json(sources)),
            },
        )
        function = self.copier.function
        stack = Stack.of(self)
        wildcards: list[str] = []
        for index, source in enumerate(sources):
            read = [source.bucket.arn_for_objects(f"{p}*") for p in source.prefixes]
            wildcards += read
            function.add_to_role_policy(
                iam.PolicyStatement(
                    sid=f"ReadEvidence{index}",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=read,
                )
            )
            if source.key is not None:
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        sid=f"DecryptEvidence{index}",
                        actions=["kms:Decrypt"],
                        resources=[source.key.key_arn],
                        conditions=_through_s3(stack, source.bucket),
                    )
                )
        write = [self.bucket.arn_for_objects(f"{s.destination}{p}*") for s in sources for p in s.prefixes]
        wildcards += write
        function.add_to_role_policy(
            iam.PolicyStatement(sid="WriteCopies", actions=["s3:PutObject"], resources=write)
        )
        compliance.acknowledge(
            self.copier.role,
            *(compliance.EVIDENCE_OBJECTS.on(compliance.nag_resource(self, w)) for w in wildcards),
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="EncryptCopies",
                actions=["kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
                conditions=_through_s3(stack, self.bucket),
            )
        )
        # EventBridge retries a failed invocation with backoff for up to a day (the most it allows:
        # "Event retry policy and using dead-letter queues", EventBridge user guide); a failure still
        # counts in the function's Errors metric, which `copy_failed` watches. L1 rule and permission:
        # the L2 target names its permission after the function's full construct path, which differs
        # when the stacks sit in a Stage, and this stack's logical IDs must not.
        for index, source in enumerate(sources):
            keys: list[object] = [{"prefix": p} for p in source.prefixes if p]
            if source.excluded:
                keys = [{"anything-but": {"prefix": p}} for p in source.excluded]
            detail: dict[str, object] = {"bucket": {"name": [source.bucket.bucket_name]}}
            if keys:
                detail["object"] = {"key": keys}
            rule = events.CfnRule(
                self,
                f"NewEvidence{index}",
                description=f"Copy new {source.destination.rstrip('/') or 'invocation-log'} objects "
                "into the evidence bucket",
                event_pattern={"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail},
                targets=[
                    events.CfnRule.TargetProperty(
                        id="Copy",
                        arn=function.function_arn,
                        retry_policy=events.CfnRule.RetryPolicyProperty(
                            maximum_retry_attempts=185, maximum_event_age_in_seconds=24 * 3600
                        ),
                    )
                ],
            )
            lambda_.CfnPermission(
                self,
                f"NewEvidence{index}Invokes",
                action="lambda:InvokeFunction",
                function_name=function.function_arn,
                principal="events.amazonaws.com",
                source_arn=rule.attr_arn,
            )
        self.copy_failed = cw.Alarm(
            self,
            "CopyFailed",
            alarm_description=(
                "A log object could not be copied into the write-once evidence bucket (see the evidence "
                "copy function's log); EventBridge retries each for a day"
            ),
            metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No invocation, no data: nothing failed.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )


def _sources_json(sources: Sequence[EvidenceSource]) -> Mapping[str, object]:
    return {
        s.bucket.bucket_name: {
            "prefixes": list(s.prefixes),
            "excluded": list(s.excluded),
            "destination": s.destination,
        }
        for s in sources
    }


def _through_s3(stack: Stack, bucket: s3.IBucket) -> dict[str, dict[str, str]]:
    """A KMS request S3 makes for objects of `bucket` (SSE-KMS: its encryption context is the bucket's
    ARN when an S3 Bucket Key is on; S3 user guide, "Using server-side encryption with AWS KMS keys",
    encryption context)."""
    return {
        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, bucket.arn_for_objects("*")]},
    }
