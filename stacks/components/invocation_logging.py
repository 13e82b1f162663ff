"""InvocationLogging: Bedrock model invocation logging to CloudWatch Logs and S3, through a custom
resource (CloudFormation has no resource type for this per-account, per-region setting)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.invocation_log_destination import INVOCATION_LOG_PREFIX
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.python_function import encrypted_log_group, log_stream_arn

# The log stream Bedrock writes to (Bedrock user guide, "Monitor model invocation using CloudWatch
# Logs and Amazon S3"); the delivery role may write only there.
LOG_STREAM = "aws/bedrock/modelinvocations"


class InvocationLogging(Construct):
    """A KMS-encrypted log group, the role Bedrock assumes to write to it, and the custom resource
    that calls PutModelInvocationLoggingConfiguration (logs also go to `bucket` under INVOCATION_LOG_PREFIX;
    the foundation stack grants Bedrock the bucket and key permissions for that prefix).

    On delete the configuration is removed only if it is still the one this resource set; with
    `take_over` false, a configuration someone else set makes the deployment fail instead of
    silently replacing it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        text: bool,
        image: bool,
        embedding: bool,
        take_over: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        self.delivery_role = iam.Role(
            self,
            "DeliveryRole",
            description="Bedrock writes model invocation logs to the profile's log group",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:*"
                    },
                },
            ),
        )
        self.delivery_role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteInvocationLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # The one stream Bedrock writes (model-invocation-logging.html, "Set up a CloudWatch Logs
                # destination"), as an ARN built from the group's name: `log_group_arn` ends in `:*`.
                resources=[log_stream_arn(self.log_group, LOG_STREAM)],
            )
        )

        configuration = PythonCustomResource(
            self,
            "Configuration",
            package="invocation_logging",
            description="Custom resource: Bedrock model invocation logging configuration",
            resource_type="Custom::BedrockInvocationLogging",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            properties={
                "LogGroupName": self.log_group.log_group_name,
                "CloudWatchRoleArn": self.delivery_role.role_arn,
                "BucketName": bucket.bucket_name,
                "KeyPrefix": INVOCATION_LOG_PREFIX,
                "TextDataDeliveryEnabled": str(text).lower(),
                "ImageDataDeliveryEnabled": str(image).lower(),
                "EmbeddingDataDeliveryEnabled": str(embedding).lower(),
                "VideoDataDeliveryEnabled": "false",
                "TakeOver": str(take_over).lower(),
            },
        )
        handler = configuration.handler.function
        handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="ManageInvocationLogging",
                actions=[
                    "bedrock:GetModelInvocationLoggingConfiguration",
                    "bedrock:PutModelInvocationLoggingConfiguration",
                    "bedrock:DeleteModelInvocationLoggingConfiguration",
                ],
                resources=["*"],  # these actions have no resource type (Service Authorization Reference)
            )
        )
        handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassTheDeliveryRole",
                actions=["iam:PassRole"],
                resources=[self.delivery_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
            )
        )
        # Is this Update a rollback's? Asked only when a foreign configuration is found, so that the
        # rollback Update succeeds instead of failing the same ownership check again
        # (lambdas/invocation_logging/logic.py, apply). On the stack's own ARN (AWS::StackId): DescribeStacks
        # with a StackName is authorized on the stack ARN arn:aws:cloudformation:*:*:stack/NAME/ID
        # (CloudFormation API reference, DescribeStacks, its resource-level policy example:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html).
        handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTheStackStatus",
                actions=["cloudformation:DescribeStacks"],
                resources=[stack.stack_id],
            )
        )
        compliance.acknowledge(handler.role, compliance.INVOCATION_LOGGING_NO_RESOURCE_TYPE)
        self.resource = configuration.resource
        # Bedrock checks the destinations when the configuration is put: the role's policy first (the
        # role itself is already a dependency through CloudWatchRoleArn).
        self.resource.node.add_dependency(self.delivery_role.node.find_child("DefaultPolicy"))
