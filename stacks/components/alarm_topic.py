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
    """An AWS service that publishes to the topic, and whether it sends aws:SourceAccount.

    Where the service documents the confused-deputy keys, the topic and key policies require
    aws:SourceAccount; a service that does not send the key would be denied by such a condition.
    """

    service: str
    sends_source_account: bool

    @property
    def sid(self) -> str:
        return "Allow" + "".join(part.capitalize() for part in self.service.split(".")[0].split("-"))


ALARM_PUBLISHERS: tuple[ServicePublisher, ...] = (
    # CloudWatch alarm actions. Amazon SNS developer guide, "Encryption at rest" -> key policy example
    # for CloudWatch alarms (no source conditions shown).
    ServicePublisher("cloudwatch.amazonaws.com", sends_source_account=False),
    # AWS Budgets notifications. Cost Management user guide, "Creating an Amazon SNS topic for budget
    # notifications": the policy example conditions on aws:SourceAccount and aws:SourceArn.
    ServicePublisher("budgets.amazonaws.com", sends_source_account=True),
    # Cost Anomaly Detection alerts. Cost Management user guide, "Creating an Amazon SNS topic for
    # anomaly notifications" (policy example without source conditions).
    ServicePublisher("costalerts.amazonaws.com", sends_source_account=False),
    # EventBridge rules with the topic as target (the SageMaker endpoint state-change rule,
    # model_endpoint.EndpointFailureNotice): the topic policy must allow events.amazonaws.com to publish
    # and, the topic being encrypted, the key policy must let it use the key (AWS re:Post, "Why isn't
    # my Amazon SNS topic receiving Amazon EventBridge notifications?":
    # https://repost.aws/knowledge-center/sns-not-getting-eventbridge-notification; its examples have
    # no source conditions, so none is required here).
    ServicePublisher("events.amazonaws.com", sends_source_account=False),
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
        account = Stack.of(self).account
        for publisher in publishers:
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=publisher.sid,
                    principals=[iam.ServicePrincipal(publisher.service)],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions=(
                        {"StringEquals": {"aws:SourceAccount": account}}
                        if publisher.sends_source_account
                        else None
                    ),
                )
            )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
