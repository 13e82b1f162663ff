"""S3 object access as AWS evaluates it, shared by row families.

- GetObject / PutObject on arn:${Partition}:s3:::${BucketName}/${ObjectName}; ListObjectsV2 is
  authorized as s3:ListBucket on arn:${Partition}:s3:::${BucketName} with s3:prefix in the context
  (Service Authorization Reference, Amazon S3:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
- The bucket policy applies too (its Denies: aws:SecureTransport false, s3:TlsVersion < 1.2).
- SSE-KMS: reading needs kms:Decrypt and writing kms:GenerateDataKey on the bucket's key; with an
  S3 Bucket Key the encryption context is the bucket ARN ("Using server-side encryption with AWS KMS
  keys" and "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys":
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html).
"""

from __future__ import annotations

from tests.access.deployment import Deployment
from tests.access.rows import Call

TLS = {"s3:TlsVersion": "1.2"}


def _bucket_key(deployment: Deployment, bucket: str) -> tuple[str | None, bool]:
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::S3::Bucket" or deployment.resolver.ref(stack, logical_id) != bucket:
                continue
            rules = (resource["Properties"].get("BucketEncryption") or {}).get(
                "ServerSideEncryptionConfiguration", []
            )
            for rule in rules:
                default = rule.get("ServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and "KMSMasterKeyID" in default:
                    return deployment.resolver.resolve(stack, default["KMSMasterKeyID"]), bool(
                        rule.get("BucketKeyEnabled")
                    )
            return None, False
    raise KeyError(f"no bucket {bucket} in {deployment.profile}")


def _kms(deployment: Deployment, bucket: str, key_name: str, action: str, why: str, api: str) -> list[Call]:
    key, bucket_key = _bucket_key(deployment, bucket)
    if not key:
        return []
    arn = f"arn:{deployment.partition}:s3:::{bucket}" + ("" if bucket_key else f"/{key_name}")
    context = {
        "kms:ViaService": f"s3.{deployment.region}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": arn,
    }
    return [
        Call(
            action,
            key,
            f"{why}: the bucket is SSE-KMS encrypted (UsingKMSEncryption)",
            context=context,
            api=api,
        )
    ]


def get_object(
    deployment: Deployment, bucket: str, key_name: str, why: str, api: str = "s3.GetObject"
) -> list[Call]:
    arn = f"arn:{deployment.partition}:s3:::{bucket}/{key_name}"
    return [
        Call("s3:GetObject", arn, why, context=TLS, api=api),
        *_kms(deployment, bucket, key_name, "kms:Decrypt", why, api),
    ]


def put_object(
    deployment: Deployment, bucket: str, key_name: str, why: str, api: str = "s3.PutObject"
) -> list[Call]:
    arn = f"arn:{deployment.partition}:s3:::{bucket}/{key_name}"
    return [
        Call("s3:PutObject", arn, why, context=TLS, api=api),
        *_kms(deployment, bucket, key_name, "kms:GenerateDataKey", why, api),
    ]


def denied_object(deployment: Deployment, action: str, bucket: str, key_name: str, why: str) -> Call:
    """An object call over TLS that the role must not be allowed (another prefix, a read-only one)."""
    return Call(
        action, f"arn:{deployment.partition}:s3:::{bucket}/{key_name}", why, context=TLS, expect="deny"
    )


def list_objects(
    deployment: Deployment, bucket: str, prefix: str, why: str, api: str = "s3.ListObjectsV2"
) -> list[Call]:
    return [
        Call(
            "s3:ListBucket",
            f"arn:{deployment.partition}:s3:::{bucket}",
            why,
            context={**TLS, "s3:prefix": prefix},
            api=api,
        )
    ]
