"""Lambda entry point: EventBridge events in, Bedrock ingestion jobs and a failure metric out.

Events:
- `{"action": "ingest", "knowledge_base": NAME}` (that knowledge base's schedule; without the name:
  every knowledge base): start ingestion jobs;
- an S3 `Object Created` / `Object Deleted` event from the data bucket: start a job for the
  knowledge bases whose prefix holds the object;
- `{"action": "check"}` (every 15 minutes): publish `IngestionJobFailed` (1 when the latest job of a
  knowledge base ended FAILED, else 0) per knowledge base; the stack alarms on it.

Before a job starts on a knowledge base whose vectors live in Aurora (its KNOWLEDGE_BASES entry has
a `database`), the cluster is woken from auto-pause (logic.wake_database, retried until shortly
before this invocation times out); if it does not answer in time the invocation fails and the event
is retried (EventBridge target retries, Lambda asynchronous retries).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import (
    AuroraDatabase,
    KnowledgeBaseTarget,
    latest_job_failed,
    start_ingestion,
    targets_for_key,
    wake_database,
)

NAMESPACE = "GenAiStack/KnowledgeBases"
S3_EVENTS = {"Object Created", "Object Deleted"}

# Stop waiting for a paused cluster this long before Lambda's own timeout, to fail with a clear error.
SAFETY_MARGIN_SECONDS = 5.0

logger = Logger(service="kb-ingestion")


class _Database(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster_arn: str = Field(pattern=r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:.+$")
    secret_arn: str = Field(pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
    database: str = Field(min_length=1)


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    knowledge_base_id: str = Field(min_length=1)
    data_source_id: str = Field(min_length=1)
    prefix: str = Field(min_length=1)
    database: _Database | None = None


def _load_targets(raw: str | None) -> list[KnowledgeBaseTarget]:
    """KNOWLEDGE_BASES: a JSON list of {name, knowledge_base_id, data_source_id, prefix, database?}
    where database is {cluster_arn, secret_arn, database} for a knowledge base on Aurora."""
    if not raw:
        raise RuntimeError("environment variable KNOWLEDGE_BASES is not set")
    try:
        items = [_Target.model_validate(item) for item in json.loads(raw)]
    except (ValueError, TypeError, ValidationError) as error:
        raise RuntimeError(f"environment variable KNOWLEDGE_BASES is not valid: {error}") from None
    return [
        KnowledgeBaseTarget(
            **item.model_dump(exclude={"database"}),
            database=AuroraDatabase(**item.database.model_dump()) if item.database else None,
        )
        for item in items
    ]


TARGETS = _load_targets(os.environ.get("KNOWLEDGE_BASES"))  # validated at cold start


@cache
def bedrock_agent() -> Any:
    return boto3.client("bedrock-agent")


@cache
def rds_data() -> Any:
    return boto3.client("rds-data")


def _wake(targets: list[KnowledgeBaseTarget], context: Any) -> None:
    """Wake each Aurora store of `targets` once, within this invocation's time."""

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS

    for database in dict.fromkeys(t.database for t in targets if t.database is not None):
        attempts = wake_database(rds_data(), database, time_left=time_left)
        logger.info("vector store awake", extra={"cluster": database.cluster_arn, "attempts": attempts})


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = bedrock_agent()
    if event.get("source") == "aws.s3" and event.get("detail-type") in S3_EVENTS:
        key = event.get("detail", {}).get("object", {}).get("key", "")
        targets = targets_for_key(TARGETS, key)
        _wake(targets, context)
        started = {
            t.name: start_ingestion(
                client, t, reason=f"{event['detail-type']}: {key}", event_id=event.get("id")
            )
            for t in targets
        }
        logger.info("document change", extra={"key": key, "started": started})
        return {"started": started}
    action = event.get("action")
    if action == "ingest":
        wanted = event.get("knowledge_base")
        chosen = [t for t in TARGETS if wanted in (None, t.name)]
        if not chosen:
            raise ValueError(f"unknown knowledge base {wanted!r}")
        _wake(chosen, context)
        started = {
            t.name: start_ingestion(client, t, reason="scheduled ingestion", event_id=None) for t in chosen
        }
        logger.info("scheduled ingestion", extra={"started": started})
        return {"started": started}
    if action == "check":
        failed = {t.name: latest_job_failed(client, t) for t in TARGETS}
        for name, is_failed in failed.items():
            with single_metric(
                name="IngestionJobFailed", unit=MetricUnit.Count, value=int(is_failed), namespace=NAMESPACE
            ) as metric:
                metric.add_dimension(name="KnowledgeBase", value=name)
        logger.info("ingestion status", extra={"failed": failed})
        return {"failed": failed}
    raise ValueError(f"unsupported event: expected an S3 object event or action ingest/check, got {action!r}")
