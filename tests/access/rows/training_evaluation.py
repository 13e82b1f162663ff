"""Evaluation step of the training pipeline (lambdas/training_evaluation): it reads the training
job description the state machine passes in and makes no AWS call of its own (handler.py, logic.py);
its role needs only what the Lambda runtime does (rows/lambda_runtime.py)."""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

PACKAGE = "training_evaluation"
HANDLERS = ("lambdas.training_evaluation.handler.on_event",)
APIS: frozenset[str] = frozenset()


def rows(function: Function, deployment: Deployment) -> list[Call]:
    return []
