"""The role AWS Budgets assumes to run the spend cap's action (stacks/components/spend_cap.py): it
attaches and detaches the cap's deny policy (iam:AttachRolePolicy / iam:DetachRolePolicy on
arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}, condition key iam:PolicyARN: Service
Authorization Reference, IAM) on the roles the action names, and nothing else: no other policy (an
administrator policy would be an escalation) and no other role."""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.service_resources import resources

WHY = "the Budgets action applies the spend cap (AWS::Budgets::BudgetsAction, APPLY_IAM_POLICY)"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    actions = [
        r.properties
        for r in resources(deployment, "AWS::Budgets::BudgetsAction")
        if r.properties["ExecutionRoleArn"] == role.arn
    ]
    if not actions:
        return None
    result: list[Call] = []
    arns = {r.name: r.arn for r in deployment.roles.values()}
    for action in actions:
        definition = action["Definition"]["IamActionDefinition"]
        policy = {"iam:PolicyARN": definition["PolicyArn"]}
        for name in definition["Roles"]:
            for verb in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
                result.append(Call(verb, arns[name], WHY, policy))
                result.append(
                    Call(verb, arns[name], "no other policy", {"iam:PolicyARN": ADMIN}, expect="deny")
                )
        result.append(
            Call(
                "iam:AttachRolePolicy",
                role.arn,
                "not itself, nor any role the action does not name",
                policy,
                expect="deny",
            )
        )
    return result


BUILDERS = (rows,)
