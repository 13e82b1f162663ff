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

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_function import PythonFunction
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.components.tag_conditions import through, via_service

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
        # Copies expire once their lock has: a lifecycle rule cannot delete a locked version ("a locked
        # version of an object cannot be deleted by a S3 Lifecycle expiration policy": S3 user guide,
        # "Object Lock considerations").
        self.bucket = SecureBucket(
            self,
            "Bucket",
            encryption_key=encryption_key,
            access_logs_bucket=access_logs_bucket,
            access_logs_prefix=EVIDENCE_LOGS_PREFIX,
            noncurrent_version_days=1,
            expiration_days=retention_days + 1,
            object_lock=retention,
        ).bucket
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
        # What keeps a copy from being lost:
        # - EventBridge retries delivering an event to the function for up to a day ("Event retry
        #   policy and using dead-letter queues", EventBridge user guide);
        # - once Lambda has it, a failed run is retried by Lambda's asynchronous invocation, "two more
        #   times, with a one-minute wait between the first two attempts, and two minutes between the
        #   second and third" (Lambda developer guide, "How Lambda handles errors and retries with
        #   asynchronous invocation"), for up to 6 hours here; then the event goes to the `lost` queue
        #   (on-failure destination, platform key, 14 days) for a redrive, and `copy_lost` alarms.
        # L1 rule and permission: the L2 target names its permission after the function's full
        # construct path, which differs when the stacks sit in a Stage, and this stack's logical IDs
        # must not.
        self.lost = sqs.Queue(
            self,
            "Lost",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        compliance.acknowledge(self.lost, compliance.EVIDENCE_LOST_QUEUE)
        # L1, with the role's rights written here: the L2 destination grants kms:ReEncrypt* and
        # kms:GenerateDataKey* where sending to a queue under a customer managed key needs
        # kms:GenerateDataKey and kms:Decrypt ("Key management", Amazon SQS developer guide).
        lambda_.CfnEventInvokeConfig(
            self,
            "AsyncRetries",
            function_name=function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=6 * 3600,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=self.lost.queue_arn)
            ),
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ParkLostEvents", actions=["sqs:SendMessage"], resources=[self.lost.queue_arn]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="EncryptLostEvents",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[encryption_key.key_arn],
                conditions=through(self, "sqs"),
            )
        )
        for index, source in enumerate(sources):
            keys: list[object] = [{"prefix": p} for p in source.prefixes if p]
            if source.excluded:
                # One anything-but per source: several in one list would be ORed (every key matches),
                # and with prefixes beside it the pattern would drop them.
                if source.prefixes != ("",) or len(source.excluded) != 1:
                    raise ValueError("an excluded prefix goes with prefixes ('',) and is the only one")
                keys = [{"anything-but": {"prefix": source.excluded[0]}}]
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
                "A log object could not be copied into the write-once evidence bucket (the evidence copy "
                "function's log names it); Lambda retries it twice, then parks the event in the lost queue"
            ),
            metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No invocation, no data: nothing failed.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.copy_lost = cw.Alarm(
            self,
            "CopyLost",
            alarm_description=(
                "Events of log objects that were never copied into the evidence bucket wait in the lost "
                "queue: fix the cause (the copy function's log), then redrive them to the function"
            ),
            metric=self.lost.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # SQS stops publishing a queue's metrics after six hours without activity ("Available
            # CloudWatch metrics for Amazon SQS"), though a parked event is still there: ignore keeps
            # the alarm's state until data says otherwise (a redrive or a purge), as for the deployer's
            # dead-letter queue.
            treat_missing_data=cw.TreatMissingData.IGNORE,
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
        "StringEquals": {"kms:ViaService": via_service(stack, "s3")},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, bucket.arn_for_objects("*")]},
    }
