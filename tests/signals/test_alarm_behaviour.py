"""What every alarm does with missing data, and that profiles sharing an account keep apart.

- TreatMissingData is set on every alarm (CloudWatch's default, `missing`, was never a choice here)
  and follows what the metric's emitter does when nothing happens: queues' metrics stop after six
  hours of inactivity (dead-letter queues: `ignore`, so an alarm stays in ALARM while the message
  sits there), metrics a schedule publishes every interval go missing only when the schedule stops
  (`breaching`). The reason for each choice sits beside the alarm in stacks/.
- Two profiles deployed to one account and region must not alarm on the same metric identity
  (namespace, name, dimensions and values): a shared API name, EMF service name or Bedrock model id
  would make one profile's alarm fire on another's traffic.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from genai_stack.config import builtin_profile_names
from tests.signals.readers import Identity

# Metrics published on a schedule whatever happens: no data means the publisher stopped.
HEARTBEATS = {("GenAiStack/KnowledgeBases", "IngestionJobFailed"), ("GenAiStack/Drift", "RunsCompleted")}


def alarms(synthesized):
    for profile in builtin_profile_names():
        for stack, template in synthesized.templates[profile].items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == "AWS::CloudWatch::Alarm":
                    yield profile, stack, logical_id, resource["Properties"]


def metric_names(props: dict) -> set[tuple[str, str]]:
    if "MetricName" in props:
        return {(props["Namespace"], props["MetricName"])}
    return {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"])
        for q in props.get("Metrics", [])
        if "MetricStat" in q
    }


def test_every_alarm_chooses_what_missing_data_means(synthesized):
    unset = [f"{p}/{s}/{a}" for p, s, a, props in alarms(synthesized) if "TreatMissingData" not in props]
    assert not unset, f"alarms on CloudWatch's default for missing data: {unset}"


def test_dead_letter_queue_alarms_keep_their_state_when_sqs_stops_publishing(synthesized):
    found = 0
    for profile, stack, alarm, props in alarms(synthesized):
        if ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metric_names(props):
            found += 1
            assert props["TreatMissingData"] == "ignore", f"{profile}/{stack}/{alarm}"
    assert found  # custom-model's model deployer


def test_alarms_on_scheduled_metrics_fire_when_the_schedule_stops(synthesized):
    found = 0
    for profile, stack, alarm, props in alarms(synthesized):
        if metric_names(props) & HEARTBEATS:
            found += 1
            assert props["TreatMissingData"] == "breaching", f"{profile}/{stack}/{alarm}"
    assert found


def test_two_profiles_in_one_account_share_no_alarm_metric(readers):
    """Resolved as if every profile were deployed to the same account and region."""
    owners: dict[Identity, set[str]] = defaultdict(set)
    for profile, by_key in readers.items():
        for reader in by_key.values():
            if not reader.where.startswith("Dashboard") and isinstance(reader.read, Identity):
                owners[reader.read].add(profile)
    shared = {str(identity): sorted(profiles) for identity, profiles in owners.items() if len(profiles) > 1}
    assert not shared, f"alarm metrics two profiles share: {shared}"


@pytest.mark.parametrize("profile", ["managed-api", "self-hosted"])
def test_the_gateways_api_and_service_names_carry_the_profile(synthesized, profile):
    (api,) = [
        r["Properties"]
        for r in synthesized.templates[profile]["Orchestration"]["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::RestApi"
    ]
    assert api["Name"] == f"{profile}-gateway"
    functions = [
        r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for t in synthesized.templates[profile].values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "POWERTOOLS_SERVICE_NAME" in str(r["Properties"])
    ]
    assert functions
    assert all(name.startswith(f"{profile}-") for name in functions), functions
