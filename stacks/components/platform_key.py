"""PlatformKey: the customer-managed KMS key of one profile, usable by the AWS services that need it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from genai_stack.components.alarm_topic import ALARM_PUBLISHERS, ServicePublisher

# The default service-linked role of EC2 Auto Scaling (its path and name are fixed by AWS: EC2 Auto
# Scaling user guide, "Service-linked roles for Amazon EC2 Auto Scaling",
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html).
AUTO_SCALING_SERVICE_LINKED_ROLE = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


class PlatformKey(Construct):
    """A symmetric KMS key with yearly rotation, retained on delete.

    The key policy lets the account administer it (CDK default) and lets the services that publish to
    an encrypted SNS topic use it (kms:GenerateDataKey* and kms:Decrypt, as the Amazon SNS developer
    guide, "Encryption at rest", requires), limited to this account where the service sends
    aws:SourceAccount; CloudWatch Logs may use it for log groups
    of this account and region (kms:EncryptionContext:aws:logs:arn), as the CloudWatch Logs user guide
    ("Encrypt log data in CloudWatch Logs using AWS KMS") prescribes.

    IAM principals of the account use the key through their identity policies (e.g. the model-access
    policy's kms:Decrypt for callers of the guardrail encrypted with it): CDK's default statement
    gives the account `kms:*`, which is what "enables IAM policies" for a key (AWS KMS developer
    guide, "Default key policy": https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        topic_publishers: Sequence[ServicePublisher] = ALARM_PUBLISHERS,
        allow_cloudwatch_logs: bool = True,
        pending_window_days: int = 30,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            pending_window=Duration.days(pending_window_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Grants only for AWS resources: services integrated with KMS (EBS through EC2 Auto Scaling,
        # RDS, DynamoDB, SageMaker) create the grants they need with kms:GrantIsForAWSResource true; a
        # grant made directly by a principal of the account would hand the key's use to whoever it
        # names, outside this policy. "kms:GrantIsForAWSResource ... Allows or denies permission for the
        # CreateGrant, ListGrants, or RevokeGrant operations only when an AWS service integrated with
        # AWS KMS calls the operation on the user's behalf" (AWS KMS developer guide, "AWS KMS condition
        # keys": https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html).
        # BoolIfExists: a direct call is denied whether it carries the key as false or not at all. An AWS
        # service principal acting under its own identity (a service that, holding a primary grant,
        # creates further grants itself: Bedrock user guide, import-model-monitor-encryption-keys.html)
        # is not denied: aws:PrincipalIsAWSService is true for it (IAM user guide, "AWS global condition
        # context keys"), and both keys must be false or absent for the Deny to apply.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyGrantsNotForAwsResources",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "BoolIfExists": {
                        "kms:GrantIsForAWSResource": "false",
                        "aws:PrincipalIsAWSService": "false",
                    }
                },
            )
        )
        for publisher in topic_publishers:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=publisher.sid,
                    principals=[iam.ServicePrincipal(publisher.service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions=publisher.key_conditions(stack),
                )
            )
        if allow_cloudwatch_logs:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudWatchLogs",
                    principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                    actions=[
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions={
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                                service="logs",
                                resource="log-group",
                                resource_name="*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                        }
                    },
                )
            )

    def allow_bedrock_custom_models(self) -> None:
        """Bedrock encrypts customized models with this key and decrypts them to serve them
        (provisioned throughput, on-demand deployment): the key policy statement of the Amazon Nova
        user guide's custom-model encryption page, limited by the custom-model encryption context."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowBedrockCustomModels",
                principals=[iam.ServicePrincipal("bedrock.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:bedrock:custom-model"}
                },
            )
        )

    def allow_auto_scaling_volumes(self) -> None:
        """EC2 Auto Scaling launches the model hosts with root volumes encrypted by this key, as its
        service-linked role AWSServiceRoleForAutoScaling, whose AWS-defined permissions cover AWS
        managed keys only: the key policy must name the role (EC2 Auto Scaling user guide, "Required
        AWS KMS key policy for use with encrypted volumes", example 1:
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html).
        Without these two statements every launch fails with Client.InternalError ("Client error on
        launch"; AWS re:Post, https://repost.aws/knowledge-center/kms-launch-ec2-instance).

        The role must exist when this policy is written: KMS refuses a key policy naming a principal
        that does not exist. Auto Scaling creates it with the account's first group; in a new account,
        `aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com` once
        (docs/profiles/self-hosted.md, "Before the first deploy")."""
        stack = Stack.of(self)
        service_linked_role = iam.ArnPrincipal(
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name=AUTO_SCALING_SERVICE_LINKED_ROLE,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAutoScalingServiceLinkedRoleUse",
                principals=[service_linked_role],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAutoScalingServiceLinkedRoleGrants",
                principals=[service_linked_role],
                actions=["kms:CreateGrant"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
