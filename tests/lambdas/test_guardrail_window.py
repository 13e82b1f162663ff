"""The guardrail version window over CloudFormation's event sequence: create, updates, a rollback
(an Update back to the old properties) and delete."""

from __future__ import annotations

import pytest

from lambdas.guardrail_window.handler import PHYSICAL_ID, handle

ARN = "arn:aws:bedrock:us-east-1:123456789012:guardrail/abcd1234efgh"


def event(request_type: str, version: str | None, old: str | None = None, **extra) -> dict:
    body = {"RequestType": request_type, "ServiceToken": "arn:aws:lambda:x", **extra}
    if version is not None:
        body["ResourceProperties"] = {"ServiceToken": "t", "GuardrailArn": ARN, "Version": version}
    if old is not None:
        body["OldResourceProperties"] = {"ServiceToken": "t", "GuardrailArn": ARN, "Version": old}
    return body


def test_a_create_accepts_only_the_published_version():
    result = handle(event("Create", "1"))
    assert result == {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {"Current": f"{ARN}:1", "Previous": f"{ARN}:1"},
    }


def test_an_update_accepts_the_new_and_the_replaced_version():
    assert handle(event("Update", "2", old="1"))["Data"] == {"Current": f"{ARN}:2", "Previous": f"{ARN}:1"}


def test_a_rollback_accepts_the_restored_and_the_abandoned_version():
    assert handle(event("Update", "1", old="2"))["Data"] == {"Current": f"{ARN}:1", "Previous": f"{ARN}:2"}


def test_a_replaced_guardrail_keeps_the_old_arn_in_previous():
    other = "arn:aws:bedrock:us-east-1:123456789012:guardrail/zzzz9999yyyy"
    body = event("Update", "1")
    body["OldResourceProperties"] = {"GuardrailArn": other, "Version": "4"}
    assert handle(body)["Data"] == {"Current": f"{ARN}:1", "Previous": f"{other}:4"}


def test_a_delete_does_nothing_and_keeps_the_physical_id():
    assert handle({**event("Delete", "3"), "PhysicalResourceId": PHYSICAL_ID}) == {
        "PhysicalResourceId": PHYSICAL_ID
    }


@pytest.mark.parametrize(("version", "arn"), [("DRAFT", ARN), ("0", ARN), ("1", "not-an-arn")])
def test_only_numeric_versions_of_a_guardrail_arn_are_accepted(version, arn):
    body = {"RequestType": "Create", "ResourceProperties": {"GuardrailArn": arn, "Version": version}}
    with pytest.raises(ValueError, match="ResourceProperties"):
        handle(body)


def test_unreadable_old_properties_accept_only_the_new_version():
    body = event("Update", "2")
    body["OldResourceProperties"] = {"Version": "x"}
    assert handle(body)["Data"] == {"Current": f"{ARN}:2", "Previous": f"{ARN}:2"}
