"""Access rows: for every role, the calls it must be able to make (and some it must not), as data.

A row is one authorization request as AWS evaluates it: the IAM action, the exact resource ARN
(built from AWS's ARN format and the resolved *name* of the resource, never from the attribute the
code happened to grant), the request context keys the service sends, what must happen (allow or
deny) and why (the AWS page or the line of our code that makes the call).

Row families: one module per kind of role. A Lambda function's role gets the rows of the Lambda
runtime (logs, VPC network interfaces, failure destinations) plus the rows of its code: the family
is chosen by the function's handler (`lambdas.<package>.handler.<fn>` -> `rows/<package>.py`, the
CDK provider framework and CDK's own custom-resource handlers -> `rows/cdk_provider.py`).
Service roles (Bedrock knowledge bases, SageMaker, Step Functions, EC2 hosts, delivery roles) get
`SERVICE_ROLE_FAMILIES` entries: a function from (role, deployment) to rows, or None when the role
is not of that family. Until a family covers a role, its construct path stays in
`ROLES_AWAITING_ROWS`, which the coverage test reads (and which must only shrink).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.access.deployment import Deployment, Function, Role


def request_tag_context(tags: Mapping[str, str]) -> dict[str, object]:
    """The condition keys of a request that creates a resource with `tags`."""
    if not tags:
        return {}
    return {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": sorted(tags)}


def resource_tag_context(tags: Mapping[str, str]) -> dict[str, str]:
    """The condition keys of a request on a resource that carries `tags`."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def customization_tags(deployment: Deployment) -> dict[str, str]:
    """The tags the profile's Bedrock customizations put on what they create: the cost-allocation tag
    (which 0.1 put there too) and the profile's own (stacks/training_stack.py)."""
    from genai_stack.config import PROFILE_TAG, load_profile

    if deployment.cost_tag is not None:
        key, value = deployment.cost_tag
    else:
        allocation = load_profile(deployment.profile).cost_allocation
        key, value = allocation.tag_key, allocation.tag_value
    return {key: value, PROFILE_TAG: deployment.profile}


@dataclass(frozen=True)
class Call:
    """One request a role makes (or must be refused)."""

    action: str
    resource: str
    why: str
    context: Mapping[str, Any] = field(default_factory=dict)
    expect: Literal["allow", "deny"] = "allow"
    # The boto3 operation this request authorizes, as "<service>.<Operation>" (botocore's names),
    # so the calls the Lambda tests record can be matched to rows. None for what the runtime does.
    api: str | None = None

    def describe(self) -> str:
        context = f" with {dict(self.context)}" if self.context else ""
        return f"{self.expect} {self.action} on {self.resource}{context} ({self.why})"


RowBuilder = Callable[["Function", "Deployment"], list[Call]]
ServiceRoleBuilder = Callable[["Role", "Deployment"], "list[Call] | None"]


# The row families of Lambda functions, one module of tests/access/rows each.
FUNCTION_FAMILIES = (
    "assistant_fulfilment",
    "cdk_provider",
    "custom_model_deployment",
    "custom_model_serving",
    "drift_monitor",
    "evaluation",
    "evidence_copy",
    "gateway",
    "gateway_authorizer",
    "guardrail_window",
    "image_batch",
    "invocation_logging",
    "kb_ingestion",
    "login_rotation",
    "model_deployer",
    "pgvector_schema",
    "training_evaluation",
)


def _families() -> dict[str, ModuleType]:
    modules = [importlib.import_module(f"tests.access.rows.{name}") for name in FUNCTION_FAMILIES]
    return {handler: module for module in modules for handler in module.HANDLERS}


def family_of(function: Function) -> ModuleType | None:
    """The row module for a function, by its handler (None: no rows yet)."""
    return _families().get(function.handler)


def lambda_packages() -> dict[str, ModuleType]:
    """Row modules of our own Lambda packages (lambdas/<package>), by package."""
    return {module.PACKAGE: module for module in _families().values() if getattr(module, "PACKAGE", None)}


def function_rows(function: Function, deployment: Deployment) -> list[Call] | None:
    from tests.access.rows import lambda_runtime

    family = family_of(function)
    if family is None:
        return None
    return lambda_runtime.rows(
        function, deployment, own_code=bool(getattr(family, "PACKAGE", None))
    ) + family.rows(function, deployment)


# Service-role families: one module per family (tests/access/rows/<module>.py), each with BUILDERS,
# functions from (role, deployment) to rows, or None when the role is not of that family. A role
# covered here must leave ROLES_AWAITING_ROWS.
SERVICE_ROLE_FAMILIES: tuple[str, ...] = (
    "knowledge_base_role",
    "log_delivery_roles",
    "sagemaker_roles",
    "bedrock_customization_role",
    "model_host_role",
    "autoscaling_roles",
    "autoscaling_service_linked_role",
    "state_machine_roles",
    "spend_cap_role",
    "evaluation_role",
    "lex_bot_role",
)


def service_role_builders() -> list[ServiceRoleBuilder]:
    return [
        builder
        for name in SERVICE_ROLE_FAMILIES
        for builder in import_module(f"tests.access.rows.{name}").BUILDERS
    ]


def service_role_rows(role: Role, deployment: Deployment) -> list[Call] | None:
    for builder in service_role_builders():
        rows = builder(role, deployment)
        if rows is not None:
            return rows
    return None


# Families whose requester is an AWS service principal, not a role (only resource policies decide):
# each module has `rows(deployment) -> [(service principal, Call)]` and `decide(deployment, service,
# call)`; test_access.py checks them for every profile.
SERVICE_PRINCIPAL_FAMILIES: tuple[str, ...] = ("topic_publishers",)


# Roles that have no rows yet, by construct path (metadata aws:cdk:path). The coverage test fails
# for a role without rows that is not listed here, and for a listed role that now has rows.
ROLES_AWAITING_ROWS: frozenset[str] = frozenset()


def sagemaker_tagged_create(
    action: str, resource: str, tags: Mapping[str, str], why: str, api: str | None = None
) -> list[Call]:
    """A SageMaker create with `tags` and its tag-on-create (sagemaker:AddTags with TaggingAction naming
    the create); with tags, also the same create refused without them or with a key of its own, and
    AddTags refused outside the create."""
    requested = request_tag_context(tags)
    rows = [Call(action, resource, why, context=requested, api=api)]
    if not tags:
        return rows
    extra = request_tag_context({**tags, "owner": "someone-else"})
    return [
        *rows,
        Call(
            "sagemaker:AddTags",
            resource,
            f"{why}: its Tags (tag-on-create)",
            context={**requested, "sagemaker:TaggingAction": action.split(":", 1)[1]},
            api=api,
        ),
        Call(action, resource, "not without the tags", expect="deny"),
        Call(action, resource, "not with a tag of its own", context=extra, expect="deny"),
        Call(
            "sagemaker:AddTags",
            resource,
            "no tagging outside the create",
            context={**requested, "sagemaker:TaggingAction": "AddTags"},
            expect="deny",
        ),
    ]
