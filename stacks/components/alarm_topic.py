"""AlarmTopic: the encrypted SNS topic that alarms, budgets, cost-anomaly alerts, EventBridge rules and
Auto Scaling notifications publish to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


@dataclass(frozen=True)
class ServicePublisher:
    """An AWS service that publishes to the topic, and the confused-deputy conditions its statements carry.

    The topic policy's statement requires what the service documents that it sends: aws:SourceAccount
    (`source_account`) and/or aws:SourceArn (`source_arn`, with {partition}, {region} and {account}).
    The key policy's statement requires aws:SourceAccount where `key_source_account`: the SNS developer
    guide asks for the source keys on the key policy of an encrypted topic, except for EventBridge,
    whose requests to KMS do not carry them ("Adding the aws:SourceAccount, aws:SourceArn, and
    aws:SourceOrgID to a AWS KMS policy is not supported for EventBridge-to-encrypted topics": "Key
    management", https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
    """

    service: str
    source_account: bool
    source_arn: str | None
    key_source_account: bool

    @property
    def sid(self) -> str:
        return "Allow" + "".join(part.capitalize() for part in self.service.split(".")[0].split("-"))

    def topic_conditions(self, stack: Stack) -> dict[str, dict[str, str]]:
        conditions: dict[str, dict[str, str]] = {}
        if self.source_account:
            conditions["StringEquals"] = {"aws:SourceAccount": stack.account}
        if self.source_arn is not None:
            arn = self.source_arn.format(
                partition=stack.partition, region=stack.region, account=stack.account
            )
            conditions["ArnLike"] = {"aws:SourceArn": arn}
        return conditions

    def key_conditions(self, stack: Stack) -> dict[str, dict[str, str]] | None:
        return {"StringEquals": {"aws:SourceAccount": stack.account}} if self.key_source_account else None


ALARM_PUBLISHERS: tuple[ServicePublisher, ...] = (
    # CloudWatch alarm actions: aws:SourceArn is the alarm's ARN (AWS re:Post, "Why didn't I receive an
    # SNS notification for my CloudWatch alarm trigger?", its topic policy example with ArnLike on
    # arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME:
    # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger); the ARN holds the
    # account, so aws:SourceAccount adds nothing on the topic.
    ServicePublisher(
        "cloudwatch.amazonaws.com",
        source_account=False,
        source_arn="arn:{partition}:cloudwatch:{region}:{account}:alarm:*",
        key_source_account=True,
    ),
    # AWS Budgets notifications. Cost Management user guide, "Creating an Amazon SNS topic for budget
    # notifications": aws:SourceAccount and aws:SourceArn arn:aws:budgets::ACCOUNT:* (no region):
    # https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html
    ServicePublisher(
        "budgets.amazonaws.com",
        source_account=True,
        source_arn="arn:{partition}:budgets::{account}:*",
        key_source_account=True,
    ),
    # Cost Anomaly Detection alerts. Cost Management user guide, "Creating an Amazon SNS topic for
    # anomaly notifications": the policy "only on behalf of a certain account" with aws:SourceAccount
    # (https://docs.aws.amazon.com/cost-management/latest/userguide/ad-SNS.html); no documented
    # aws:SourceArn format, so none is required. Not on the key policy: neither that page nor the SNS
    # guide's list of encrypted-topic sources says the service's KMS requests carry the key, and a
    # condition they do not meet would drop every alert without an error.
    ServicePublisher(
        "costalerts.amazonaws.com", source_account=True, source_arn=None, key_source_account=False
    ),
    # EventBridge rules with the topic as target (the SageMaker endpoint state-change rule,
    # EndpointFailureNotice): "For EventBridge event bus rule targets, the value of aws:SourceArn must
    # be the rule ARN" (EventBridge user guide, "Cross-service confused deputy prevention":
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
    # The key policy statement carries no source key: EventBridge's KMS requests do not (class docstring).
    ServicePublisher(
        "events.amazonaws.com",
        source_account=True,
        source_arn="arn:{partition}:events:{region}:{account}:rule/*",
        key_source_account=False,
    ),
)
# EC2 Auto Scaling notifications (ModelHostFleet) are published by the service-linked role
# AWSServiceRoleForAutoScaling, not a service principal: its AWS-defined policy allows sns:Publish and
# the key policy statement PlatformKey.allow_auto_scaling_volumes gives it kms:GenerateDataKey* and
# kms:Decrypt on the key, which is what an encrypted topic needs from a publisher (SNS developer guide,
# "Enable compatibility between event sources from AWS services and encrypted topics":
# https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).


class AlarmTopic(Construct):
    """An SNS topic encrypted with a customer-managed key that accepts only TLS publishes.

    The topic policy lets the given AWS services publish; e-mail subscriptions are created for
    `emails` (each recipient confirms once). The topic is retained on stack deletion so that
    subscriptions and confirmations survive a re-deploy.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        emails: Sequence[str] = (),
        publishers: Sequence[ServicePublisher] = ALARM_PUBLISHERS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", master_key=encryption_key, enforce_ssl=True)
        self.topic.apply_removal_policy(RemovalPolicy.RETAIN)
        stack = Stack.of(self)
        for publisher in publishers:
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=publisher.sid,
                    principals=[iam.ServicePrincipal(publisher.service)],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions=publisher.topic_conditions(stack),
                )
            )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
