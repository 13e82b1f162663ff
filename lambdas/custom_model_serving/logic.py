"""Serving clean-up logic over injected `bedrock` and `stepfunctions` clients (tests pass stubbed ones).

A customization pipeline makes its custom model callable through at most one of two resources, which
CloudFormation cannot manage: a Provisioned Throughput named `<job prefix>-pt` (serving `provisioned`,
a fixed hourly cost while it exists) or an on-demand custom model deployment named
`<job prefix>-on-demand` (serving `on_demand`). The custom resource's physical ID records the serving
mode it registered, and a Delete removes only what that mode owns:

1. it stops the pipeline's running executions whose definition serves that mode (they would create
   the serving again after the clean-up; a stopped `.sync` task also stops its customization job);
2. it deletes the serving resource of that mode whose name is exactly the pipeline's.

Why by mode: CloudFormation sends a Delete for the *old* physical ID once an Update returned a new one,
and that includes the rollback of an Update (CloudFormation user guide, "Update request for
CloudFormation custom resources" and "Delete request": a different PhysicalResourceId is a replacement,
and the old one gets a Delete at cleanup;
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html). A
switch from provisioned to on_demand that rolls back ends with a Delete of the on_demand ID while the
Provisioned Throughput is the serving in use again: deleting "everything of the pipeline" there would
remove the live throughput and stop the runs of the restored definition.

Names are matched exactly, never by prefix: `<profile>-<name>-` is also the start of the names of
a customization called `<name>-v2`, whose serving is not ours to delete. Everything is idempotent: an
absent resource, or one deleted while we look, counts as removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

# A resource still being created or updated refuses deletion with ConflictException: wait and retry.
CONFLICT_RETRY_SECONDS = 15
NOT_FOUND = frozenset({"ResourceNotFoundException"})
EXECUTION_GONE = frozenset({"ExecutionDoesNotExist"})

Mode = Literal["none", "on_demand", "provisioned"]
MODES: tuple[Mode, ...] = ("none", "on_demand", "provisioned")
Removal = Literal["deleted", "absent", "kept"]


class StillBusyError(RuntimeError):
    """A serving resource kept refusing deletion until the deadline; the stack deletion fails and can
    be retried (nothing is left silently running)."""


@dataclass(frozen=True)
class Serving:
    """What one pipeline may have created: its exact resource names and the state machine."""

    state_machine_arn: str
    provisioned_model_name: str
    deployment_name: str

    def mode_of(self, definition: str) -> Mode:
        """The serving mode an Amazon States Language definition of this pipeline serves: the one whose
        resource name appears as a whole string value in it (a parameter of a task), else `none`."""
        strings = set(_strings(json.loads(definition)))
        if self.provisioned_model_name in strings:
            return "provisioned"
        if self.deployment_name in strings:
            return "on_demand"
        return "none"


@dataclass
class Outcome:
    stopped_executions: list[str] = field(default_factory=list)
    provisioned_throughput: Removal = "kept"
    deployment: Removal = "kept"


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


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


def stop_executions(
    stepfunctions: Any,
    state_machine_arn: str,
    *,
    cause: str,
    owned: Callable[[str], bool] = lambda definition: True,
) -> list[str]:
    """Stop every RUNNING execution of the state machine whose definition `owned` accepts; returns the
    ARNs stopped. An execution runs the definition it started with, which DescribeStateMachineForExecution
    returns (Step Functions API reference, DescribeStateMachineForExecution:
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachineForExecution.html)."""
    stopped = []
    for execution in _pages(
        stepfunctions.list_executions,
        "executions",
        stateMachineArn=state_machine_arn,
        statusFilter="RUNNING",
    ):
        arn = execution["executionArn"]
        try:
            definition = stepfunctions.describe_state_machine_for_execution(executionArn=arn)["definition"]
            if not owned(definition):
                continue
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


def _remove_all(
    arns: list[str], delete: Callable[[str], Any], *, wait: Callable[[], bool], what: str
) -> Removal:
    removal: Removal = "absent"
    for arn in arns:
        if _delete(lambda arn=arn: delete(arn), wait=wait, what=f"{what} ({arn})") == "deleted":
            removal = "deleted"
    return removal


def remove_serving(
    bedrock: Any,
    stepfunctions: Any,
    serving: Serving,
    *,
    mode: Mode,
    wait: Callable[[], bool],
) -> Outcome:
    """Stop the pipeline's executions that serve `mode`, then delete the serving resource of `mode`
    (none for `none`). The other mode's resource is never looked at: it is not this registration's.

    `wait()` sleeps before a retry and returns False once the caller's time is up.
    """
    outcome = Outcome()
    outcome.stopped_executions = stop_executions(
        stepfunctions,
        serving.state_machine_arn,
        cause=f"The stack of this customization pipeline is being deleted or its serving ({mode}) changed.",
        owned=lambda definition: serving.mode_of(definition) == mode,
    )
    if mode == "provisioned":
        outcome.provisioned_throughput = _remove_all(
            provisioned_throughput_arns(bedrock, serving.provisioned_model_name),
            lambda arn: bedrock.delete_provisioned_model_throughput(provisionedModelId=arn),
            wait=wait,
            what=f"Provisioned Throughput {serving.provisioned_model_name}",
        )
    elif mode == "on_demand":
        outcome.deployment = _remove_all(
            deployment_arns(bedrock, serving.deployment_name),
            lambda arn: bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn),
            wait=wait,
            what=f"custom model deployment {serving.deployment_name}",
        )
    return outcome
