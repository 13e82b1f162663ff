"""A small evaluator of AWS's documented IAM policy logic, for requests within one account.

Sources (IAM User Guide):
- "Policy evaluation logic" and "Policy evaluation for requests within a single account":
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
  An explicit Deny in any policy wins; otherwise, within one account, an Allow in the identity
  policies OR in the resource policy allows the request; nothing allows by default.
- "How AWS enforcement code logic evaluates requests":
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
- "IAM JSON policy elements: Condition operators" (missing keys, negated operators, ...IfExists, Null,
  multiple values OR, multiple keys and operators AND, ForAnyValue/ForAllValues):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
- "IAM JSON policy elements: Action / Resource" (action names are case-insensitive, resource ARNs
  case-sensitive, `*` and `?` wildcards within each ARN segment):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- KMS: "Key policies in AWS KMS" (without permission from the key policy, IAM policies that allow
  have no effect; the key policy statement for the account root enables IAM policies):
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html

What it does not model raises `UnsupportedPolicy` (policy variables, NotPrincipal, Date/Binary
operators, permission boundaries, SCPs): the harness never guesses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ContextValue = str | bool | int | float | Sequence[str]


class UnsupportedPolicy(ValueError):
    """A policy element or operator this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    """One authorization request as AWS evaluates it."""

    principal: str  # the role ARN (sessions of the role match it in resource policies)
    action: str  # service:Action
    resource: str  # the exact ARN AWS evaluates, or "*" for actions without a resource type
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    @property
    def account(self) -> str:
        """The role's account; "" for an AWS service principal (e.g. `events.amazonaws.com`)."""
        parts = self.principal.split(":")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class Policy:
    """A policy document and where it came from (for messages)."""

    source: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by ...", "explicit deny by ...", "implicit deny: ..."
    matched: tuple[str, ...] = ()

    @property
    def explicit_deny(self) -> bool:
        return self.reason.startswith("explicit deny")


# ---------------------------------------------------------------------------------------------
# Matching helpers
# ---------------------------------------------------------------------------------------------
def _wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """`*` any run of characters, `?` one character; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE | re.DOTALL) is not None


def _no_variables(text: str) -> str:
    if "${" in text:
        raise UnsupportedPolicy(f"policy variables are not supported: {text!r}")
    return text


def action_matches(pattern: str, action: str) -> bool:
    """Action names are case-insensitive; wildcards allowed (IAM "Action" element)."""
    return _wildcard(_no_variables(pattern), action, case_sensitive=False)


def arn_matches(pattern: str, arn: str) -> bool:
    """Resource / ArnLike matching: case-sensitive, each of the six colon-separated ARN segments
    matched separately (the last one, the resource, may itself contain colons)."""
    pattern = _no_variables(pattern)
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return _wildcard(pattern, arn, case_sensitive=True) if len(pattern_parts) != 6 else False
    return all(_wildcard(p, a, case_sensitive=True) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------
def _string(policy: Any, value: Any) -> tuple[str, str]:
    return str(policy), str(value).lower() if isinstance(value, bool) else str(value)


def _number(text: Any) -> float:
    return float(text)


def _bool_text(value: Any) -> str:
    return str(value).lower()


def _ip(policy: Any, value: Any) -> bool:
    return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(policy), strict=False)


# base operator -> (compare(policy_value, context_value) -> bool, negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda p, v: str(p) == _string(p, v)[1], False),
    "StringNotEquals": (lambda p, v: str(p) == _string(p, v)[1], True),
    "StringEqualsIgnoreCase": (lambda p, v: str(p).lower() == _string(p, v)[1].lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: str(p).lower() == _string(p, v)[1].lower(), True),
    "StringLike": (lambda p, v: _wildcard(str(p), _string(p, v)[1], case_sensitive=True), False),
    "StringNotLike": (lambda p, v: _wildcard(str(p), _string(p, v)[1], case_sensitive=True), True),
    "NumericEquals": (lambda p, v: _number(v) == _number(p), False),
    "NumericNotEquals": (lambda p, v: _number(v) == _number(p), True),
    "NumericLessThan": (lambda p, v: _number(v) < _number(p), False),
    "NumericLessThanEquals": (lambda p, v: _number(v) <= _number(p), False),
    "NumericGreaterThan": (lambda p, v: _number(v) > _number(p), False),
    "NumericGreaterThanEquals": (lambda p, v: _number(v) >= _number(p), False),
    "Bool": (lambda p, v: _bool_text(p) == _bool_text(v), False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (lambda p, v: arn_matches(str(p), str(v)), False),
    "ArnLike": (lambda p, v: arn_matches(str(p), str(v)), False),
    "ArnNotEquals": (lambda p, v: arn_matches(str(p), str(v)), True),
    "ArnNotLike": (lambda p, v: arn_matches(str(p), str(v)), True),
}


def _lookup(context: Mapping[str, ContextValue], key: str) -> tuple[bool, list[Any]]:
    """Condition key names are case-insensitive."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return True, _as_list(value)
    return False, []


def _single(compare: Any, negated: bool, policy_values: list[Any], value: Any) -> bool:
    """One context value against the policy's values: any match (OR); negated: no match."""
    matched = any(compare(p, value) for p in policy_values)
    return not matched if negated else matched


def condition_holds(operator: str, key: str, policy_value: Any, context: Mapping[str, ContextValue]) -> bool:
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            raise UnsupportedPolicy(f"unknown set operator {qualifier!r}")
    present, values = _lookup(context, key)
    policy_values = [_no_variables(v) if isinstance(v, str) else v for v in _as_list(policy_value)]

    if operator == "Null":
        if qualifier:
            raise UnsupportedPolicy("Null takes no set operator")
        wanted_absent = [_bool_text(v) == "true" for v in policy_values]
        return any(absent == (not present) for absent in wanted_absent)

    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator!r} is not supported")
    compare, negated = _OPERATORS[base]

    if qualifier == "ForAllValues":
        # True when every value in the request matches; vacuously true for a missing key.
        return all(_single(compare, negated, policy_values, v) for v in values)
    if qualifier == "ForAnyValue":
        return present and any(_single(compare, negated, policy_values, v) for v in values)

    if not present:
        # "If the key ... is not present in the request context, the values do not match and the
        # condition is false. If the policy condition requires that the key is not matched, such as
        # StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
        return True if if_exists else negated
    if len(values) != 1:
        raise UnsupportedPolicy(
            f"{key} has several values in the request; a policy must use ForAnyValue/ForAllValues for it"
        )
    return _single(compare, negated, policy_values, values[0])


def conditions_hold(
    block: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, ContextValue]
) -> bool:
    """Every operator and every key in the block must hold (AND)."""
    for operator, keys in (block or {}).items():
        for key, value in keys.items():
            if not condition_holds(operator, key, value, context):
                return False
    return True


# ---------------------------------------------------------------------------------------------
# Statements and policies
# ---------------------------------------------------------------------------------------------
Effect = Literal["Allow", "Deny"]


UNKNOWN = "UnknownPolicy"  # a document the harness does not know (e.g. an unlisted AWS managed policy)


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if UNKNOWN in document:
        raise UnsupportedPolicy(f"the content of {document[UNKNOWN]} is not known to the harness")
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _principal_match(statement: Mapping[str, Any], request: Request) -> Literal["direct", "account", "none"]:
    """Who a resource-policy statement names: the request's role itself (or everyone: direct), the
    role's account (the account root delegates to the account's IAM policies), or someone else. A
    request by an AWS service principal (its principal is the service name, e.g. `events.amazonaws.com`)
    is matched by a `Service` principal of that name ("AWS JSON policy elements: Principal", AWS
    service principals:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html)."""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal is not supported")
    principal = statement.get("Principal")
    if principal is None:
        raise UnsupportedPolicy("a resource policy statement without Principal")
    if principal == "*":
        return "direct"
    result: Literal["direct", "account", "none"] = "none"
    for kind, names in principal.items():
        for name in _as_list(names):
            if kind == "Service" and name == request.principal:
                return "direct"
            if kind != "AWS":
                continue  # service and federated principals never match a role's request
            if name == "*" or name == request.principal:
                return "direct"
            if name in (request.account, f"arn:aws:iam::{request.account}:root"):
                result = "account"
    return result


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Action/NotAction, Resource/NotResource and Condition all match the request."""
    if "Action" in statement:
        if not any(action_matches(a, request.action) for a in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(a, request.action) for a in _as_list(statement["NotAction"])):
            return False
    else:
        raise UnsupportedPolicy("a statement without Action or NotAction")
    if "Resource" in statement:
        if not any(arn_matches(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(arn_matches(r, request.resource) for r in _as_list(statement["NotResource"])):
            return False
    else:
        raise UnsupportedPolicy("a statement without Resource or NotResource")
    return conditions_hold(statement.get("Condition"), request.context)


def _label(policy: Policy, statement: Mapping[str, Any], index: int) -> str:
    return f"{policy.source}#{statement.get('Sid', index)}"


@dataclass(frozen=True)
class ResourcePolicy:
    """A resource-based policy: `kind` "kms" needs the key policy's permission (key policies are
    the primary way to control access; IAM policies only count if the key policy delegates to the
    account), other kinds (S3 bucket, SNS topic, SQS queue) add to the identity policies."""

    kind: Literal["kms", "s3", "sns", "sqs", "lambda"]
    policy: Policy


def evaluate(
    request: Request, identity: Iterable[Policy], resource: ResourcePolicy | None = None
) -> Decision:
    identity = list(identity)
    allows: list[str] = []
    denies: list[str] = []
    for policy in identity:
        for index, statement in enumerate(_statements(policy.document)):
            if statement_applies(statement, request):
                (denies if statement["Effect"] == "Deny" else allows).append(_label(policy, statement, index))
    resource_direct: list[str] = []
    resource_account: list[str] = []
    if resource is not None:
        for index, statement in enumerate(_statements(resource.policy.document)):
            match = _principal_match(statement, request)
            if match == "none" or not statement_applies(statement, request):
                continue
            label = _label(resource.policy, statement, index)
            if statement["Effect"] == "Deny":
                denies.append(label)
            else:
                (resource_direct if match == "direct" else resource_account).append(label)
    if denies:
        return Decision(False, f"explicit deny by {', '.join(denies)}", tuple(denies))
    if resource is not None and resource.kind == "kms":
        if resource_direct:
            return Decision(
                True, f"allowed by the key policy {', '.join(resource_direct)}", tuple(resource_direct)
            )
        if not resource_account:
            return Decision(
                False, "implicit deny: the key policy neither allows the role nor delegates to IAM"
            )
        if allows:
            matched = tuple(resource_account + allows)
            return Decision(
                True, f"allowed by {', '.join(allows)} (key policy delegates: {resource_account[0]})", matched
            )
        return Decision(
            False, "implicit deny: the key policy delegates to IAM, but no identity policy allows"
        )
    if allows or resource_direct:
        matched = tuple(allows + resource_direct)
        return Decision(True, f"allowed by {', '.join(matched)}", matched)
    return Decision(False, "implicit deny: no statement allows")


__all__ = [
    "Decision",
    "Policy",
    "Request",
    "ResourcePolicy",
    "UnsupportedPolicy",
    "action_matches",
    "arn_matches",
    "condition_holds",
    "evaluate",
]
