"""The smoke role (docs/smoke-role.yaml) allows every call `genai-stack smoke` makes on each built-in
profile's deployed resources, as AWS evaluates them (exact ARNs, the resources' own tags from the
templates), and refuses what smoke must not do (other profiles' resources, other objects, deletes).

The calls, with the page that names each action's resource: stacks/cli/smoke.py (each check's
docstring) and docs/operations.md "After the deploy: smoke"."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_stack.cli.smoke import GATEWAY_HANDLER, SMOKE_DOCUMENT_PREFIX
from genai_stack.config import builtin_profile_names
from tests.access.deployment import Deployment
from tests.access.evaluator import Policy, Request, evaluate
from tests.access.rows import Call
from tests.support import REPO_ROOT

TEMPLATE = REPO_ROOT / "docs" / "smoke-role.yaml"
PROFILE_TAG = "genai-stack:profile"


def rendered_policy(template: Path, logical_id: str, values: Mapping[str, str]) -> Policy:
    """A managed policy of a documented template as CloudFormation renders it with `values` (its
    parameters and pseudo parameters): Fn::Sub and Ref, the only intrinsics these templates use."""
    resource = yaml.safe_load(template.read_text())["Resources"][logical_id]

    def render(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], node["Fn::Sub"])
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        if isinstance(node, dict):
            return {key: render(value) for key, value in node.items()}
        if isinstance(node, list):
            return [render(item) for item in node]
        return node

    return Policy(f"{template.name} {logical_id}", render(resource["Properties"]["PolicyDocument"]))


def policy_for(deployment: Deployment) -> Policy:
    """The smoke role's policy for this profile, account and region."""
    return rendered_policy(
        TEMPLATE,
        "SmokePolicy",
        {
            "ProfileName": deployment.profile,
            "AWS::AccountId": deployment.account,
            "AWS::Region": deployment.region,
            "AWS::Partition": deployment.partition,
        },
    )


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    properties = resource.get("Properties", {})
    raw = properties.get("Tags") or properties.get("ResourceTags") or []
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {t["Key"]: t["Value"] for t in raw if isinstance(t.get("Value"), str)}


def tagged(resource: Mapping[str, Any]) -> dict[str, str]:
    return {f"aws:ResourceTag/{key}": value for key, value in tags_of(resource).items()}


def resources(deployment: Deployment, resource_type: str) -> Iterator[tuple[str, str, dict]]:
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == resource_type:
                yield stack, logical_id, resource


def smoke_calls(deployment: Deployment) -> list[Call]:
    """What smoke asks for this profile, on the names the resolver gives the deployed resources."""
    arn, resolver = deployment.arn, deployment.resolver
    calls = []
    for stack in deployment.templates:
        stack_arn = arn("cloudformation", f"stack/{stack}/0a1b2c3d-0000-0000-0000-000000000000")
        calls += [
            Call(action, stack_arn, "smoke.check_stack")
            for action in ("cloudformation:DescribeStacks", "cloudformation:ListStackResources")
        ]
    if any(True for _ in resources(deployment, "AWS::CloudWatch::Alarm")):
        # CloudWatch evaluates DescribeAlarms on alarm:* whatever names the request gives (its
        # AccessDenied names arn:...:alarm:*), with no resource tag to condition on.
        calls.append(Call("cloudwatch:DescribeAlarms", arn("cloudwatch", "alarm:*"), "smoke.check_alarms"))
    for _, logical_id, resource in resources(deployment, "AWS::Budgets::Budget"):
        budget = arn("budgets", f"budget/{logical_id}", region="")
        calls.append(Call("budgets:ViewBudget", budget, "smoke.check_budgets", tagged(resource)))
    for _, logical_id, resource in resources(deployment, "AWS::CE::AnomalyMonitor"):
        monitor = arn("ce", f"anomalymonitor/{logical_id}", region="")
        calls.append(Call("ce:GetAnomalyMonitors", monitor, "smoke.check_anomaly_monitors", tagged(resource)))
    for stack, logical_id, resource in resources(deployment, "AWS::SageMaker::Endpoint"):
        calls.append(
            Call(
                "sagemaker:DescribeEndpoint",
                resolver.ref(stack, logical_id),
                "smoke.check_endpoints",
                tagged(resource),
            )
        )
    for stack, logical_id, resource in resources(deployment, "AWS::Bedrock::KnowledgeBase"):
        kb = arn("bedrock", f"knowledge-base/{resolver.ref(stack, logical_id)}")
        calls += [
            Call(action, kb, "smoke.check_knowledge_base", tagged(resource))
            for action in ("bedrock:ListIngestionJobs", "bedrock:Retrieve")
        ]
    keys = {logical_id: resource for _, logical_id, resource in resources(deployment, "AWS::KMS::Key")}
    (platform_key,) = [
        (logical_id, r) for logical_id, r in keys.items() if logical_id.startswith("PlatformKey")
    ]
    key_arn = resolver.get_att(f"{deployment.profile}-foundation", platform_key[0], "Arn")
    for stack, logical_id, _ in resources(deployment, "AWS::S3::Bucket"):
        if not logical_id.startswith("DataBucket"):
            continue
        bucket = resolver.ref(stack, logical_id)
        for prefix in deployment_kb_prefixes(deployment)[:1]:  # smoke tests the first knowledge base
            document = f"arn:{deployment.partition}:s3:::{bucket}/{prefix}{SMOKE_DOCUMENT_PREFIX}0123abcd.txt"
            calls += [
                Call("s3:PutObject", document, "smoke.check_knowledge_base"),
                Call("s3:DeleteObject", document, "smoke.check_knowledge_base"),
                Call(
                    "kms:GenerateDataKey",
                    key_arn,
                    "the test document under the bucket's key",
                    {"kms:ViaService": f"s3.{deployment.region}.amazonaws.com", **tagged(platform_key[1])},
                ),
            ]
    # The gateway function's log group (smoke reads its LoggingConfig from the template).
    for stack, _, function in resources(deployment, "AWS::Lambda::Function"):
        if function["Properties"].get("Handler") == GATEWAY_HANDLER:
            logical_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            group = resolver.ref(stack, logical_id)
            log_group = deployment.templates[stack]["Resources"][logical_id]
            calls.append(
                Call(
                    "logs:FilterLogEvents",
                    arn("logs", f"log-group:{group}"),
                    "smoke.check_signals",
                    tagged(log_group),
                )
            )
    for stack, logical_id, resource in resources(deployment, "AWS::DynamoDB::Table"):
        if "GatewayKeys" in logical_id:
            table = arn("dynamodb", f"table/{resolver.ref(stack, logical_id)}")
            calls += [
                Call(action, table, "smoke.run_gateway (genai-stack keys)", tagged(resource))
                for action in ("dynamodb:PutItem", "dynamodb:Scan", "dynamodb:DeleteItem")
            ]
            calls.append(
                Call(
                    "kms:GenerateDataKey",
                    key_arn,
                    "the key table's items",
                    {
                        "kms:ViaService": f"dynamodb.{deployment.region}.amazonaws.com",
                        **tagged(platform_key[1]),
                    },
                )
            )
    region = deployment.region
    calls += [
        Call("cloudwatch:GetMetricStatistics", "*", "smoke.check_signals"),
        Call("autoscaling:DescribeAutoScalingGroups", "*", "smoke.check_hosts"),
        Call("elasticloadbalancing:DescribeTargetHealth", "*", "smoke.check_hosts"),
        Call(
            "apigateway:GET", f"arn:{deployment.partition}:apigateway:{region}::/usageplans", "keys._plan_id"
        ),
        Call("apigateway:POST", f"arn:{deployment.partition}:apigateway:{region}::/apikeys", "keys.create"),
        Call(
            "apigateway:POST",
            f"arn:{deployment.partition}:apigateway:{region}::/usageplans/abc123/keys",
            "keys.create",
        ),
        Call(
            "apigateway:DELETE",
            f"arn:{deployment.partition}:apigateway:{region}::/apikeys/k123",
            "keys.revoke",
        ),
        Call(
            "apigateway:PUT",
            f"arn:{deployment.partition}:apigateway:{region}::/tags/arn%3Aaws%3Aapigateway%3A{region}%3A%3A%2Fapikeys%2Fk123",
            "keys.create: the key's tags",
        ),
    ]
    return calls


def deployment_kb_prefixes(deployment: Deployment) -> list[str]:
    from genai_stack.config import load_profile

    bedrock = load_profile(deployment.profile).bedrock
    return [kb.prefix for kb in bedrock.knowledge_bases] if bedrock else []


def refused(deployment: Deployment) -> list[Call]:
    """What the smoke role must not be allowed."""
    arn = deployment.arn
    other = {"aws:ResourceTag/genai-stack:profile": "another-profile"}
    bucket = f"arn:{deployment.partition}:s3:::{deployment.profile}-foundation-databucket0a1b-x"
    return [
        Call(
            "cloudformation:DescribeStacks",
            arn("cloudformation", "stack/another-profile-foundation/0a1b"),
            "another profile's stack",
            expect="deny",
        ),
        Call(
            "cloudformation:DeleteStack",
            arn("cloudformation", f"stack/{deployment.profile}-foundation/0a1b"),
            "no stack changes",
            expect="deny",
        ),
        Call(
            "cloudwatch:DeleteAlarms",
            arn("cloudwatch", "alarm:someone-elses"),
            "reading alarms is all it may do with them",
            other,
            expect="deny",
        ),
        Call(
            "sagemaker:DescribeEndpoint",
            arn("sagemaker", "endpoint/untagged"),
            "an endpoint without the profile's tag",
            expect="deny",
        ),
        Call(
            "bedrock:Retrieve",
            arn("bedrock", "knowledge-base/OTHERKB123"),
            "another profile's knowledge base",
            other,
            expect="deny",
        ),
        Call(
            "s3:PutObject",
            f"{bucket}/knowledge-bases/faq/handbook.pdf",
            "no document but the test one",
            expect="deny",
        ),
        Call(
            "s3:GetObject",
            f"{bucket}/knowledge-bases/faq/handbook.pdf",
            "no reading the documents",
            expect="deny",
        ),
        Call(
            "s3:DeleteObject",
            f"{bucket}/bedrock-invocation-logs/AWSLogs/x.json.gz",
            "no deleting logs",
            expect="deny",
        ),
        Call(
            "dynamodb:DeleteItem",
            arn("dynamodb", "table/another-keys"),
            "another profile's table",
            other,
            expect="deny",
        ),
        Call(
            "apigateway:DELETE",
            f"arn:{deployment.partition}:apigateway:{deployment.region}::/restapis/abc123",
            "no API changes",
            expect="deny",
        ),
        Call(
            "kms:Decrypt",
            arn("kms", "key/0a1b"),
            "the key directly, not through S3 or DynamoDB",
            {"aws:ResourceTag/genai-stack:profile": deployment.profile},
            expect="deny",
        ),
    ]


@pytest.mark.parametrize("profile", builtin_profile_names())
def test_the_smoke_role_allows_every_smoke_call_and_nothing_else(deployments, profile):
    deployment = deployments[profile]
    policy = policy_for(deployment)
    principal = deployment.arn("iam", f"role/genai-stack-smoke-{profile}", region="")
    calls = smoke_calls(deployment)
    assert len(calls) >= 10
    wrong = []
    for call in [*calls, *refused(deployment)]:
        decision = evaluate(Request(principal, call.action, call.resource, dict(call.context)), [policy])
        if decision.allowed != (call.expect == "allow"):
            wrong.append(f"{call.describe()}: {decision.reason}")
    assert not wrong, "\n".join(wrong)


def test_the_check_depends_on_the_policy_s_statements(deployments):
    """Without its tag-scoped statement the role may read no budget, and without its alarm statement
    no alarm: the rows above are decided by the policy, not by the harness."""
    deployment = deployments["self-hosted"]
    policy = policy_for(deployment)
    principal = deployment.arn("iam", "role/genai-stack-smoke-self-hosted", region="")
    calls = smoke_calls(deployment)
    for sid, action in (
        ("ReadTheProfilesTaggedResources", "budgets:ViewBudget"),
        ("ReadTheAlarmStates", "cloudwatch:DescribeAlarms"),
    ):
        statements = [s for s in policy.document["Statement"] if s["Sid"] != sid]
        reduced = Policy(f"without {sid}", {**policy.document, "Statement": statements})
        chosen = [c for c in calls if c.action == action]
        assert chosen, action
        for call in chosen:
            request = Request(principal, call.action, call.resource, dict(call.context))
            assert evaluate(request, [policy]).allowed
            assert not evaluate(request, [reduced]).allowed
