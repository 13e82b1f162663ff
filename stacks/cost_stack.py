"""CostStack: a profile's budgets and Cost Anomaly Detection monitor where its own region's
CloudFormation lacks AWS::Budgets::Budget (e.g. ap-east-1, which has the AWS::CE types but not the
budget: stacks/data/regions.json). AWS Budgets and Cost Explorer are global services, so the budget sees
the profile's spend in every region; the stack lives in us-east-1, where both are offered, and the
anomaly monitor stays beside the budget, sharing its topic.

It has its own key and topic (an SNS subscriber of a budget must be in the budget's account; Cost
Management user guide, "Creating an Amazon SNS topic for budget notifications",
https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html), mailing the
profile's addresses: no reference crosses regions. The gateway's estimated-cost alarm watches a metric
in the profile's region and stays in the observability stack there.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from constructs import Construct

from genai_stack.components.alarm_topic import ALARM_PUBLISHERS, AlarmTopic
from genai_stack.components.cost_controls import profile_cost_controls
from genai_stack.components.platform_key import PlatformKey
from genai_stack.config import Budget, CostAllocation

# Only AWS Budgets and Cost Anomaly Detection publish to this topic.
COST_PUBLISHERS = tuple(
    p for p in ALARM_PUBLISHERS if p.service in ("budgets.amazonaws.com", "costalerts.amazonaws.com")
)


class CostStack(Stack):
    """A monthly budget (and a Bedrock budget) and an anomaly monitor on the profile's tag, with a topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        budget: Budget,
        cost_allocation: CostAllocation,
        emails: Sequence[str],
        bedrock_budget: bool,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = PlatformKey(
            self,
            "PlatformKey",
            description=f"genai-stack {profile_name}: cost alert topic",
            topic_publishers=COST_PUBLISHERS,
            allow_cloudwatch_logs=False,
        ).key
        self.topic = AlarmTopic(
            self, "CostAlerts", encryption_key=key, emails=emails, publishers=COST_PUBLISHERS
        ).topic
        self.cost_controls = profile_cost_controls(
            self,
            budget=budget,
            cost_allocation=cost_allocation,
            topic=self.topic,
            emails=emails,
            bedrock_budget=bedrock_budget,
        )
