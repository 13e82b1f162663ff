"""Lambda entry point: "SageMaker Model Package State Change" events in, endpoint deployments out.

The EventBridge rule sends `source: aws.sagemaker`, `detail-type: SageMaker Model Package State Change`.
- An Approved version of a configured group is deployed (logic.deploy) and `ModelDeployed` is
  published (namespace GenAiStack/ModelRegistry, dimension EndpointName) when the endpoint changed.
- Other approval statuses and groups without a deployment are logged and ignored ({"ignored": why}).
- An event without that shape (wrong source/detail-type, missing detail fields) raises ValueError:
  it means a misrouted rule or a hand-made invocation, and must show up as a function error (and in
  the on-failure destination) rather than pass as a silent success.
- EndpointBusyError (endpoint Creating/Updating) propagates, so Lambda's asynchronous retry
  redelivers the event later.

DEPLOYMENTS (validated at cold start) is a JSON list of deployments, one per model package group.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from lambdas.model_deployer.logic import Deployment, deploy

NAMESPACE = "GenAiStack/ModelRegistry"
DETAIL_TYPE = "SageMaker Model Package State Change"
NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"  # SageMaker entity names (endpoint, variant, package group)

logger = Logger(service="model-deployer")


class _Deployment(BaseModel):
    """One DEPLOYMENTS item (becomes a logic.Deployment); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    model_package_group: str = Field(max_length=63, pattern=NAME)
    endpoint_name: str = Field(max_length=63, pattern=NAME)
    execution_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
    instance_type: str = Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
    initial_instance_count: int = Field(ge=1)
    variant_name: str = Field(default="AllTraffic", max_length=63, pattern=NAME)
    kms_key_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/\S+$")
    data_capture_s3_uri: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$"
    )
    data_capture_percentage: int = Field(default=100, ge=1, le=100)
    enable_network_isolation: bool = False
    environment: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _capture_needs_a_destination(self) -> _Deployment:
        if "data_capture_percentage" in self.model_fields_set and not self.data_capture_s3_uri:
            raise ValueError("data_capture_percentage is set but data_capture_s3_uri is not")
        return self


_DEPLOYMENTS = TypeAdapter(list[_Deployment])


def _load_deployments(raw: str | None) -> dict[str, Deployment]:
    """DEPLOYMENTS: a JSON list of deployments; returns them by model package group."""
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
    for key in ("model_package_group", "endpoint_name"):
        values = [getattr(item, key) for item in items]
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise RuntimeError(
                f"environment variable DEPLOYMENTS is not valid: {key} must be unique (one model package "
                f"group per endpoint), repeated: {', '.join(duplicates)}"
            )
    return {item.model_package_group: Deployment(**item.model_dump()) for item in items}


DEPLOYMENTS = _load_deployments(os.environ.get("DEPLOYMENTS"))  # validated at cold start


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


@cache
def sagemaker() -> Any:
    return boto3.client("sagemaker")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        change = _StateChange.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"not a {DETAIL_TYPE} event from aws.sagemaker: {problems}") from None
    detail = change.detail
    logger.append_keys(
        model_package_group=detail.group, model_package_arn=detail.arn, model_package_version=detail.version
    )
    if detail.status != "Approved":
        return _ignored(f"approval status is {detail.status!r}, not 'Approved'", detail.arn)
    deployment = DEPLOYMENTS.get(detail.group)
    if deployment is None:
        return _ignored(f"no deployment is configured for model package group {detail.group!r}", detail.arn)

    result = deploy(sagemaker(), deployment, detail.arn)
    if "ignored" in result:
        return _ignored(result["ignored"], detail.arn)
    logger.info(
        "model deployed" if result["action"] != "unchanged" else "model already deployed", extra=result
    )
    if result["action"] != "unchanged":
        with single_metric(
            name="ModelDeployed", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="EndpointName", value=result["endpoint"])
            metric.add_metadata(key="ModelPackageArn", value=detail.arn)
    return result


def _ignored(reason: str, arn: str) -> dict[str, Any]:
    logger.info("event ignored", extra={"reason": reason})
    return {"ignored": reason, "model_package_arn": arn}
