"""Lambda entry point: an EventBridge schedule in, drift metrics of the last window out (logic.run).

The scheduled event's `time` is the run's clock (the window is the `DRIFT_WINDOW_HOURS` whole hours
before it), so a retried invocation analyses the same window. Any other event is refused: the function
has one trigger.

Metrics go to CloudWatch with PutMetricData (namespace `DRIFT_NAMESPACE`, dimensions Profile, Source,
Target) rather than as embedded metric format through Powertools: Powertools adds a `service`
dimension to every EMF metric, and the stack's alarms name their exact dimension set.

Environment (validated at cold start): DRIFT_TARGETS (JSON list of targets), DRIFT_PROFILE,
DRIFT_NAMESPACE, DRIFT_WINDOW_HOURS, DRIFT_MIN_RECORDS.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .logic import Target, run

logger = Logger(service="drift-monitor")


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    source: Literal["sagemaker", "bedrock"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(min_length=1, pattern=r"/$")
    baseline_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    baseline_key: str = Field(min_length=1)


class _Settings(BaseModel):
    targets: list[_Target] = Field(min_length=1)
    profile: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    window_hours: int = Field(ge=1, le=24)
    min_records: int = Field(ge=1)


def _load_settings(environ: dict[str, str]) -> _Settings:
    try:
        return _Settings(
            targets=TypeAdapter(list[_Target]).validate_json(environ.get("DRIFT_TARGETS", "")),
            profile=environ.get("DRIFT_PROFILE", ""),
            namespace=environ.get("DRIFT_NAMESPACE", ""),
            window_hours=environ.get("DRIFT_WINDOW_HOURS", ""),
            min_records=environ.get("DRIFT_MIN_RECORDS", ""),
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise RuntimeError(f"drift monitor environment is not valid: {problems}") from None


SETTINGS = _load_settings(dict(os.environ))  # validated at cold start
TARGETS = [Target(**t.model_dump()) for t in SETTINGS.targets]


class _ScheduledEvent(BaseModel):
    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    time: datetime


@cache
def s3() -> Any:
    return boto3.client("s3")


@cache
def cloudwatch() -> Any:
    return boto3.client("cloudwatch")


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        scheduled = _ScheduledEvent.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"not a scheduled drift run: {problems}") from None
    now = scheduled.time if scheduled.time.tzinfo else scheduled.time.replace(tzinfo=UTC)
    summary = run(
        s3(),
        cloudwatch(),
        TARGETS,
        now=now,
        window_hours=SETTINGS.window_hours,
        min_records=SETTINGS.min_records,
        profile=SETTINGS.profile,
        namespace=SETTINGS.namespace,
    )
    logger.info("drift window analysed", extra=summary)
    return summary
