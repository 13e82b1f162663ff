"""SecureBucket: an S3 bucket with the house defaults (private, TLS-only, versioned, encrypted, logged)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SecureBucket(Construct):
    """A private, versioned, TLS-only bucket, retained on stack deletion.

    - `encryption_key` given: SSE-KMS with that key and an S3 Bucket Key (fewer KMS requests);
      omitted: SSE-S3. A bucket that receives S3 server access logs must use SSE-S3, because the
      logging service cannot write to an SSE-KMS bucket (Amazon S3 user guide, "Enabling Amazon S3
      server access logging": the target bucket's default encryption can only be SSE-S3).
    - `access_logs_bucket` given: server access logs go there under `access_logs_prefix`.
    - Noncurrent versions expire after `noncurrent_version_days`; incomplete multipart uploads are
      aborted after 7 days; `expiration_days` (optional) expires current objects too (log buckets).
    - `event_bridge`: the bucket sends its object events to EventBridge (rules pick what they need).
    - `object_lock`: S3 Object Lock with this default retention on every new object version (set when
      the bucket is created: S3 user guide, "Configuring S3 Object Lock"); such a bucket cannot receive
      server access logs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        noncurrent_version_days: int,
        encryption_key: kms.IKey | None = None,
        access_logs_bucket: s3.IBucket | None = None,
        access_logs_prefix: str | None = None,
        expiration_days: int | None = None,
        event_bridge: bool = False,
        object_lock: s3.ObjectLockRetention | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if access_logs_prefix and access_logs_bucket is None:
            raise ValueError("access_logs_prefix needs access_logs_bucket")
        rules = [
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ]
        if expiration_days is not None:
            rules.append(s3.LifecycleRule(id="expire-objects", expiration=Duration.days(expiration_days)))
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_lock_enabled=object_lock is not None or None,
            object_lock_default_retention=object_lock,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=access_logs_prefix,
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if event_bridge:
            # Set on the bucket itself: the L2 `event_bridge_enabled` adds a notifications Lambda.
            self.bucket.node.default_child.notification_configuration = (
                s3.CfnBucket.NotificationConfigurationProperty(
                    event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                        event_bridge_enabled=True
                    )
                )
            )
