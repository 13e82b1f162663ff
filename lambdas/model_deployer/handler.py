"""Lambda entry point: approvals from the deployer's queue in, endpoint rollouts out.

An EventBridge rule puts each "SageMaker Model Package State Change" event (`source: aws.sagemaker`)
of an approved version into an SQS queue; an event source mapping hands them over one at a time, as
SQS messages whose body is the event.
- An Approved version of a configured group is deployed to each endpoint the group is deployed to
  (logic.deploy_each) and `ModelDeployed` is published (namespace GenAiStack/ModelRegistry, dimension
  EndpointName) for each endpoint that changed. While any of them is busy the approval waits (below)
  and is tried again on all of them (those already rolled are "unchanged"); a failure of one endpoint
  sends it to the dead-letter queue once no endpoint waits, after the others were rolled.
- Other approval statuses and groups without a deployment are logged and ignored ({"ignored": why}).
- UpdateEndpoint only starts a rollout, so `ModelDeployed` counts rollouts started. Its outcome comes
  back through the same queue as a "SageMaker Endpoint State Change" event of the endpoint (a second
  rule): a failed or rolled-back update (logic.rollout_failure) publishes `RolloutFailed` (same
  namespace and dimension), which an alarm watches (stacks/components/model_deployment.py), and is
  logged with SageMaker's FailureReason; other states are logged only.
- EndpointBusyError (the endpoint is Creating/Updating, e.g. a rollout of up to 30 minutes or more):
  the message is reported as a batch item failure, so it stays in the queue and comes back when the
  queue's visibility timeout runs out ("After your queue's visibility timeout runs out, the message
  will again reappear in the queue", Lambda developer guide, "Handling errors for an SQS event source in
  Lambda": https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). It is tried
  again until the endpoint is free; the queue's redrive policy (maxReceiveCount) moves it to the
  dead-letter queue after about six hours of waiting. Each attempt re-checks that the version is still
  the group's latest approved one, so a later approval supersedes a waiting one.
- Anything else (an event without the expected shape, a refused request, a missing endpoint) will not
  succeed by waiting: the message goes to the dead-letter queue at once, with the error as a message
  attribute, and is removed from the queue. The dead-letter queue's depth is alarmed.

Environment (validated at cold start): DEPLOYMENTS, a JSON list of deployments, one per endpoint (a
model package group may have several); DEAD_LETTER_QUEUE_URL, the dead-letter queue.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .logic import Deployment, EndpointBusyError, deploy_each, rollout_failure

NAMESPACE = "GenAiStack/ModelRegistry"
DETAIL_TYPE = "SageMaker Model Package State Change"
ENDPOINT_DETAIL_TYPE = "SageMaker Endpoint State Change"
NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"  # SageMaker entity names (endpoint, variant, package group)

logger = Logger(service="model-deployer")


class _Deployment(BaseModel):
    """One DEPLOYMENTS item (becomes a logic.Deployment); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    model_package_group: str = Field(max_length=63, pattern=NAME)
    endpoint_name: str = Field(max_length=63, pattern=NAME)
    execution_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
    enable_network_isolation: bool = False
    environment: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


_DEPLOYMENTS = TypeAdapter(list[_Deployment])


def _load_deployments(raw: str | None) -> dict[str, tuple[Deployment, ...]]:
    """DEPLOYMENTS: a JSON list of deployments; returns them by model package group (a group may be
    deployed to several endpoints; an endpoint serves one group)."""
    if not raw:
        raise RuntimeError("environment variable DEPLOYMENTS is not set")
    try:
        items = _DEPLOYMENTS.validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"DEPLOYMENTS{''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in e['loc'])}: {e['msg']}"
            for e in error.errors()
        )
        raise RuntimeError(f"environment variable DEPLOYMENTS is not valid: {problems}") from None
    if not items:
        raise RuntimeError("environment variable DEPLOYMENTS is not valid: it lists no deployment")
    values = [item.endpoint_name for item in items]
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise RuntimeError(
            "environment variable DEPLOYMENTS is not valid: endpoint_name must be unique (one model "
            f"package group per endpoint), repeated: {', '.join(duplicates)}"
        )
    by_group: dict[str, list[Deployment]] = {}
    for item in items:
        by_group.setdefault(item.model_package_group, []).append(Deployment(**item.model_dump()))
    return {group: tuple(deployments) for group, deployments in by_group.items()}


def _load_queue_url(raw: str | None) -> str:
    if not raw or not re.match(r"^https?://[^/\s]+/\d{12}/[\w-]{1,80}$", raw):
        raise RuntimeError(f"environment variable DEAD_LETTER_QUEUE_URL is not an SQS queue URL: {raw!r}")
    return raw


DEPLOYMENTS = _load_deployments(os.environ.get("DEPLOYMENTS"))  # validated at cold start
DEAD_LETTER_QUEUE_URL = _load_queue_url(os.environ.get("DEAD_LETTER_QUEUE_URL"))


class _Detail(BaseModel):
    """The detail fields used; the version is logged, the package description is authoritative."""

    group: str = Field(alias="ModelPackageGroupName", min_length=1)
    arn: str = Field(
        alias="ModelPackageArn", pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/"
    )
    status: str = Field(alias="ModelApprovalStatus", min_length=1)
    version: int | None = Field(default=None, alias="ModelPackageVersion")


class _StateChange(BaseModel):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    detail: _Detail


class _EndpointDetail(BaseModel):
    """The fields of an endpoint state change that tell a rollout's outcome (DescribeEndpoint's names)."""

    endpoint: str = Field(alias="EndpointName", pattern=NAME, max_length=63)
    status: str = Field(alias="EndpointStatus", min_length=1)
    config: str | None = Field(default=None, alias="EndpointConfigName")
    reason: str | None = Field(default=None, alias="FailureReason")


class _EndpointStateChange(BaseModel):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Endpoint State Change"] = Field(alias="detail-type")
    detail: _EndpointDetail


@cache
def sagemaker() -> Any:
    return boto3.client("sagemaker")


@cache
def sqs() -> Any:
    return boto3.client("sqs")


processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch in (one approval per message), {"batchItemFailures": [...]} out: the approvals that
    wait for a busy endpoint."""
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)


def _record(record: SQSRecord) -> dict[str, Any]:
    logger.append_keys(
        message_id=record.message_id, receive_count=record.attributes.approximate_receive_count
    )
    try:
        if _detail_type(record.body) == ENDPOINT_DETAIL_TYPE:
            return endpoint_state(record.body)
        return approval(record.body)
    except EndpointBusyError as error:
        logger.info("endpoint busy: the approval waits in the queue", extra={"reason": str(error)})
        raise
    except Exception as error:  # every other failure: to the dead-letter queue at once
        logger.exception("deployment failed: the approval goes to the dead-letter queue")
        sqs().send_message(
            QueueUrl=DEAD_LETTER_QUEUE_URL,
            MessageBody=record.body,
            MessageAttributes={
                "Error": {"DataType": "String", "StringValue": str(error)[:4000] or repr(error)}
            },
        )
        return {"dead_lettered": str(error)}


def _detail_type(body: str) -> str | None:
    try:
        event = json.loads(body)
    except ValueError:
        return None  # approval() reports it
    return event.get("detail-type") if isinstance(event, dict) else None


def endpoint_state(body: str) -> dict[str, Any]:
    """One endpoint state change (the message body): a failed or rolled-back update publishes
    RolloutFailed for the endpoint; any other state is logged."""
    try:
        change = _EndpointStateChange.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"not a {ENDPOINT_DETAIL_TYPE} event from aws.sagemaker: {problems}") from None
    detail = change.detail
    logger.append_keys(endpoint=detail.endpoint, endpoint_status=detail.status, endpoint_config=detail.config)
    failure = rollout_failure(detail.status, detail.reason)
    if failure is None:
        logger.info("endpoint state changed")
        return {"endpoint": detail.endpoint, "status": detail.status}
    logger.error("endpoint rollout failed", extra={"failure": failure})
    with single_metric(name="RolloutFailed", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="EndpointName", value=detail.endpoint)
        metric.add_metadata(key="FailureReason", value=detail.reason or "")
    return {"endpoint": detail.endpoint, "status": detail.status, "failure": failure}


def approval(body: str) -> dict[str, Any]:
    """One approval event (the message body): validated, then deployed or ignored."""
    try:
        change = _StateChange.model_validate(json.loads(body))
    except (ValidationError, ValueError) as error:
        problems = (
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
            if isinstance(error, ValidationError)
            else f"not JSON ({error})"
        )
        raise ValueError(f"not a {DETAIL_TYPE} event from aws.sagemaker: {problems}") from None
    detail = change.detail
    logger.append_keys(
        model_package_group=detail.group, model_package_arn=detail.arn, model_package_version=detail.version
    )
    if detail.status != "Approved":
        return _ignored(f"approval status is {detail.status!r}, not 'Approved'", detail.arn)
    deployments = DEPLOYMENTS.get(detail.group)
    if deployments is None:
        return _ignored(f"no deployment is configured for model package group {detail.group!r}", detail.arn)

    results, busy, failures = deploy_each(sagemaker(), deployments, detail.arn)
    if results and "ignored" in results[0]:
        return _ignored(results[0]["ignored"], detail.arn)
    for result in results:
        # "updated": the rollout has started; its outcome arrives as an endpoint state change
        # (endpoint_state).
        logger.info(
            "model deployed" if result["action"] != "unchanged" else "model already deployed", extra=result
        )
        if result["action"] != "unchanged":
            with single_metric(
                name="ModelDeployed", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
            ) as metric:
                metric.add_dimension(name="EndpointName", value=result["endpoint"])
                metric.add_metadata(key="ModelPackageArn", value=detail.arn)
    # A busy endpoint keeps the approval in the queue (the endpoints done are "unchanged" next time);
    # only when no endpoint waits does a refusal send it to the dead-letter queue.
    if busy:
        raise EndpointBusyError("; ".join(busy))
    if failures:
        raise RuntimeError("; ".join(failures))
    return results[0] if len(results) == 1 else {"deployments": results}


def _ignored(reason: str, arn: str) -> dict[str, Any]:
    logger.info("event ignored", extra={"reason": reason})
    return {"ignored": reason, "model_package_arn": arn}
