"""ModelHostRole: the instance role of one model host fleet, beside the weights it reads."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance


class ModelHostRole(Construct):
    """Session Manager (the AWS managed policy it requires) and read access to exactly the model's
    prefix of the artifacts bucket; Neuron hosts (`compiled_prefix`) also write their compiled
    model under it (model_host.sh.tmpl); GPU hosts (`wheelhouse_prefix`) also read vLLM's wheels.
    The hosting stack adds the host's own logs and metrics."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        host_name: str,
        artifacts_bucket: s3.Bucket,
        prefix: str,
        encryption_key: kms.IKey,
        compiled_prefix: str | None = None,
        wheelhouse_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"genai-stack model host {host_name}: weights under {prefix}",
        )
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
        )
        readable = [prefix] if wheelhouse_prefix is None else [prefix, wheelhouse_prefix]
        for statement in (
            iam.PolicyStatement(
                sid="ListTheModelPrefix",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in readable]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheModel",
                actions=["s3:GetObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{p}*") for p in readable],
            ),
            iam.PolicyStatement(
                sid="DecryptTheModel", actions=["kms:Decrypt"], resources=[encryption_key.key_arn]
            ),
        ):
            self.role.add_to_policy(statement)
        if compiled_prefix is not None:
            if not compiled_prefix.startswith(prefix):
                raise ValueError(f"model host {host_name}: {compiled_prefix} is not under {prefix}")
            # aws s3 sync / cp upload with PutObject (multipart parts too); SSE-KMS writes need
            # kms:GenerateDataKey on the bucket's key ("Using server-side encryption with AWS KMS
            # keys": https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="WriteTheCompiledModel",
                    actions=["s3:PutObject"],
                    resources=[artifacts_bucket.arn_for_objects(f"{compiled_prefix}*")],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="EncryptTheCompiledModel",
                    actions=["kms:GenerateDataKey"],
                    resources=[encryption_key.key_arn],
                )
            )
        compliance.acknowledge(
            self.role,
            compliance.SESSION_MANAGER_MANAGED_POLICY,
            compliance.MODEL_WEIGHTS.on_resolved(artifacts_bucket.arn_for_objects(f"{prefix}*")),
        )
        if wheelhouse_prefix is not None:
            compliance.acknowledge(
                self.role,
                compliance.WHEELHOUSE.on_resolved(artifacts_bucket.arn_for_objects(f"{wheelhouse_prefix}*")),
            )
        if compiled_prefix is not None:
            compliance.acknowledge(
                self.role,
                compliance.COMPILED_MODEL.on_resolved(
                    artifacts_bucket.arn_for_objects(f"{compiled_prefix}*")
                ),
            )
