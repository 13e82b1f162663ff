"""ObservabilityStack: cost controls and the profile's dashboard. Built last; it reads the hub."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

from genai_stack.components.cost_controls import (
    CostControls,
    GatewayCost,
    estimated_cost_alarm,
    profile_cost_controls,
)
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.spend_cap import SpendCap
from genai_stack.config import Budget, CostAllocation

DASHBOARD_WIDTH = 24  # CloudWatch dashboards are 24 grid units wide


class ObservabilityStack(Stack):
    """AWS Budgets budget + Cost Anomaly Detection on the profile's tag, and one CloudWatch dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        description: str,
        budget: Budget,
        cost_allocation: CostAllocation,
        emails: Sequence[str],
        hub: MonitoringHub,
        bedrock_budget: bool = False,
        gateway_cost: GatewayCost | None = None,
        budgets_elsewhere: str | None = None,
        invoking_roles: Sequence[iam.IRole] = (),
        **kwargs,
    ) -> None:
        """`budgets_elsewhere`: the region of the stack that holds the budgets (cost_stack.py) when
        this region's CloudFormation lacks them; then only the gateway's estimated-cost alarm is here.
        `invoking_roles`: the profile's roles that invoke models, which `budget.stop_invocations`
        denies invocation to once the budget's actual spend reaches its share."""
        super().__init__(scope, construct_id, **kwargs)

        self.cost_controls: CostControls | None = None
        if budgets_elsewhere is None:
            self.cost_controls = profile_cost_controls(
                self,
                budget=budget,
                cost_allocation=cost_allocation,
                topic=hub.alarm_topic,
                emails=emails,
                bedrock_budget=bedrock_budget,
                gateway_cost=gateway_cost,
            )
        else:
            estimated_cost_alarm(self, gateway_cost, budget.monthly_limit_usd, hub.alarm_topic)
        self.spend_cap: SpendCap | None = None
        stop = budget.stop_invocations
        if stop is not None and self.cost_controls is not None and invoking_roles:
            self.spend_cap = SpendCap(
                self,
                "SpendCap",
                budget_name=self.cost_controls.budget.ref,
                roles=invoking_roles,
                at_percent=stop.at_percent,
                approval=stop.approval,
                topic=hub.alarm_topic,
                emails=emails,
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(7),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# genai-stack: {profile_name}\n{description}\n\n"
                    f"Monthly budget {budget.monthly_limit_usd:g} USD on tag "
                    f"`{cost_allocation.tag_key}={cost_allocation.tag_value}` (AWS Budgets console"
                    + (f"; the budget stack is in {budgets_elsewhere}" if budgets_elsewhere else "")
                    + ")."
                ),
                width=DASHBOARD_WIDTH,
                height=3,
            )
        )
        if hub.alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(hub.alarms), width=DASHBOARD_WIDTH, height=3
                )
            )
        for section in hub.sections:
            self.dashboard.add_widgets(
                cloudwatch.TextWidget(markdown=f"## {section.title}", width=DASHBOARD_WIDTH, height=1)
            )
            self.dashboard.add_widgets(*section.widgets)
