"""ModelEndpointRole: the execution role of one SageMaker endpoint, and the role of its Model Monitor
schedule (inference stack, with the endpoint that uses them).

Two roles, not one: the serving container never needs the captured requests or the monitoring reports,
and the monitoring job never needs the weights or the serving image. Each role can reach exactly its
own prefixes, so a compromised container or job sees no more than its part.

Actions and resources follow the SageMaker developer guide ("How to use SageMaker AI execution roles":
CreateModel and CreateProcessingJob execution-role permissions, scoped to the exact S3 objects and ECR
repositories): ListBucket limited with s3:prefix, GetObject/PutObject on the prefixes, the three ECR
pull actions on the exact repository, ecr:GetAuthorizationToken (no resource type), the log group that
SageMaker writes, and cloudwatch:PutMetricData limited by the cloudwatch:namespace condition key. KMS:
Decrypt to read, GenerateDataKey and Encrypt to write SSE-KMS objects (the guide asks for kms:Encrypt
where a KMS key is given for output), and CreateGrant for AWS resources only where a volume is
encrypted with the key (the guide asks for kms:CreateGrant for a volume KMS key).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import image_repository_arn, inference_instances
from genai_stack.compliance import nag_resource
from genai_stack.components.endpoint_layout import (
    async_prefix,
    captures_data,
    check_names,
    data_capture_prefix,
    endpoint_log_group_names,
    model_monitor_image,
    monitoring_prefix,
    monitors_data_quality,
)
from genai_stack.config import InferenceEndpoint

# Namespaces SageMaker publishes endpoint instance metrics and Model Monitor metrics to (SageMaker
# developer guide: "SageMaker AI endpoint metrics", "CloudWatch Metrics for Bring Your Own Containers").
ENDPOINT_METRIC_NAMESPACES = ["/aws/sagemaker/Endpoints", "/aws/sagemaker/InferenceComponents"]
MONITOR_METRIC_NAMESPACES = ["/aws/sagemaker/Endpoint/data-metrics", "/aws/sagemaker/ProcessingJobs"]
PROCESSING_JOB_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"

ENDPOINT_MODEL_FILES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker downloads every file under the endpoint's model prefix models/<name>/ of the artifacts "
        "bucket (ModelDataSource S3Prefix); the file names depend on the model and are not known here."
    ),
)
ENDPOINT_WRITES_ITS_PREFIXES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker names the captured-data files (<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl) and the "
        "asynchronous results per request; the role writes only under this endpoint's own prefixes."
    ),
)
ENDPOINT_READS_ASYNC_INPUTS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Callers of an asynchronous endpoint upload each request under async/<endpoint>/input/ with a name "
        "of their choosing; SageMaker reads it from there with this role."
    ),
)
ENDPOINT_LOG_STREAMS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "SageMaker names the log streams of the endpoint's own log group per variant and instance "
        "(log-group:/aws/sagemaker/Endpoints/<endpoint>:*); no other log group is reachable."
    ),
)
UNSCOPED_TOKEN_AND_METRICS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource type in the Service "
        "Authorization Reference; the metrics statement is limited to SageMaker's own namespaces with the "
        "cloudwatch:namespace condition key, and image pulls are limited to the exact repository."
    ),
)
MONITOR_READS_AND_WRITES_ITS_PREFIXES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The Model Monitor job reads the hourly captured-data files SageMaker names under "
        "data-capture/<endpoint>/ and writes its reports (and reads a baseline) under monitoring/<endpoint>/."
    ),
)
MONITOR_PROCESSING_LOGS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Monitoring jobs are SageMaker processing jobs, which log to the account's shared "
        "/aws/sagemaker/ProcessingJobs log group in streams named after each generated job name."
    ),
)


TRAINED_MODELS = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "An endpoint serves the model.tar.gz of whichever training job produced the approved model "
        "package; the job names are made at run time, so the role reads the pipeline's output prefix."
    ),
)


class ModelEndpointRole(Construct):
    """`role`: the execution role of the endpoint `endpoint_name` (trusted by sagemaker.amazonaws.com):

    - read the weights: s3:ListBucket on the artifacts bucket where s3:prefix is under the model prefix,
      s3:GetObject under it;
    - write captured data under `data-capture/<endpoint>/` (if capture is on) and, for an asynchronous
      endpoint, read requests under `async/<endpoint>/input/` and write results under
      `async/<endpoint>/output/` and `.../failure/`;
    - the platform key: Decrypt, GenerateDataKey (and Encrypt where it writes); CreateGrant for AWS
      resources when the endpoint configuration encrypts the instance volume with it (no local NVMe);
    - pull the serving image: ecr:BatchGetImage, GetDownloadUrlForLayer, BatchCheckLayerAvailability on
      the exact Deep Learning Container repository, ecr:GetAuthorizationToken;
    - write to its log group(s) and put metrics in SageMaker's endpoint namespaces.

    `monitor_role` (only when data capture is on and a monitoring schedule is set): the Model Monitor
    job's role: read `data-capture/<endpoint>/`, read and write `monitoring/<endpoint>/`, the platform key
    (Decrypt, GenerateDataKey, Encrypt; CreateGrant for its encrypted volume), pull the analyzer image,
    write processing-job logs and Model Monitor metrics.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InferenceEndpoint,
        endpoint_name: str,
        artifacts_bucket: s3.Bucket,
        encryption_key: kms.IKey,
        region: str,
    ) -> None:
        super().__init__(scope, construct_id)
        check_names(settings, endpoint_name)
        self._stack = Stack.of(self)
        self._bucket = artifacts_bucket
        self._region = region
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"genai-stack SageMaker endpoint {endpoint_name}: serve {settings.model_prefix}",
        )
        acks = self._endpoint_statements(settings, endpoint_name, encryption_key)
        compliance.acknowledge(self.role, *acks)

        self.monitor_role: iam.Role | None = None
        if monitors_data_quality(settings):
            self.monitor_role = iam.Role(
                self,
                "MonitorRole",
                assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                description=f"genai-stack Model Monitor of SageMaker endpoint {endpoint_name}",
            )
            acks = self._monitor_statements(endpoint_name, encryption_key)
            compliance.acknowledge(self.monitor_role, *acks)

    def read_trained_models(self, pattern: str) -> None:
        """Let the execution role read the trained models of a pipeline that deploys to this endpoint:
        `pattern` under the artifacts bucket (the pipeline's output prefix and `*`)."""
        policy = iam.Policy(
            self.role,
            "TrainedModels",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadTrainedModels",
                    actions=["s3:GetObject"],
                    resources=[self._bucket.arn_for_objects(pattern)],
                )
            ],
        )
        compliance.acknowledge(policy, TRAINED_MODELS.on_resolved(self._bucket.arn_for_objects(pattern)))

    # ------------------------------------------------------------------------------------------

    def _objects(self, prefix: str) -> str:
        return self._bucket.arn_for_objects(f"{prefix}*")

    def _log_group_arns(self, name: str) -> tuple[str, str]:
        """The group itself and the group with its streams (`:*`), as the Logs actions evaluate them."""
        arns = tuple(
            self._stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=resource_name,
                region=self._region,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for resource_name in (name, f"{name}:*")
        )
        return arns[0], arns[1]

    def _list_statement(self, sid: str, prefixes: list[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=["s3:ListBucket"],
            resources=[self._bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )

    def _key_statement(self, key: kms.IKey, *, writes: bool, volume: bool) -> list[iam.PolicyStatement]:
        actions = ["kms:Decrypt"] + (["kms:GenerateDataKey", "kms:Encrypt"] if writes else [])
        statements = [iam.PolicyStatement(sid="UseThePlatformKey", actions=actions, resources=[key.key_arn])]
        if volume:
            statements.append(
                iam.PolicyStatement(
                    sid="EncryptTheVolumeWithThePlatformKey",
                    actions=["kms:CreateGrant"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        return statements

    def _pull_statements(self, repository_arn: str) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="PullTheImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[repository_arn],
            ),
            iam.PolicyStatement(
                sid="GetARegistryToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
        ]

    def _metrics_statement(self, namespaces: list[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="PutSageMakerMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespaces}},
        )

    # ------------------------------------------------------------------------------------------

    def _endpoint_statements(
        self, settings: InferenceEndpoint, endpoint_name: str, key: kms.IKey
    ) -> list[compliance.Acknowledgement | compliance.PendingAcknowledgement]:
        model = settings.model_prefix
        statements = [
            self._list_statement("ListTheModelPrefix", [model]),
            iam.PolicyStatement(
                sid="ReadTheModel", actions=["s3:GetObject"], resources=[self._objects(model)]
            ),
        ]
        acks = [ENDPOINT_MODEL_FILES.on_resolved(self._objects(model))]
        writes = []
        if captures_data(settings):
            writes.append(data_capture_prefix(endpoint_name))
        if settings.async_inference is not None:
            prefix = async_prefix(endpoint_name)
            statements.append(
                iam.PolicyStatement(
                    sid="ReadAsyncRequests",
                    actions=["s3:GetObject"],
                    resources=[self._objects(f"{prefix}input/")],
                )
            )
            acks.append(ENDPOINT_READS_ASYNC_INPUTS.on_resolved(self._objects(f"{prefix}input/")))
            writes += [f"{prefix}output/", f"{prefix}failure/"]
        if writes:
            statements.append(
                iam.PolicyStatement(
                    sid="WriteCapturesAndResults",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[self._objects(prefix) for prefix in writes],
                )
            )
            acks += [ENDPOINT_WRITES_ITS_PREFIXES.on_resolved(self._objects(prefix)) for prefix in writes]
        volume = not inference_instances()[settings.instance_type].local_nvme
        statements += self._key_statement(key, writes=bool(writes), volume=volume)
        statements += self._pull_statements(image_repository_arn(settings.container, self._region))
        log_resources = []
        for name in endpoint_log_group_names(settings, endpoint_name):
            group, streams = self._log_group_arns(name)
            log_resources += [group, streams]
            acks.append(ENDPOINT_LOG_STREAMS.on(nag_resource(self, streams)))
        statements += [
            iam.PolicyStatement(
                sid="WriteTheLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=log_resources,
            ),
            self._metrics_statement(
                ENDPOINT_METRIC_NAMESPACES
                if settings.inference_components
                else ENDPOINT_METRIC_NAMESPACES[:1]
            ),
        ]
        acks.append(UNSCOPED_TOKEN_AND_METRICS)
        for statement in statements:
            self.role.add_to_policy(statement)
        return acks

    def _monitor_statements(
        self, endpoint_name: str, key: kms.IKey
    ) -> list[compliance.Acknowledgement | compliance.PendingAcknowledgement]:
        captured, reports = data_capture_prefix(endpoint_name), monitoring_prefix(endpoint_name)
        group, streams = self._log_group_arns(PROCESSING_JOB_LOG_GROUP)
        statements = [
            self._list_statement("ListCapturesAndReports", [captured, reports]),
            iam.PolicyStatement(
                sid="ReadCapturesAndBaseline",
                actions=["s3:GetObject"],
                resources=[self._objects(captured), self._objects(reports)],
            ),
            iam.PolicyStatement(
                sid="WriteReports",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self._objects(reports)],
            ),
            *self._key_statement(key, writes=True, volume=True),
            *self._pull_statements(model_monitor_image(self._region).repository_arn),
            iam.PolicyStatement(
                sid="WriteProcessingJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=[group, streams],
            ),
            self._metrics_statement(MONITOR_METRIC_NAMESPACES),
        ]
        for statement in statements:
            self.monitor_role.add_to_policy(statement)
        return [
            MONITOR_READS_AND_WRITES_ITS_PREFIXES.on_resolved(self._objects(captured)),
            MONITOR_READS_AND_WRITES_ITS_PREFIXES.on_resolved(self._objects(reports)),
            MONITOR_PROCESSING_LOGS.on(nag_resource(self, streams)),
            UNSCOPED_TOKEN_AND_METRICS,
        ]
