"""Every row names a real IAM action, a resource in one of the ARN formats AWS lists for that action,
and condition keys AWS documents for it: checked against policy_sentry's copy of the Service
Authorization Reference ("Actions, resources, and condition keys for AWS services":
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
A `bedrock:Converse` (not an action) or an ARN in the wrong shape fails here."""

from __future__ import annotations

import re
from functools import cache

from policy_sentry.querying.actions import get_action_data

from tests.access.rows import function_rows, service_role_rows

# Rows whose resource is "*" although the tables list a resource type, with the reason.
STAR_ALLOWED = {
    # The request names a package group, not a package; the tables list only model-package.
    "sagemaker:ListModelPackages": "ListModelPackages names a group, not one package",
}


@cache
def _entries(action: str) -> list[dict]:
    service, name = action.split(":", 1)
    return get_action_data(service, name).get(service, [])


def _pattern(arn_format: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", arn_format)
    return re.compile("".join(".+" if p.startswith("${") else re.escape(p) for p in parts) + "$")


def _key_known(key: str, documented: set[str]) -> bool:
    if key.lower().startswith("aws:"):
        return True  # global condition keys
    return any(_pattern(d).match(key) or d.lower() == key.lower() for d in documented)


def test_rows_use_real_actions_arn_formats_and_condition_keys(deployments):
    problems = []
    for profile, deployment in deployments.items():
        subjects = [(f.path, function_rows(f, deployment)) for f in deployment.functions] + [
            (role.path, service_role_rows(role, deployment)) for role in deployment.roles.values()
        ]
        for path, rows in subjects:
            for row in rows or []:
                entries = _entries(row.action)
                where = f"{profile} {path}: {row.action} on {row.resource}"
                if not entries:
                    problems.append(f"{where}: not an IAM action")
                    continue
                formats = [e["resource_arn_format"] for e in entries]
                if row.resource == "*":
                    if "*" not in formats and row.action not in STAR_ALLOWED:
                        problems.append(f"{where}: the action has resource types {formats}")
                elif not any(f != "*" and _pattern(f).match(row.resource) for f in formats):
                    problems.append(f"{where}: matches none of {formats}")
                documented = {key for e in entries for key in e["condition_keys"]}
                unknown = [key for key in row.context if not _key_known(key, documented)]
                if unknown:
                    problems.append(f"{where}: condition keys {unknown} are not documented for it")
    assert not problems, "\n".join(problems)
