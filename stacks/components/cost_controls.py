"""CostControls: AWS Budgets monthly budgets (on the cost-allocation tag, and on the Bedrock service),
Cost Anomaly Detection on the tag, and an alarm on the gateway's estimated cost."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from genai_stack.config import Budget, CostAllocation
from genai_stack.props import refuse_dicts, validated

# The Budgets `Service` cost filter takes the service's name as Cost Explorer shows it (AWS Budgets API
# reference, Budget.CostFilters: "The cost filters, such as Region, Service, LinkedAccount, Tag, or
# CostCategory, that are applied to a budget":
# https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Budget.html; the
# value for Bedrock is the SERVICE dimension value "Amazon Bedrock" of Cost Explorer).
BEDROCK_SERVICE = "Amazon Bedrock"
ESTIMATED_COST_NAMESPACE = "GenAiStack/Gateway"  # lambdas/gateway/metrics.py
ESTIMATED_COST_METRIC = "EstimatedCost"
# Alarms cannot use SEARCH ("Use search expressions in graphs":
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-search-expressions.html) and
# a metric-math alarm reads at most 10 metrics ("Limits" of alarms:
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html). So the alarm sums
# the gateway's per-alias EstimatedCost series (dimensions alias + Powertools' service, published for
# alarms by lambdas/gateway/metrics.py) over one day; with more than 10 aliases it falls back to a
# Metrics Insights query, whose alarms evaluate at most the latest 3 hours (same page).
MAX_MATH_METRICS = 10
DAY = Duration.days(1)
INSIGHTS_WINDOW = Duration.hours(3)


@dataclass(frozen=True)
class GatewayCost:
    """The gateway's estimated-cost series: its Powertools service name and its aliases."""

    service: str
    aliases: tuple[str, ...]


def estimated_cost_query(service: str) -> str:
    """A Metrics Insights query summing the per-alias EstimatedCost of one gateway: one time series
    ("Create a CloudWatch alarm based on a Metrics Insights query":
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Metrics_Insights_Alarm.html)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", service):
        raise ValueError(f"{service!r} is not a Powertools service name this query can quote")
    schema = f'"{ESTIMATED_COST_NAMESPACE}", alias, service'
    return f"SELECT SUM({ESTIMATED_COST_METRIC}) FROM SCHEMA({schema}) WHERE service = '{service}'"  # noqa: S608 - checked above


def estimated_cost_metric(gateway: GatewayCost) -> tuple[cw.IMetric, str]:
    """The gateway's total estimated cost per day (per 3 hours beyond 10 aliases), and that window."""
    if len(gateway.aliases) > MAX_MATH_METRICS:
        return cw.MathExpression(
            expression=estimated_cost_query(gateway.service),
            using_metrics={},
            label="Gateway estimated cost (USD)",
            period=INSIGHTS_WINDOW,
        ), "3 hours"
    per_alias = {
        f"alias{index}": cw.Metric(
            namespace=ESTIMATED_COST_NAMESPACE,
            metric_name=ESTIMATED_COST_METRIC,
            dimensions_map={"alias": alias, "service": gateway.service},
            statistic="Sum",
            period=DAY,
        )
        for index, alias in enumerate(sorted(gateway.aliases))
    }
    return cw.MathExpression(
        expression=f"SUM([{', '.join(per_alias)}])",
        using_metrics=per_alias,
        label="Gateway estimated cost (USD)",
        period=DAY,
    ), "a day"


def estimated_cost_threshold(monthly_limit_usd: float) -> float:
    """A day's share of the monthly limit (limit / 30): a day's spend in a day (in 3 hours, beyond 10
    aliases: then it catches a runaway, not a slow overrun)."""
    return round(monthly_limit_usd / 30, 2)


@dataclass(frozen=True)
class BudgetAlert:
    """Notify when ACTUAL or FORECASTED spend passes `percent` of the limit."""

    percent: float
    kind: Literal["ACTUAL", "FORECASTED"]


@refuse_dicts
class CostControls(Construct):
    """A monthly COST budget and an anomaly monitor, both scoped to one cost-allocation tag.

    Example (Budgets and Cost Explorer resources exist only in us-east-1: put this in a us-east-1
    stack, whatever region the workload is in)::

        from genai_stack.constructs import BudgetAlert, CostControls

        CostControls(
            stack, "Cost", tag_key="team", tag_value="support", monthly_limit_usd=500,
            alerts=[BudgetAlert(percent=80, kind="ACTUAL"), BudgetAlert(percent=100, kind="FORECASTED")],
            anomaly_threshold_usd=50, topic=topic, emails=["finops@example.com"],
        )

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
        bedrock_budget: bool = True,
        gateway_cost: GatewayCost | None = None,
    ) -> None:
        """`bedrock_budget`: also a budget on the Bedrock service, for the Bedrock spend tags cannot
        reach (knowledge-base embeddings and ingestion, calls not made through an application
        inference profile); it sees every Bedrock charge of the account, of every profile.
        `gateway_cost`: the model gateway's service and aliases; an alarm then watches the gateway's
        own EstimatedCost (tokens x list prices) against a day's share of the limit, notifying `topic`."""
        # The rules of a profile's `budget` section, with its messages.
        validated(
            f"CostControls({construct_id!r})",
            Budget,
            {
                "monthly_limit_usd": monthly_limit_usd,
                "thresholds": [{"percent": a.percent, "kind": a.kind} for a in alerts],
                "anomaly_threshold_usd": anomaly_threshold_usd,
            },
            renamed={"thresholds": "alerts"},
        )
        super().__init__(scope, construct_id)
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)]
        subscribers += [
            budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in emails
        ]
        notifications = [
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
        ]

        def budget(construct_id: str, cost_filters: dict) -> budgets.CfnBudget:
            return budgets.CfnBudget(
                self,
                construct_id,
                budget=budgets.CfnBudget.BudgetDataProperty(
                    budget_type="COST",
                    time_unit="MONTHLY",
                    budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_limit_usd, unit="USD"),
                    cost_filters=cost_filters,
                ),
                notifications_with_subscribers=notifications,
            )

        self.budget = budget("MonthlyBudget", {"TagKeyValue": [f"user:{tag_key}${tag_value}"]})
        self.bedrock_budget = (
            budget("BedrockServiceBudget", {"Service": [BEDROCK_SERVICE]}) if bedrock_budget else None
        )
        self.estimated_cost_alarm = estimated_cost_alarm(self, gateway_cost, monthly_limit_usd, topic)
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


def estimated_cost_alarm(
    scope: Construct, gateway_cost: GatewayCost | None, monthly_limit_usd: float, topic: sns.ITopic
) -> cw.Alarm | None:
    """The alarm on the gateway's own EstimatedCost (tokens x list prices) against a day's share of the
    monthly limit, notifying `topic`; None without a gateway alias. In the gateway's region (its metric
    is there), beside the budgets or, where they live in another region (cost_stack.py), alone."""
    if gateway_cost is None or not gateway_cost.aliases:
        return None
    metric, window = estimated_cost_metric(gateway_cost)
    threshold = estimated_cost_threshold(monthly_limit_usd)
    alarm = cw.Alarm(
        scope,
        "GatewayEstimatedCost",
        metric=metric,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarm_description=(
            f"Gateway: estimated model cost above {threshold:g} USD in {window} (a day's share of "
            f"the {monthly_limit_usd:g} USD monthly limit)"
        ),
        # No requests, no EMF: no cost, so missing data is not breaching.
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
    action = cw_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm


def profile_cost_controls(
    scope: Construct,
    *,
    budget: Budget,
    cost_allocation: CostAllocation,
    topic: sns.ITopic,
    emails: Sequence[str],
    bedrock_budget: bool,
    gateway_cost: GatewayCost | None = None,
) -> CostControls:
    """The CostControls of a profile's `budget` and `cost_allocation` sections, as construct `CostControls`
    of `scope` (the observability stack, or the budgets' own stack where the region lacks them)."""
    return CostControls(
        scope,
        "CostControls",
        tag_key=cost_allocation.tag_key,
        tag_value=cost_allocation.tag_value,
        monthly_limit_usd=budget.monthly_limit_usd,
        alerts=[BudgetAlert(percent=t.percent, kind=t.kind) for t in budget.thresholds],
        anomaly_threshold_usd=budget.anomaly_threshold_usd,
        topic=topic,
        emails=emails,
        bedrock_budget=bedrock_budget,
        gateway_cost=gateway_cost,
    )
