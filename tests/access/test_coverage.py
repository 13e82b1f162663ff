"""Every role and every Lambda function of every built-in profile has access rows, or is listed in
ROLES_AWAITING_ROWS (which may only shrink); every boto3 operation our Lambda code calls (found by
reading the code) is declared by its row family and appears in some row."""

from __future__ import annotations

import ast
from pathlib import Path

import botocore.session
from botocore import xform_name

from tests.access.rows import ROLES_AWAITING_ROWS, function_rows, lambda_packages, service_role_rows
from tests.support.image_profile import image_profile_deployment

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def _covered(deployments) -> tuple[set[str], set[str], list[str]]:
    """(role paths with rows, every role path, Lambda functions without rows)."""
    covered, every, functions_without = set(), set(), []
    for deployment in deployments.values():
        for function in deployment.functions:
            if function_rows(function, deployment) is None:
                functions_without.append(f"{function.path} (handler {function.handler})")
            else:
                covered.add(function.role.path)
        for role in deployment.roles.values():
            every.add(role.path)
            if service_role_rows(role, deployment) is not None:
                covered.add(role.path)
    return covered, every, functions_without


def test_every_lambda_function_has_rows(deployments):
    _, _, without = _covered(deployments)
    assert not without, "Lambda functions without access rows:\n" + "\n".join(sorted(without))


def test_every_role_has_rows_or_awaits_them(deployments):
    covered, every, _ = _covered(deployments)
    uncovered = every - covered - ROLES_AWAITING_ROWS
    assert not uncovered, "roles without access rows (add a row family, tests/access/rows/):\n" + "\n".join(
        sorted(uncovered)
    )


def test_the_awaiting_list_only_names_roles_still_without_rows(deployments):
    covered, every, _ = _covered(deployments)
    stale = ROLES_AWAITING_ROWS - (every - covered)
    assert not stale, "remove from ROLES_AWAITING_ROWS (they have rows or no longer exist):\n" + "\n".join(
        sorted(stale)
    )


def test_every_declared_operation_has_a_row(deployments):
    # No built-in profile has a gateway image alias (tests/support/image_profile.py says why): the
    # image calls' rows come from that profile.
    every = [*deployments.values(), image_profile_deployment()]
    seen = {
        (function.package, row.api)
        for deployment in every
        for function in deployment.functions
        for row in function_rows(function, deployment) or []
        if row.api
    }
    missing = [
        f"{package}: {api}"
        for package, module in lambda_packages().items()
        for api in sorted(module.APIS)
        if (package, api) not in seen
    ]
    assert not missing, "operations declared in APIS without an allow row in any profile:\n" + "\n".join(
        missing
    )


def _client_services(tree: ast.AST) -> set[str]:
    """Services named by `boto3.client("svc")` or `client("svc")` calls."""
    services = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "client" and isinstance(node.args[0].value, str):
                services.add(node.args[0].value)
    return services


def static_calls(package_dir: Path) -> set[str]:
    """ "service.Operation" for every method call (or paginator) in the package whose name is an
    operation of a service the package creates a client for (botocore's service models, snake_case)."""
    trees = [ast.parse(path.read_text()) for path in sorted(package_dir.rglob("*.py"))]
    services = set().union(*(_client_services(tree) for tree in trees)) if trees else set()
    session = botocore.session.get_session()
    operations = {}
    for service in services:
        for operation in session.get_service_model(service).operation_names:
            operations.setdefault(xform_name(operation), set()).add(f"{service}.{operation}")
    found = set()
    for tree in trees:
        modules = _imported_modules(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found |= operations.get(node.args[0].value, set())
            if not (isinstance(node, ast.Attribute) and node.attr in operations):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in modules:
                continue  # e.g. re.search: a module's function, not a client method
            found |= operations[node.attr]
    return found


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
    return names


def test_every_boto3_call_in_the_lambda_code_is_declared_by_its_row_family():
    families = lambda_packages()
    problems = []
    for package_dir in sorted(p for p in LAMBDAS.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        calls = static_calls(package_dir)
        if package_dir.name not in families:
            if calls:
                problems.append(f"lambdas/{package_dir.name}: calls {sorted(calls)} but has no row family")
            continue
        declared = families[package_dir.name].APIS
        if calls - declared:
            problems.append(f"lambdas/{package_dir.name}: calls without rows: {sorted(calls - declared)}")
        if declared - calls:
            problems.append(
                f"lambdas/{package_dir.name}: APIS declares calls the code does not make: {sorted(declared - calls)}"
            )
    assert not problems, "\n".join(problems)
