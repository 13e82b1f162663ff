"""ImageBatch: supplier photos turned into lifestyle images, one Step Functions execution per manifest.

Start a batch with the name of a JSON Lines manifest, relative to the input prefix (the line format
is in lambdas/image_batch/logic.py):

    aws s3 cp catalogue-2026-12.jsonl s3://<DataBucket>/batches/input/catalogue-2026-12.jsonl
    aws stepfunctions start-execution --state-machine-arn <ImageBatchStateMachineArn> \\
        --name catalogue-2026-12 --input '{"manifest": "catalogue-2026-12.jsonl"}'

The state machine is one Distributed Map (Step Functions developer guide, "Using Map state in
Distributed mode": https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html):
- its ItemReader reads the manifest from the data bucket (InputType JSONL), so a batch may hold more
  items than the 256 KiB of an execution's input;
- each item is a Standard child workflow (exactly once) that calls the worker function
  (image-to-image, the guardrail on the image, the image written to
  `<output prefix>images/<execution name>/<sku>.png`), retried on ModelBusy (Bedrock throttling) with
  backoff; BadItem and ImageRefused fail the item at once;
- MaxConcurrency keeps the items at once within the model's quota, and ToleratedFailurePercentage
  lets a batch succeed with a few refused or wrong lines;
- ResultWriter writes the results to `<output prefix>results/<map run id>/`: manifest.json and
  SUCCEEDED_n.json / FAILED_n.json, each item's input, output (the image's key, seed, cost) or error.

IAM, as the distributed-map page lists (Step Functions developer guide, "IAM policies for using
Distributed Map states": https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html):
states:StartExecution on the state machine itself and DescribeExecution / StopExecution on its
executions (the child workflows), s3:GetObject on the manifests, and for the results s3:PutObject,
s3:GetObject, s3:ListMultipartUploadParts and s3:AbortMultipartUpload on the results prefix with the
bucket key's kms:Decrypt and kms:GenerateDataKey. The state machine's ARN is written from its name,
so the role's policy does not depend on the state machine (no circular reference).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from genai_stack import compliance
from genai_stack.compliance import STATE_MACHINE_DELIVERY_AND_TRACING, Acknowledgement, nag_resource
from genai_stack.components.model_access import GuardrailRef, foundation_model_arn
from genai_stack.components.model_evaluation import LAMBDA_TRANSIENT
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.tag_conditions import key_through_s3
from genai_stack.profile.imagery import ImageBatch as ImageBatchSettings

NAMESPACE = "GenAiStack/ImageBatch"  # lambdas/image_batch/handler.py NAMESPACE
RESULTS = "results/"  # under the output prefix: the map's ResultWriter (the images go under images/)
# The worker holds a photo of up to 18 MB, its base64 text and the request body at once.
WORKER_MEMORY_MB = 1024

BATCH_OBJECTS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A batch reads the photos and manifests its users put under the input prefix and writes one image "
        "per product, and the map's result files, under the output prefix; their names are the batch's."
    ),
)
BATCH_EXECUTIONS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A Distributed Map starts, describes and stops its child workflow executions, which Step Functions "
        "names per map run (execution:<state machine>/<map run>:<child>), and redrives map runs; the "
        "statements name this state machine's executions only."
    ),
)


class ImageBatch(Construct):
    """The batch state machine and its worker; `state_machine`, `worker`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ImageBatchSettings,
        name: str,
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        guardrail: GuardrailRef,
        guardrail_profile_arns: Sequence[str] = (),
        price_per_image: float,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.settings = settings
        self.name = name
        config = {
            "model_id": settings.model,
            "strength": settings.strength,
            "negative_prompt": settings.negative_prompt,
            "categories": dict(settings.categories),
            "input_prefix": settings.input_prefix,
            "output_prefix": settings.output_prefix,
            "bucket": data_bucket.bucket_name,
            "key_id": encryption_key.key_arn,
            "price_per_image": price_per_image,
            "guardrail": [guardrail.arn, guardrail.version],
        }
        self.worker = PythonFunction(
            self,
            "Worker",
            package="image_batch",
            description=f"genai-stack image batch {name}: one photo to one image",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={"BATCH": stack.to_json_string(config)},
            timeout_seconds=settings.item_timeout_seconds,
            memory_size=WORKER_MEMORY_MB,
        )
        photos = data_bucket.arn_for_objects(f"{settings.input_prefix}*")
        images = data_bucket.arn_for_objects(f"{settings.output_prefix}*")
        for statement in (
            # ListBucket on the input prefix: a missing photo is then a 404 (a bad manifest line),
            # not a 403 (Amazon S3 API reference, HeadObject: "If you have the s3:ListBucket
            # permission on the bucket, Amazon S3 returns an HTTP status code 404 Not Found error").
            iam.PolicyStatement(
                sid="ListThePhotos",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{settings.input_prefix}*"]}},
            ),
            iam.PolicyStatement(sid="ReadThePhotos", actions=["s3:GetObject"], resources=[photos]),
            iam.PolicyStatement(sid="WriteTheImages", actions=["s3:PutObject"], resources=[images]),
            key_through_s3(self, encryption_key.key_arn, sid="UseTheBucketKey"),
            iam.PolicyStatement(
                sid="GenerateTheImages",
                actions=["bedrock:InvokeModel"],
                resources=[foundation_model_arn(stack.region, settings.model)],
            ),
            # A STANDARD-tier guardrail runs through its guardrail profile, which ApplyGuardrail names
            # too (Bedrock user guide, guardrail-profiles-permissions), as the model-access policy.
            iam.PolicyStatement(
                sid="CheckTheImages",
                actions=["bedrock:ApplyGuardrail"],
                resources=[guardrail.arn, *guardrail_profile_arns],
            ),
            *(
                [
                    iam.PolicyStatement(
                        sid="DecryptTheGuardrail", actions=["kms:Decrypt"], resources=[guardrail.key_arn]
                    )
                ]
                if guardrail.key_arn
                else []
            ),
        ):
            self.worker.role.add_to_policy(statement)
        compliance.acknowledge(
            self.worker.role,
            BATCH_OBJECTS.on_resolved(photos),
            BATCH_OBJECTS.on_resolved(images),
        )

        results_prefix = f"{settings.output_prefix}{RESULTS}"
        photos_map = sfn.CustomState(
            self,
            "Photos",
            state_json=self._map_state(stack, data_bucket.bucket_name, results_prefix),
        )

        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        machine_name = f"{name}-batch"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=machine_name,
            comment=f"genai-stack image batch {name}: photos of a manifest to lifestyle images",
            definition_body=sfn.DefinitionBody.from_chainable(photos_map),
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
            timeout=Duration.hours(24),
        )
        role = self.state_machine.role

        def states_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="states",
                resource=resource,
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        machine_arn = states_arn("stateMachine", machine_name)
        executions = states_arn("execution", f"{machine_name}:*")  # its own executions
        map_runs = states_arn("execution", f"{machine_name}/*")  # its map runs' child workflows
        results = data_bucket.arn_for_objects(f"{results_prefix}*")
        manifests = photos
        for statement in (
            iam.PolicyStatement(
                sid="StartTheChildWorkflows", actions=["states:StartExecution"], resources=[machine_arn]
            ),
            iam.PolicyStatement(
                sid="FollowTheChildWorkflows",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions, map_runs],
            ),
            iam.PolicyStatement(
                sid="RedriveTheMapRuns", actions=["states:RedriveExecution"], resources=[map_runs]
            ),
            iam.PolicyStatement(
                sid="CallTheWorker",
                actions=["lambda:InvokeFunction"],
                resources=[self.worker.function.function_arn],
            ),
            iam.PolicyStatement(sid="ReadTheManifests", actions=["s3:GetObject"], resources=[manifests]),
            iam.PolicyStatement(
                sid="WriteTheResults",
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[results],
            ),
            key_through_s3(self, encryption_key.key_arn, sid="UseTheBucketKeyForResults"),
        ):
            role.add_to_principal_policy(statement)
        compliance.acknowledge(
            role,
            STATE_MACHINE_DELIVERY_AND_TRACING,
            BATCH_OBJECTS.on_resolved(manifests),
            BATCH_OBJECTS.on_resolved(results),
            BATCH_EXECUTIONS.on(nag_resource(self, executions)),
            BATCH_EXECUTIONS.on(nag_resource(self, map_runs)),
        )

    def _map_state(self, stack: Stack, bucket: str, results_prefix: str) -> dict:
        """The Distributed Map as Amazon States Language: aws-cdk-lib's DistributedMap grants its
        ItemReader and ResultWriter s3:GetObject / s3:PutObject on every object of the bucket; written
        out, the role's statements name the prefixes only (Step Functions developer guide, "ItemReader
        (Map)" and "ResultWriter (Map)")."""
        settings = self.settings
        partition = stack.partition
        lambda_retry = {
            "ErrorEquals": LAMBDA_TRANSIENT,
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
        busy_retry = {
            "ErrorEquals": ["ModelBusy"],
            "IntervalSeconds": 10,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
        return {
            "Type": "Map",
            "Comment": "One child workflow per manifest line",
            "ItemReader": {
                "Resource": f"arn:{partition}:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSONL"},
                # The manifest's name is relative to the input prefix: a batch reads nothing else.
                "Parameters": {
                    "Bucket": bucket,
                    "Key.$": f"States.Format('{settings.input_prefix}{{}}', $.manifest)",
                },
            },
            "ItemSelector": {"item.$": "$$.Map.Item.Value", "run.$": "$$.Execution.Name"},
            "ItemProcessor": {
                # Standard children: exactly once (an Express child may run twice, a paid image
                # twice) and not cut off at Express's five minutes, which the throttling retries and
                # the item timeout can exceed ("Choosing workflow type in Step Functions":
                # https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html).
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "MakeTheImage",
                "States": {
                    "MakeTheImage": {
                        "Type": "Task",
                        "Comment": "Image-to-image, the guardrail on the image, the image to S3",
                        "Resource": f"arn:{partition}:states:::lambda:invoke",
                        "Parameters": {"FunctionName": self.worker.function.function_arn, "Payload.$": "$"},
                        "OutputPath": "$.Payload",
                        "Retry": [lambda_retry, busy_retry],
                        "End": True,
                    }
                },
            },
            "MaxConcurrency": settings.max_concurrency,
            "ToleratedFailurePercentage": settings.tolerated_failure_percent,
            "Label": "Photos",
            "ResultWriter": {
                "Resource": f"arn:{partition}:states:::s3:putObject",
                "Parameters": {"Bucket": bucket, "Prefix": results_prefix},
            },
        }

    def metric(self, name: str, statistic: str = "Sum") -> cw.Metric:
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map=self.worker.emf_dimensions(),
            statistic=statistic,
            period=Duration.hours(1),
        )

    def monitor(self, hub: MonitoringHub) -> None:
        """An alarm on failed batches; a dashboard section with the images, the refusals and the cost
        per image (SUM(EstimatedCost) / SUM(ImagesGenerated))."""
        hub.add_alarm(
            cw.Alarm(
                self,
                "BatchesFailed",
                alarm_description=(
                    f"Image batch {self.name}: a batch failed (more failed items than it tolerates, an "
                    "unreadable manifest, or a timeout); see its map run's FAILED results"
                ),
                metric=self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # Step Functions publishes ExecutionsFailed only for periods with such an execution.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        generated = self.metric("ImagesGenerated")
        cost_per_image = cw.MathExpression(
            expression="IF(images > 0, cost / images, 0)",
            using_metrics={"cost": self.metric("EstimatedCost"), "images": generated},
            label="USD per image",
            period=Duration.hours(1),
        )
        hub.add_section(
            f"Image batch {self.name}",
            [
                cw.GraphWidget(
                    title="Images per hour",
                    left=[
                        generated.with_(label="Generated"),
                        self.metric("ImagesRefused").with_(label="Refused (filter or guardrail)"),
                        self.metric("BadItems").with_(label="Bad manifest lines"),
                    ],
                    width=12,
                ),
                cw.GraphWidget(
                    title="Cost",
                    left=[self.metric("EstimatedCost").with_(label="USD per hour")],
                    right=[cost_per_image],
                    width=12,
                ),
            ],
        )
