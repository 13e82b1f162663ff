"""InvocationLogging in the synthesized Bedrock stacks: what its custom resource's handler may call."""

from __future__ import annotations

import pytest

PROFILES = ("managed-api", "customer-service")


def handler_statements(synthesized, profile: str) -> dict[str, dict]:
    policies = synthesized.resources(profile, "Bedrock", "AWS::IAM::Policy")
    (policy,) = [
        p
        for logical_id, p in policies.items()
        if logical_id.startswith("InvocationLoggingConfigurationHandlerRole")
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_handler_may_read_the_status_of_its_own_stack_only(synthesized, profile):
    # A rollback Update must not fail the ownership check again: the handler asks DescribeStacks
    # whether its stack is rolling back (lambdas/invocation_logging/logic.py, apply).
    statement = handler_statements(synthesized, profile)["ReadTheStackStatus"]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    assert statement["Resource"] == {"Ref": "AWS::StackId"}
