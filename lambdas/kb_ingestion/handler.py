"""Lambda entry point: EventBridge events in, Bedrock ingestion jobs and a failure metric out.

Events:
- `{"action": "ingest", "knowledge_base": NAME}` (that knowledge base's schedule; without the name:
  every knowledge base): start ingestion jobs;
- an S3 `Object Created` / `Object Deleted` event from the data bucket: start a job for the
  knowledge bases whose prefix holds the object;
- `{"action": "check"}` (every 15 minutes): publish `IngestionJobFailed` (1 when the latest job of a
  knowledge base ended FAILED, else 0) per knowledge base; the stack alarms on it.
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

from lambdas.kb_ingestion.logic import (
    KnowledgeBaseTarget,
    latest_job_failed,
    start_ingestion,
    targets_for_key,
)

NAMESPACE = "GenAiStack/KnowledgeBases"
S3_EVENTS = {"Object Created", "Object Deleted"}

logger = Logger(service="kb-ingestion")


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    knowledge_base_id: str = Field(min_length=1)
    data_source_id: str = Field(min_length=1)
    prefix: str = Field(min_length=1)


def _load_targets(raw: str | None) -> list[KnowledgeBaseTarget]:
    """KNOWLEDGE_BASES: a JSON list of {name, knowledge_base_id, data_source_id, prefix}."""
    if not raw:
        raise RuntimeError("environment variable KNOWLEDGE_BASES is not set")
    try:
        items = [_Target.model_validate(item) for item in json.loads(raw)]
    except (ValueError, TypeError, ValidationError) as error:
        raise RuntimeError(f"environment variable KNOWLEDGE_BASES is not valid: {error}") from None
    return [KnowledgeBaseTarget(**item.model_dump()) for item in items]


TARGETS = _load_targets(os.environ.get("KNOWLEDGE_BASES"))  # validated at cold start


@cache
def bedrock_agent() -> Any:
    return boto3.client("bedrock-agent")


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = bedrock_agent()
    if event.get("source") == "aws.s3" and event.get("detail-type") in S3_EVENTS:
        key = event.get("detail", {}).get("object", {}).get("key", "")
        targets = targets_for_key(TARGETS, key)
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
