"""The spend cap (stacks/components/spend_cap.py, `budget.stop_invocations`): when AWS Budgets attaches
its deny policy, every role of the profile that invokes models can invoke none, and keeps every other
call its rows say it makes. Evaluated over the synthesized templates with the access harness
(tests/access/evaluator.py); what the role Budgets acts as may do is in rows/spend_cap_role.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from genai_stack.components.spend_cap import INVOCATION_ACTIONS
from genai_stack.config import builtin_profile_names, load_profile
from tests.access.deployment import Deployment, Role
from tests.access.rows import Call, function_rows, service_role_rows

CAPPED = [name for name in builtin_profile_names() if load_profile(name).budget.stop_invocations is not None]


def action_of(deployment: Deployment) -> tuple[str, dict]:
    (found,) = [
        (stack, resource) for stack, _, resource in deployment._resources("AWS::Budgets::BudgetsAction")
    ]
    return found


def rows_by_role(deployment: Deployment) -> dict[str, tuple[Role, list[Call]]]:
    """Every role with access rows: the functions' roles and the service roles."""
    found = {}
    for function in deployment.functions:
        rows = function_rows(function, deployment)
        if rows:
            found[function.role.name] = (function.role, rows)
    for role in deployment.roles.values():
        rows = service_role_rows(role, deployment)
        if rows:
            found[role.name] = (role, rows)
    return found


def invokes(rows: list[Call]) -> bool:
    return any(row.expect == "allow" and row.action in INVOCATION_ACTIONS for row in rows)


def test_a_built_in_profile_has_the_cap():
    assert {"managed-api", "marketing-copy-apac"} <= set(CAPPED), (
        "managed-api and marketing-copy-apac set budget.stop_invocations: the checks below must run on them"
    )


@pytest.mark.parametrize("profile", CAPPED)
def test_the_action_names_every_role_that_invokes_models_and_no_other(deployments, profile):
    deployment = deployments[profile]
    stack, action = action_of(deployment)
    definition = deployment.resolver.resolve(stack, action["Properties"]["Definition"])["IamActionDefinition"]
    invoking = {name for name, (_, rows) in rows_by_role(deployment).items() if invokes(rows)}
    # The gateway, and each vector knowledge base's service role (its embeddings).
    has_kb = any(
        r["Type"] == "AWS::Bedrock::DataSource"
        for t in deployment.templates.values()
        for r in t["Resources"].values()
    )
    assert len(invoking) >= (2 if has_kb else 1)
    assert set(definition["Roles"]) == invoking


@pytest.mark.parametrize("profile", CAPPED)
def test_the_deny_policy_stops_invocation_and_nothing_else(deployments, profile):
    deployment = deployments[profile]
    stack, action = action_of(deployment)
    definition = deployment.resolver.resolve(stack, action["Properties"]["Definition"])["IamActionDefinition"]
    deny = deployment.managed_policies[definition["PolicyArn"]]
    problems, stopped = [], 0
    for name in definition["Roles"]:
        role, rows = rows_by_role(deployment)[name]
        capped = replace(role, policies=[*role.policies, deny])
        for row in rows:
            if row.expect != "allow":
                continue
            before = deployment.decide(role, row.action, row.resource, row.context)
            after = deployment.decide(capped, row.action, row.resource, row.context)
            assert before.allowed, f"{role.path}: {row.describe()} fails before the cap: {before.reason}"
            if row.action in INVOCATION_ACTIONS:
                stopped += 1
                if after.allowed:
                    problems.append(f"{role.path}: still allowed after the cap: {row.describe()}")
            elif not after.allowed:
                problems.append(
                    f"{role.path}: refused by the cap, which should not touch it: {row.describe()}"
                )
    assert stopped > 0
    assert not problems, "\n".join(problems)
