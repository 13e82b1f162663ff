"""Every Lambda function role of every built-in profile, checked against AWS's policy logic: each
row (tests/access/rows/) is one request AWS would evaluate; an allow row must be allowed and a deny
row refused by the synthesized identity policies together with the resource policies (key, bucket,
topic, queue) that apply."""

from __future__ import annotations

import importlib

import pytest

from genai_stack.config import builtin_profile_names
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


@pytest.mark.parametrize("profile", builtin_profile_names())
def test_the_services_that_publish_to_the_encrypted_alarm_topic_can_and_only_they(deployments, profile):
    from tests.access.rows import SERVICE_PRINCIPAL_FAMILIES

    deployment = deployments[profile]
    problems = []
    for name in SERVICE_PRINCIPAL_FAMILIES:
        family = importlib.import_module(f"tests.access.rows.{name}")
        for service, row in family.rows(deployment):
            decision = family.decide(deployment, service, row)
            if decision.allowed != (row.expect == "allow"):
                problems.append(f"  {service}: expected {row.describe()}\n    got: {decision.reason}")
    assert not problems, f"{profile}: {len(problems)} publisher rows fail\n" + "\n".join(problems)
