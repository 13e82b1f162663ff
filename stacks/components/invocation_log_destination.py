"""The S3 side of Bedrock model invocation logging: what the destination bucket and its key allow."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

INVOCATION_LOG_PREFIX = "bedrock-invocation-logs/"


def allow_bedrock_invocation_logs(bucket: s3.IBucket, key: kms.IKey, *, prefix: str) -> None:
    """Bedrock may write invocation logs of this account and region under `prefix`.

    The bucket statement is the one the Bedrock user guide gives ("Model invocation logging":
    s3:PutObject on <prefix>AWSLogs/<account>/BedrockModelInvocationLogs/* for bedrock.amazonaws.com,
    with aws:SourceAccount and aws:SourceArn). Because the bucket is SSE-KMS, the writer must also be
    able to generate a data key with the bucket's key (Amazon S3 user guide, "Using server-side
    encryption with AWS KMS keys"); that grant carries the same source conditions.
    """
    stack = Stack.of(bucket)
    source = {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:*"},
    }
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AmazonBedrockLogsWrite",
            principals=[iam.ServicePrincipal("bedrock.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[
                bucket.arn_for_objects(f"{prefix}AWSLogs/{stack.account}/BedrockModelInvocationLogs/*")
            ],
            conditions=source,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AmazonBedrockLogsEncrypt",
            principals=[iam.ServicePrincipal("bedrock.amazonaws.com")],
            actions=["kms:GenerateDataKey"],
            resources=["*"],  # in a key policy "*" means this key
            conditions=source,
        )
    )
