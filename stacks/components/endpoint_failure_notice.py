"""EndpointFailureNotice: SageMaker endpoint failures to the alarm topic, through EventBridge."""

from __future__ import annotations

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

# "SageMaker Endpoint State Change" (SageMaker developer guide, "Events that Amazon SageMaker AI sends to
# Amazon EventBridge": https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
# EndpointStatus values that are failures whatever the reason says (API spelling, EndpointMetadata:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointMetadata.html) and their
# upper-snake spelling, which published event examples use (lambdas/model_deployer/logic.rollout_failure
# accepts both for the same reason).
FAILED_STATUSES = ("Failed", "FAILED", "UpdateRollbackFailed", "UPDATE_ROLLBACK_FAILED")
IN_SERVICE_STATUSES = ("InService", "IN_SERVICE")


def endpoint_failure_pattern(endpoint_names: list[str]) -> events.EventPattern:
    """State changes of these endpoints that are failures: Failed or UpdateRollbackFailed, or InService
    with a FailureReason ("If the status of the endpoint is Failed, or the status is InService but
    update operation fails, this provides the reason why it failed", EndpointMetadata, FailureReason):
    an update that SageMaker rolled back. `$or` and `exists` are EventBridge content filters ("Creating
    event patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[ENDPOINT_STATE_CHANGE],
        detail={
            "EndpointName": list(endpoint_names),
            "$or": [
                {"EndpointStatus": list(FAILED_STATUSES)},
                {"EndpointStatus": list(IN_SERVICE_STATUSES), "FailureReason": [{"exists": True}]},
            ],
        },
    )


class EndpointFailureNotice(Construct):
    """One EventBridge rule that tells the alarm topic when an endpoint of the profile fails or has an
    update rolled back, in words (an input transformer), whoever changed it: CloudFormation, the model
    deployer or a person. The model deployer's own rule on the same events (model_deployment.py) goes
    on feeding its queue; EventBridge delivers an event to every rule that matches it."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_names: list[str], topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        if not endpoint_names:
            raise ValueError("EndpointFailureNotice needs at least one endpoint name")
        field = events.EventField.from_path
        message = events.RuleTargetInput.from_text(
            f"SageMaker endpoint {field('$.detail.EndpointName')} is {field('$.detail.EndpointStatus')} "
            f"(endpoint configuration {field('$.detail.EndpointConfigName')}) at {field('$.time')} in "
            f"{field('$.region')}: {field('$.detail.FailureReason')}. Failed: the endpoint does not serve; "
            "InService with a reason: the update was rolled back and the previous configuration serves. "
            "See DescribeEndpoint and the endpoint's CloudWatch logs."
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="Tell the alarm topic when a SageMaker endpoint of this profile fails or rolls back",
            event_pattern=endpoint_failure_pattern(endpoint_names),
            targets=[_AlarmTopicTarget(topic, message)],
        )


@jsii.implements(events.IRuleTarget)
class _AlarmTopicTarget:
    """The alarm topic as the rule's target, without the unconditioned `events.amazonaws.com` publish
    statement aws-cdk-lib's `targets.SnsTopic` adds to the topic policy: the AlarmTopic's own statement
    for EventBridge requires aws:SourceAccount and the rule ARN as aws:SourceArn
    (alarm_topic.ALARM_PUBLISHERS). No RoleArn: EventBridge publishes to SNS under the topic's policy
    ("For targets that use resource-based policies (Lambda, Amazon SNS, Amazon SQS, and Amazon CloudWatch
    Logs), do not specify a RoleArn": EventBridge user guide, eb-use-resource-based.html)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic, self._message = topic, message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)
