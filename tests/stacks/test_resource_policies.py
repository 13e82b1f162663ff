"""Key and topic policies over every built-in profile: each statement that lets an AWS service principal
in is held to this account (aws:SourceAccount, or an aws:SourceArn that names the account), unless AWS
documents that the service does not send those keys or prescribes another condition, listed below with
the page that says so."""

from __future__ import annotations

import json
import re

# (policy type, service principal (a regular expression), Sid) -> why it carries no source key.
EXEMPT = {
    ("AWS::KMS::Key", r"events\.amazonaws\.com", "AllowEvents"): (
        "Adding the aws:SourceAccount, aws:SourceArn, and aws:SourceOrgID to a AWS KMS policy is not "
        "supported for EventBridge-to-encrypted topics (SNS developer guide, sns-key-management.html)"
    ),
    ("AWS::KMS::Key", r"logs\.[a-z0-9-]+\.amazonaws\.com", "AllowCloudWatchLogs"): (
        "CloudWatch Logs: kms:EncryptionContext:aws:logs:arn, the ARN of this account's and region's log "
        "groups (CloudWatch Logs user guide, encrypt-log-data-kms.html)"
    ),
    ("AWS::KMS::Key", r"bedrock\.amazonaws\.com", "AllowBedrockCustomModels"): (
        "the Nova user guide's custom-model key statement, limited by the aws:bedrock:custom-model "
        "encryption context; no source keys are documented for it"
    ),
}
POLICIES = {"AWS::KMS::Key": "KeyPolicy", "AWS::SNS::TopicPolicy": "PolicyDocument"}


def _service_statements(synthesized):
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] not in POLICIES:
                    continue
                for statement in resource["Properties"][POLICIES[resource["Type"]]]["Statement"]:
                    principal = statement.get("Principal")
                    if (
                        statement["Effect"] == "Allow"
                        and isinstance(principal, dict)
                        and "Service" in principal
                    ):
                        where = f"{profile}/{stack}/{logical_id}#{statement.get('Sid')}"
                        yield resource["Type"], principal["Service"], statement, where


def _exemption(resource_type: str, service: str, sid: str | None) -> str | None:
    for (kind, exempt_service, exempt_sid), reason in EXEMPT.items():
        if kind == resource_type and sid == exempt_sid and re.fullmatch(exempt_service, service):
            return reason
    return None


def test_every_service_principal_of_a_key_or_topic_policy_is_held_to_this_account(synthesized):
    unconditioned, checked, used = [], 0, set()
    for resource_type, service, statement, where in _service_statements(synthesized):
        checked += 1
        conditions = json.dumps(statement.get("Condition", {}))
        if "aws:SourceAccount" in conditions or "aws:SourceArn" in conditions:
            continue
        reason = _exemption(resource_type, service, statement.get("Sid"))
        if reason is None:
            unconditioned.append(f"{where}: {service}")
        else:
            used.add((resource_type, statement.get("Sid")))
            # An exemption still scopes the statement some other way (none is left open).
            assert statement.get("Condition") or service.startswith("events."), where
    assert checked >= 30
    assert not unconditioned, "service principals without a source condition:\n" + "\n".join(unconditioned)
    # Every exemption is still needed.
    assert used == {(kind, sid) for kind, _, sid in EXEMPT}
