"""SageMaker endpoints (custom-model profile): a failed endpoint or a rolled-back update reaches the
alarm topic as a readable message, whoever changed the endpoint; the model deployer's own rule on the
same events stays."""

from __future__ import annotations

import json

from genai_stack.components.endpoint_failure_notice import ENDPOINT_STATE_CHANGE
from genai_stack.config import load_profile

PROFILE = "custom-model"


def rules(synthesized, stack: str) -> dict[str, dict]:
    return synthesized.resources(PROFILE, stack, "AWS::Events::Rule")


def notice_rule(synthesized) -> dict:
    (rule,) = [
        r["Properties"]
        for k, r in rules(synthesized, "Inference").items()
        if k.startswith("EndpointFailures")
    ]
    return rule


def test_every_endpoint_of_the_profile_has_its_failures_sent_to_the_alarm_topic(synthesized):
    rule = notice_rule(synthesized)
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == [ENDPOINT_STATE_CHANGE]
    names = [f"{PROFILE}-{e.name}" for e in load_profile(PROFILE).inference.endpoints]
    assert sorted(pattern["detail"]["EndpointName"]) == sorted(names)
    failed, rolled_back = pattern["detail"]["$or"]
    assert {"Failed", "UpdateRollbackFailed"} <= set(failed["EndpointStatus"])
    assert "InService" in rolled_back["EndpointStatus"]
    assert rolled_back["FailureReason"] == [{"exists": True}]
    (target,) = rule["Targets"]
    assert "Alarms" in json.dumps(target["Arn"])  # the foundation's alarm topic (an import of its ARN)
    transformer = target["InputTransformer"]
    paths = transformer["InputPathsMap"]
    assert {paths[k] for k in paths} >= {
        "$.detail.EndpointName",
        "$.detail.EndpointStatus",
        "$.detail.FailureReason",
    }
    assert "rolled back" in transformer["InputTemplate"]


def test_the_model_deployers_own_rule_on_the_same_events_stays(synthesized):
    deployer = [
        r["Properties"]
        for r in rules(synthesized, "Training").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == [ENDPOINT_STATE_CHANGE]
    ]
    assert len(deployer) == 1
    (target,) = deployer[0]["Targets"]
    assert "SqsParameters" in target or "Approvals" in json.dumps(target["Arn"])  # the deployer's queue


def test_the_pattern_matches_failures_and_rollbacks_only():
    """EventBridge semantics of the pattern, applied by hand to the event shapes SageMaker sends."""
    from genai_stack.components.endpoint_failure_notice import (
        FAILED_STATUSES,
        IN_SERVICE_STATUSES,
        endpoint_failure_pattern,
    )

    detail = endpoint_failure_pattern(["e"]).detail

    def matches(event: dict) -> bool:
        if event["EndpointName"] not in detail["EndpointName"]:
            return False
        for branch in detail["$or"]:
            status_ok = event.get("EndpointStatus") in branch["EndpointStatus"]
            reason_ok = "FailureReason" not in branch or "FailureReason" in event
            if status_ok and reason_ok:
                return True
        return False

    assert all(matches({"EndpointName": "e", "EndpointStatus": s}) for s in FAILED_STATUSES)
    assert matches({"EndpointName": "e", "EndpointStatus": "InService", "FailureReason": "health check"})
    assert not matches({"EndpointName": "e", "EndpointStatus": "InService"})
    assert not matches({"EndpointName": "e", "EndpointStatus": "Updating"})
    assert not matches({"EndpointName": "other", "EndpointStatus": "Failed"})
    assert set(IN_SERVICE_STATUSES) == {"InService", "IN_SERVICE"}
