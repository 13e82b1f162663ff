"""Key and topic policies over every built-in profile: each statement that lets an AWS service principal
in is held to this account (aws:SourceAccount, or an aws:SourceArn that names the account), unless AWS
documents that the service does not send those keys or prescribes another condition, listed below with
the page that says so."""

from __future__ import annotations

import json
import re

from tests.support.templates import identity_statements

# (policy type, service principal (a regular expression), Sid) -> why it carries no source key.
EXEMPT = {
    ("AWS::KMS::Key", r"events\.amazonaws\.com", "AllowEvents"): (
        "Adding the aws:SourceAccount, aws:SourceArn, and aws:SourceOrgID to a AWS KMS policy is not "
        "supported for EventBridge-to-encrypted topics (SNS developer guide, sns-key-management.html)"
    ),
    ("AWS::KMS::Key", r"costalerts\.amazonaws\.com", "AllowCostalerts"): (
        "Cost Anomaly Detection documents source keys for the topic policy only (Cost Management user "
        "guide, ad-SNS.html); a key-policy condition its KMS requests do not meet would drop alerts silently"
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
            # An exemption still scopes the statement some other way, except where AWS documents
            # none that works (EventBridge's and Cost Anomaly Detection's key statements).
            assert statement.get("Condition") or service.startswith(("events.", "costalerts.")), where
    assert checked >= 30
    assert not unconditioned, "service principals without a source condition:\n" + "\n".join(unconditioned)
    # Every exemption is still needed.
    assert used == {(kind, sid) for kind, _, sid in EXEMPT}


# Mutating Bedrock and SageMaker actions on a type-wide ARN that AWS lets a policy scope by tag but that
# are not scoped yet, with what scoping each needs. The list only shrinks: a new one fails the test,
# and so does one that is scoped or gone and still listed.
NOT_YET_TAG_SCOPED = {
    # "If you supply ModelPackageGroupName, your model package belongs to the model group you specify
    # and uses the tags associated with the model group. In this case, you cannot supply a tag
    # argument" (SageMaker API reference, CreateModelPackage, Tags): a version cannot carry request
    # tags, and the version being created has no resource tags yet.
    "sagemaker:CreateModelPackage": "a versioned package cannot carry tags of its own",
}
MUTATING = ("Write", "Permissions management", "Tagging")


def _identity_statements(synthesized):
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            for logical_id, statement in identity_statements(template):
                if statement.get("Effect") == "Allow":
                    yield f"{profile}/{stack}/{logical_id}#{statement.get('Sid')}", statement


def test_no_mutating_bedrock_or_sagemaker_statement_on_a_type_wide_arn_lacks_a_tag_condition(synthesized):
    """Against the Service Authorization Reference (policy_sentry's copy): where an action accepts
    aws:ResourceTag or aws:RequestTag, a statement on a wildcard ARN carries a tag condition."""
    from policy_sentry.querying.actions import get_action_data

    unscoped: dict[str, list[str]] = {}
    for where, statement in _identity_statements(synthesized):
        resources = json.dumps(statement.get("Resource"))
        conditions = json.dumps(statement.get("Condition", {}))
        if "*" not in resources or "ResourceTag" in conditions or "RequestTag" in conditions:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            service, name = action.split(":", 1)
            if service not in ("bedrock", "sagemaker"):
                continue
            entries = get_action_data(service, name).get(service, [])
            if not entries or entries[0]["access_level"] not in MUTATING:
                continue
            keys = {key for entry in entries for key in entry["condition_keys"]}
            if any(key.startswith(("aws:ResourceTag/", "aws:RequestTag/")) for key in keys):
                unscoped.setdefault(action, []).append(where)
    new = {a: w for a, w in unscoped.items() if a not in NOT_YET_TAG_SCOPED}
    assert not new, f"mutating actions on wildcard ARNs without a tag condition: {new}"
    stale = sorted(set(NOT_YET_TAG_SCOPED) - set(unscoped))
    assert not stale, f"scoped now (or gone): remove from NOT_YET_TAG_SCOPED: {stale}"


def test_every_function_an_aws_service_may_invoke_is_held_to_this_account(synthesized):
    """A Lambda permission for a service principal names this account (SourceAccount) or the one
    resource that invokes (SourceArn): without either, any account's resource of that service could
    invoke the function ("Working with resource-based IAM policies in Lambda", cross-service confused
    deputy: https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html)."""
    open_to_all, checked = [], 0
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] != "AWS::Lambda::Permission":
                    continue
                properties = resource["Properties"]
                if not str(properties.get("Principal", "")).endswith(".amazonaws.com"):
                    continue
                checked += 1
                if not (properties.get("SourceAccount") or properties.get("SourceArn")):
                    open_to_all.append(f"{profile}/{stack}/{logical_id}: {properties['Principal']}")
    assert checked >= 5
    assert not open_to_all, "functions any account's resources may invoke:\n" + "\n".join(open_to_all)
