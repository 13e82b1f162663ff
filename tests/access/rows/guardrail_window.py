"""Guardrail version window custom resource (lambdas/guardrail_window): computes the current and
previous guardrail versions from the request's properties and makes no AWS call (handler.py,
logic.py); its role needs only what the Lambda runtime does (rows/lambda_runtime.py)."""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

PACKAGE = "guardrail_window"
HANDLERS = ("lambdas.guardrail_window.handler.on_event",)
APIS: frozenset[str] = frozenset()


def rows(function: Function, deployment: Deployment) -> list[Call]:
    return []
