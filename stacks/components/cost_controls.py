"""CostControls: an AWS Budgets monthly budget and Cost Anomaly Detection on the cost-allocation tag."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_sns as sns
from constructs import Construct


@dataclass(frozen=True)
class BudgetAlert:
    """Notify when ACTUAL or FORECASTED spend passes `percent` of the limit."""

    percent: float
    kind: Literal["ACTUAL", "FORECASTED"]


class CostControls(Construct):
    """A monthly COST budget and an anomaly monitor, both scoped to one cost-allocation tag.

    - The budget filters on the tag with the Budgets cost filter `TagKeyValue`, whose values have the
      form `user:KEY$VALUE` (AWS Budgets API reference, Budget.CostFilters). Each alert notifies the
      topic and, directly, up to 10 e-mail addresses (Budgets quota: 1 SNS + 10 e-mail subscribers
      per notification), so a budget alert reaches people even before they confirm the topic.
    - The anomaly monitor is a CUSTOM monitor on the same tag (MonitorSpecification is a Cost
      Explorer expression on `Tags`); its subscription notifies the topic IMMEDIATELY for anomalies
      whose total impact is at least `anomaly_threshold_usd` (IMMEDIATE requires an SNS subscriber:
      Cost Management user guide, "Creating your cost monitors and alert subscription").
    The cost-allocation tag key must be activated once in the Billing console for both to see spend.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tag_key: str,
        tag_value: str,
        monthly_limit_usd: float,
        alerts: Sequence[BudgetAlert],
        anomaly_threshold_usd: float,
        topic: sns.ITopic,
        emails: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if not alerts:
            raise ValueError("a budget needs at least one alert")
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)]
        subscribers += [
            budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in emails
        ]
        self.budget = budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_limit_usd, unit="USD"),
                cost_filters={"TagKeyValue": [f"user:{tag_key}${tag_value}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=alert.kind,
                        comparison_operator="GREATER_THAN",
                        threshold=alert.percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for alert in alerts
            ],
        )
        # Monitor and subscription names are required by CloudFormation; they are not unique keys.
        self.anomaly_monitor = ce.CfnAnomalyMonitor(
            self,
            "AnomalyMonitor",
            monitor_name=f"genai-stack {tag_key}={tag_value}",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps({"Tags": {"Key": tag_key, "Values": [tag_value]}}),
        )
        self.anomaly_subscription = ce.CfnAnomalySubscription(
            self,
            "AnomalySubscription",
            subscription_name=f"genai-stack {tag_key}={tag_value}",
            frequency="IMMEDIATE",
            monitor_arn_list=[self.anomaly_monitor.attr_monitor_arn],
            subscribers=[ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=topic.topic_arn)],
            threshold_expression=json.dumps(
                {
                    "Dimensions": {
                        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                        "Values": [f"{anomaly_threshold_usd:g}"],
                    }
                }
            ),
        )
