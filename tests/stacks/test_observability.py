"""ObservabilityStack: budget, anomaly alerts and the dashboard, from the profile's settings."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Duration, Environment, Stack, Stage
from aws_cdk import aws_cloudwatch as cloudwatch

from genai_stack.components.monitoring import MonitoringHub
from genai_stack.config import load_profile
from genai_stack.foundation_stack import FoundationStack
from genai_stack.observability_stack import ObservabilityStack
from tests.conftest import cdk_app

PROFILE = "managed-api"


def tag_budget(synthesized) -> dict:
    """The budget on the cost-allocation tag (the other one filters on the Bedrock service)."""
    budgets = synthesized.resources(PROFILE, "Observability", "AWS::Budgets::Budget")
    (budget,) = [b for b in budgets.values() if "TagKeyValue" in b["Properties"]["Budget"]["CostFilters"]]
    return budget


def test_the_budget_is_monthly_on_the_cost_allocation_tag(synthesized):
    profile = load_profile(PROFILE)
    budget = tag_budget(synthesized)
    data = budget["Properties"]["Budget"]
    assert data["BudgetType"] == "COST"
    assert data["TimeUnit"] == "MONTHLY"
    assert data["BudgetLimit"] == {"Amount": profile.budget.monthly_limit_usd, "Unit": "USD"}
    tag = profile.cost_allocation
    assert data["CostFilters"] == {"TagKeyValue": [f"user:{tag.tag_key}${tag.tag_value}"]}


def test_each_threshold_notifies_the_topic_and_the_emails(synthesized):
    profile = load_profile(PROFILE)
    budget = tag_budget(synthesized)
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert [
        (n["Notification"]["Threshold"], n["Notification"]["NotificationType"]) for n in notifications
    ] == [(t.percent, t.kind) for t in profile.budget.thresholds]
    for notification in notifications:
        assert notification["Notification"]["ThresholdType"] == "PERCENTAGE"
        kinds = [s["SubscriptionType"] for s in notification["Subscribers"]]
        assert kinds == ["SNS"] + ["EMAIL"] * len(profile.notifications.emails)
        # The topic comes from the foundation stack (Fn::GetStackOutput: no export lock between stacks).
        reference = notification["Subscribers"][0]["Address"]["Fn::GetStackOutput"]
        assert reference["StackName"] == "managed-api-foundation"
        assert reference["OutputName"].startswith("PublishOutputRefAlarmsTopic")


def test_anomaly_monitor_watches_the_tag_and_alerts_the_topic_immediately(synthesized):
    profile = load_profile(PROFILE)
    (monitor,) = synthesized.resources(PROFILE, "Observability", "AWS::CE::AnomalyMonitor").values()
    assert monitor["Properties"]["MonitorType"] == "CUSTOM"
    assert json.loads(monitor["Properties"]["MonitorSpecification"]) == {
        "Tags": {"Key": profile.cost_allocation.tag_key, "Values": [profile.cost_allocation.tag_value]}
    }
    (subscription,) = synthesized.resources(PROFILE, "Observability", "AWS::CE::AnomalySubscription").values()
    props = subscription["Properties"]
    assert props["Frequency"] == "IMMEDIATE"
    assert [s["Type"] for s in props["Subscribers"]] == ["SNS"]
    threshold = json.loads(props["ThresholdExpression"])["Dimensions"]
    assert threshold["Key"] == "ANOMALY_TOTAL_IMPACT_ABSOLUTE"
    assert threshold["Values"] == [f"{profile.budget.anomaly_threshold_usd:g}"]


def test_one_dashboard_per_profile(synthesized):
    dashboards = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1


def test_sections_and_alarms_registered_by_a_stack_reach_the_dashboard_and_the_topic(tmp_path):
    """The hub interface end to end, wired the way GenAiStage wires an approach stack."""
    profile = load_profile(PROFILE)
    app = cdk_app(tmp_path)
    stage = Stage(app, "hub-test", env=Environment(region=profile.region))
    foundation = FoundationStack(
        stage, "Foundation", profile_name="t", settings=profile.foundation, alarm_emails=[]
    )
    hub = MonitoringHub(alarm_topic=foundation.alarm_topic)
    example = Stack(stage, "Example")
    metric = cloudwatch.Metric(namespace="Example", metric_name="Errors", period=Duration.minutes(5))
    hub.add_alarm(cloudwatch.Alarm(example, "Errors", metric=metric, threshold=1, evaluation_periods=1))
    hub.add_section("Example section", [cloudwatch.GraphWidget(title="Errors", left=[metric])])
    ObservabilityStack(
        stage,
        "Observability",
        profile_name="t",
        description="d",
        budget=profile.budget,
        cost_allocation=profile.cost_allocation,
        emails=[],
        hub=hub,
    )
    nested = app.synth().get_nested_assembly(stage.artifact_id)
    templates = {s.hierarchical_id.split("/")[-1]: s.template for s in nested.stacks}

    (alarm,) = [
        r for r in templates["Example"]["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert len(alarm["Properties"]["AlarmActions"]) == 1
    assert alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"]
    (dashboard,) = [
        r
        for r in templates["Observability"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "## Example section" in body
    assert '\\"type\\":\\"alarm\\"' in body


def test_the_hub_refuses_empty_and_duplicate_sections():
    hub = MonitoringHub(alarm_topic=None)  # type: ignore[arg-type]  # the topic is not used by sections
    widget = cloudwatch.TextWidget(markdown="x")
    with pytest.raises(ValueError, match="has no widgets"):
        hub.add_section("Empty", [])
    hub.add_section("Once", [widget])
    with pytest.raises(ValueError, match="added twice"):
        hub.add_section("Once", [widget])
