"""TrainingJobRole: the SageMaker execution role of one training pipeline's jobs, beside the buckets.

What a job reads and writes (the pipeline uses the same helpers, so the two cannot drift apart):
- the `train` channel: `settings.data_prefix` in the data bucket;
- the training code: `settings.source_key` in the artifacts bucket;
- model artifacts: `training/<name>/output/` in the artifacts bucket;
- spot checkpoints: `training/<name>/checkpoints/` in the artifacts bucket.

With network isolation (the default) the training container has no network at all: SageMaker
itself downloads the channels (data and code) and uploads the model with this role, so the
permissions are the same either way.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import image_repository_arn, training_instances
from genai_stack.compliance import Acknowledgement, nag_resource
from genai_stack.config import TrainingPipeline

# SageMaker writes training logs to this group and training metrics to this namespace (SageMaker
# developer guide, "Monitor and Analyze Training Jobs Using Amazon CloudWatch Metrics").
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"

TRAINING_DATA = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A training job reads every object of its channels (the pipeline's data prefix of the data "
        "bucket; an image evaluation job also its held-out and weights prefixes); the file names are the "
        "data set's and not known in advance."
    ),
)
TRAINING_OUTPUT = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker writes the model of each job under training/<pipeline>/output/<job name>/ (an image "
        "evaluation job reads the candidate's from there) and reads and writes spot checkpoints under "
        "training/<pipeline>/checkpoints/<job name>/; job names are made per execution."
    ),
)
TRAINING_LOG_STREAMS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker names a training job's log streams (<job name>/algo-<n>-<time>) in the account's "
        "/aws/sagemaker/TrainingJobs log group at run time; the statement is limited to that group."
    ),
)
TRAINING_ACCOUNT_WIDE = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource type (Service "
        "Authorization Reference); image pulls are limited to the one Deep Learning Container repository "
        "and metrics to the /aws/sagemaker/TrainingJobs namespace (cloudwatch:namespace condition)."
    ),
)


def training_prefix(settings: TrainingPipeline) -> str:
    """The pipeline's prefix in the artifacts bucket."""
    return f"training/{settings.name}/"


def output_prefix(settings: TrainingPipeline) -> str:
    """Where SageMaker writes the model artifacts (<prefix><job name>/output/model.tar.gz)."""
    return f"{training_prefix(settings)}output/"


def checkpoint_prefix(settings: TrainingPipeline) -> str:
    """Where spot training checkpoints go (one sub-prefix per job)."""
    return f"{training_prefix(settings)}checkpoints/"


def uses_volume_key(settings: TrainingPipeline, instance_type: str | None = None) -> bool:
    """Whether the job's storage volume takes the KMS key: SageMaker refuses VolumeKmsKeyId for
    instance types with local NVMe storage, which a hardware module encrypts (SageMaker API reference,
    ResourceConfig.VolumeKmsKeyId: "You can't request a VolumeKmsKeyId when using an instance type
    with local storage"). `instance_type`: another job of the pipeline (the image evaluation)."""
    return not training_instances()[instance_type or settings.instance_type].local_nvme


def any_volume_key(settings: TrainingPipeline) -> bool:
    """Whether any job of the pipeline (training, image evaluation) gives its volume the key."""
    evaluation = settings.image_evaluation
    return uses_volume_key(settings) or (
        evaluation is not None and uses_volume_key(settings, evaluation.instance_type)
    )


class TrainingJobRole(Construct):
    """The role SageMaker assumes for the training jobs of one pipeline (trusted by
    sagemaker.amazonaws.com), following the SageMaker developer guide "CreateTrainingJob API:
    Execution Role Permissions" scoped to exact resources:

    - s3:ListBucket on the data bucket limited to the data prefix, s3:GetObject under it;
    - s3:ListBucket / s3:GetObject on the code object; s3:PutObject under the output prefix;
      s3:ListBucket / GetObject / PutObject under the checkpoint prefix (spot resumption);
    - KMS on the platform key: Decrypt (SSE-KMS input), GenerateDataKey and Encrypt (SSE-KMS output,
      OutputDataConfig.KmsKeyId), and CreateGrant for AWS resources only when the storage volume
      takes the key (ResourceConfig.VolumeKmsKeyId, not on local-NVMe instance types);
    - image pull from the exact Deep Learning Container repository (ecr:GetAuthorizationToken has
      no resource type);
    - logs in /aws/sagemaker/TrainingJobs, metrics in the /aws/sagemaker/TrainingJobs namespace.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TrainingPipeline,
        data_bucket: s3.Bucket,
        artifacts_bucket: s3.Bucket,
        encryption_key: kms.IKey,
        region: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.settings = settings
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"genai-stack training pipeline {settings.name}: SageMaker training jobs",
        )
        checkpoints = checkpoint_prefix(settings)
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRAINING_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        statements = [
            iam.PolicyStatement(
                sid="ListTheTrainingData",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{settings.data_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheTrainingData",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(f"{settings.data_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListTheCodeAndCheckpoints",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [settings.source_key, f"{checkpoints}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheCode",
                actions=["s3:GetObject"],
                resources=[artifacts_bucket.arn_for_objects(settings.source_key)],
            ),
            iam.PolicyStatement(
                sid="WriteTheModel",
                actions=["s3:PutObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{output_prefix(settings)}*")],
            ),
            iam.PolicyStatement(
                sid="KeepCheckpoints",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{checkpoints}*")],
            ),
            iam.PolicyStatement(
                sid="UseThePlatformKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
                resources=[encryption_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="PullTheTrainingImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[image_repository_arn(settings.image, region)],
            ),
            iam.PolicyStatement(sid="LogInToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="WriteTrainingLogs",
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[log_group],
            ),
            iam.PolicyStatement(
                sid="WriteTrainingLogStreams",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{log_group}:log-stream:*"],
            ),
            iam.PolicyStatement(
                sid="PublishTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_METRICS_NAMESPACE}},
            ),
        ]
        if any_volume_key(settings):
            statements.append(
                iam.PolicyStatement(
                    sid="EncryptTheTrainingVolume",
                    actions=["kms:CreateGrant"],
                    resources=[encryption_key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        evaluation = settings.image_evaluation
        if evaluation is not None:
            # The image evaluation job: the candidate's model.tar.gz under the output prefix, the
            # held-out set and the offline weights in the data bucket.
            held_out = [evaluation.holdout_prefix, evaluation.weights_prefix]
            statements += [
                iam.PolicyStatement(
                    sid="ListTheHeldOutSet",
                    actions=["s3:ListBucket"],
                    resources=[data_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in held_out]}},
                ),
                iam.PolicyStatement(
                    sid="ReadTheHeldOutSet",
                    actions=["s3:GetObject"],
                    resources=[data_bucket.arn_for_objects(f"{p}*") for p in held_out],
                ),
                iam.PolicyStatement(
                    sid="ListTheCandidates",
                    actions=["s3:ListBucket"],
                    resources=[artifacts_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{output_prefix(settings)}*"]}},
                ),
                iam.PolicyStatement(
                    sid="ReadTheCandidates",
                    actions=["s3:GetObject"],
                    resources=[artifacts_bucket.arn_for_objects(f"{output_prefix(settings)}*")],
                ),
            ]
        for statement in statements:
            self.role.add_to_policy(statement)
        compliance.acknowledge(
            self.role,
            *(
                TRAINING_DATA.on_resolved(data_bucket.arn_for_objects(f"{p}*"))
                for p in (
                    settings.data_prefix,
                    *(
                        (evaluation.holdout_prefix, evaluation.weights_prefix)
                        if evaluation is not None
                        else ()
                    ),
                )
            ),
            TRAINING_OUTPUT.on_resolved(artifacts_bucket.arn_for_objects(f"{output_prefix(settings)}*")),
            TRAINING_OUTPUT.on_resolved(artifacts_bucket.arn_for_objects(f"{checkpoints}*")),
            TRAINING_LOG_STREAMS.on(nag_resource(self, f"{log_group}:log-stream:*")),
            TRAINING_ACCOUNT_WIDE,
        )
