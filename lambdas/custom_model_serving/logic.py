"""Serving clean-up logic over injected `bedrock` and `stepfunctions` clients (tests pass stubbed ones).

A customization pipeline makes its custom model callable through at most two resources, which
CloudFormation cannot manage: a Provisioned Throughput named `<job prefix>-pt` (a fixed hourly
cost while it exists) and an on-demand custom model deployment named `<job prefix>-on-demand`.
When the stack goes (or the serving mode changes), this module

1. stops the pipeline's running executions, so that none creates serving after the clean-up (a
   stopped `.sync` task also stops its customization job);
2. deletes the Provisioned Throughput and the deployment whose names are exactly the pipeline's.

Names are matched exactly, never by prefix: `<profile>-<name>-` is also the start of the names of
a customization called `<name>-v2`, whose serving is not ours to delete. Everything is idempotent: an
absent resource, or one deleted while we look, counts as removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

# A resource still being created or updated refuses deletion with ConflictException: wait and retry.
CONFLICT_RETRY_SECONDS = 15
NOT_FOUND = frozenset({"ResourceNotFoundException"})
EXECUTION_GONE = frozenset({"ExecutionDoesNotExist"})

Removal = Literal["deleted", "absent"]


class StillBusyError(RuntimeError):
    """A serving resource kept refusing deletion until the deadline; the stack deletion fails and can
    be retried (nothing is left silently running)."""


@dataclass(frozen=True)
class Serving:
    """What one pipeline may have created: its exact resource names and the state machine."""

    state_machine_arn: str
    provisioned_model_name: str
    deployment_name: str


@dataclass
class Outcome:
    stopped_executions: list[str] = field(default_factory=list)
    provisioned_throughput: Removal = "absent"
    deployment: Removal = "absent"


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _pages(call: Callable[..., dict], key: str, **kwargs: Any) -> Iterator[dict]:
    """Every item of a nextToken-paginated list call."""
    token = None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return


def stop_executions(stepfunctions: Any, state_machine_arn: str, *, cause: str) -> list[str]:
    """Stop every RUNNING execution of the state machine; returns the ARNs stopped."""
    stopped = []
    for execution in _pages(
        stepfunctions.list_executions,
        "executions",
        stateMachineArn=state_machine_arn,
        statusFilter="RUNNING",
    ):
        arn = execution["executionArn"]
        try:
            stepfunctions.stop_execution(executionArn=arn, error="StackDeleted", cause=cause)
        except ClientError as error:
            if _code(error) not in EXECUTION_GONE:
                raise
            continue
        stopped.append(arn)
    return stopped


def provisioned_throughput_arns(bedrock: Any, name: str) -> list[str]:
    """ARNs of the Provisioned Throughputs named exactly `name` (nameContains is a substring filter)."""
    return [
        summary["provisionedModelArn"]
        for summary in _pages(
            bedrock.list_provisioned_model_throughputs, "provisionedModelSummaries", nameContains=name
        )
        if summary["provisionedModelName"] == name
    ]


def deployment_arns(bedrock: Any, name: str) -> list[str]:
    """ARNs of the custom model deployments named exactly `name`."""
    return [
        summary["customModelDeploymentArn"]
        for summary in _pages(
            bedrock.list_custom_model_deployments, "modelDeploymentSummaries", nameContains=name
        )
        if summary["customModelDeploymentName"] == name
    ]


def _delete(delete: Callable[[], Any], *, wait: Callable[[], bool], what: str) -> Removal:
    """Call `delete` until it succeeds; not found counts as already deleted, a conflict (still
    creating or updating) is retried while `wait()` says there is time left."""
    while True:
        try:
            delete()
        except ClientError as error:
            code = _code(error)
            if code in NOT_FOUND:
                return "absent"
            if code == "ConflictException":
                if wait():
                    continue
                raise StillBusyError(
                    f"{what} is still being created or updated and refuses deletion; delete the stack again "
                    "in a few minutes (or delete it in the Bedrock console)"
                ) from error
            raise
        return "deleted"


def remove_serving(
    bedrock: Any,
    stepfunctions: Any,
    serving: Serving,
    *,
    wait: Callable[[], bool],
) -> Outcome:
    """Stop the pipeline, then delete its Provisioned Throughput and its on-demand deployment.

    `wait()` sleeps before a retry and returns False once the caller's time is up.
    """
    outcome = Outcome()
    outcome.stopped_executions = stop_executions(
        stepfunctions,
        serving.state_machine_arn,
        cause="The stack of this customization pipeline is being deleted or its serving changed.",
    )
    for arn in provisioned_throughput_arns(bedrock, serving.provisioned_model_name):
        removal = _delete(
            lambda arn=arn: bedrock.delete_provisioned_model_throughput(provisionedModelId=arn),
            wait=wait,
            what=f"Provisioned Throughput {serving.provisioned_model_name} ({arn})",
        )
        if removal == "deleted":
            outcome.provisioned_throughput = "deleted"
    for arn in deployment_arns(bedrock, serving.deployment_name):
        removal = _delete(
            lambda arn=arn: bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn),
            wait=wait,
            what=f"custom model deployment {serving.deployment_name} ({arn})",
        )
        if removal == "deleted":
            outcome.deployment = "deleted"
    return outcome
