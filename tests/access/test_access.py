"""Every Lambda function role of every built-in profile, checked against AWS's policy logic: each
row (tests/access/rows/) is one request AWS would evaluate; an allow row must be allowed and a deny
row refused by the synthesized identity policies together with the resource policies (key, bucket,
topic, queue) that apply."""

from __future__ import annotations

import pytest

from stacks.config import builtin_profile_names
from tests.access.deployment import Deployment, Role
from tests.access.rows import Call, function_rows, service_role_rows


def mismatches(deployment: Deployment, role: Role, rows: list[Call]) -> list[str]:
    problems = []
    for row in rows:
        decision = deployment.decide(role, row.action, row.resource, row.context)
        if decision.allowed != (row.expect == "allow"):
            problems.append(f"  {role.path}: expected {row.describe()}\n    got: {decision.reason}")
    return problems


@pytest.mark.parametrize("profile", builtin_profile_names())
def test_lambda_roles_can_make_their_calls_and_only_those(deployments, profile):
    deployment = deployments[profile]
    problems = []
    for function in deployment.functions:
        rows = function_rows(function, deployment)
        if rows is not None:
            problems += mismatches(deployment, function.role, rows)
    assert not problems, f"{profile}: {len(problems)} access rows fail\n" + "\n".join(problems)


@pytest.mark.parametrize("profile", builtin_profile_names())
def test_service_roles_can_make_their_calls_and_only_those(deployments, profile):
    deployment = deployments[profile]
    problems = []
    for role in deployment.roles.values():
        rows = service_role_rows(role, deployment)
        if rows is not None:
            problems += mismatches(deployment, role, rows)
    assert not problems, f"{profile}: {len(problems)} access rows fail\n" + "\n".join(problems)
