"""BedrockCustomizationRole: the service role Amazon Bedrock assumes to run the model customization
jobs of one customization. It lives beside the data it reads and the bucket it writes (the foundation
stack), so that its S3 resources are local ARNs."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.compliance import Acknowledgement
from genai_stack.config import BedrockCustomization

JOB_OUTPUT = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A customization job writes its metrics and results under its own prefix of the artifacts bucket "
        "(customization/<name>/output/), in objects Bedrock names per job; nothing outside that prefix."
    ),
)


def training_key(settings: BedrockCustomization) -> str:
    """The training data: one JSON Lines file in the data bucket."""
    return f"{settings.data_prefix}train.jsonl"


def validation_key(settings: BedrockCustomization) -> str | None:
    """The validation data, when the customization uses any."""
    return f"{settings.data_prefix}validation.jsonl" if settings.validation_data else None


def output_prefix(name: str) -> str:
    """Where the jobs of customization `name` write their output, in the artifacts bucket."""
    return f"customization/{name}/output/"


class BedrockCustomizationRole(Construct):
    """Follows the Bedrock user guide ("Create a service role for model customization"): trusted by
    bedrock.amazonaws.com for model customization jobs of this account and region only (aws:SourceAccount,
    aws:SourceArn); reads exactly `<data_prefix>train.jsonl` (and `validation.jsonl`) of the data bucket,
    lists only that prefix; reads and writes under `customization/<name>/output/` of the artifacts bucket,
    lists only that prefix; encrypts and decrypts with the platform key (both buckets use it).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BedrockCustomization,
        data_bucket: s3.Bucket,
        artifacts_bucket: s3.Bucket,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        output = output_prefix(settings.name)
        inputs = [key for key in (training_key(settings), validation_key(settings)) if key]
        self.role = iam.Role(
            self,
            "Role",
            description=f"Bedrock customization {settings.name}: {settings.kind} of {settings.base_model}",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {
                        "aws:SourceArn": stack.format_arn(
                            service="bedrock", resource="model-customization-job", resource_name="*"
                        )
                    },
                },
            ),
        )
        statements = [
            iam.PolicyStatement(
                sid="ListTheDataPrefix",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{settings.data_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheTrainingData",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(key) for key in inputs],
            ),
            iam.PolicyStatement(
                sid="ListTheOutputPrefix",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{output}*"]}},
            ),
            iam.PolicyStatement(
                sid="WriteTheJobOutput",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{output}*")],
            ),
            iam.PolicyStatement(
                sid="UseThePlatformKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        compliance.acknowledge(
            self.role, JOB_OUTPUT.on_resolved(artifacts_bucket.arn_for_objects(f"{output}*"))
        )
