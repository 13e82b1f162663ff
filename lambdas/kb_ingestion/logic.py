"""Ingestion logic over an injected `bedrock-agent` client (tests pass a stubbed one)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class KnowledgeBaseTarget:
    """One knowledge base data source and the data-bucket prefix its documents live under."""

    name: str
    knowledge_base_id: str
    data_source_id: str
    prefix: str


def targets_for_key(targets: list[KnowledgeBaseTarget], key: str) -> list[KnowledgeBaseTarget]:
    """The knowledge bases whose document prefix holds the object `key`."""
    return [target for target in targets if key.startswith(target.prefix)]


def client_token(event_id: str, target: KnowledgeBaseTarget) -> str:
    """A StartIngestionJob idempotency token (33-256 characters) for one event and one target,
    so a retried event does not start a second job."""
    return hashlib.sha256(
        f"{event_id}:{target.knowledge_base_id}:{target.data_source_id}".encode()
    ).hexdigest()


def start_ingestion(
    client: Any, target: KnowledgeBaseTarget, *, reason: str, event_id: str | None
) -> str | None:
    """Start an ingestion job; return its id, or None when a job is already running for the source.

    Bedrock answers ConflictException while a job runs; that job (or the next scheduled one) picks
    the change up, so it is not an error.
    """
    request: dict[str, Any] = {
        "knowledgeBaseId": target.knowledge_base_id,
        "dataSourceId": target.data_source_id,
        "description": reason[:200],
    }
    if event_id:
        request["clientToken"] = client_token(event_id, target)
    try:
        response = client.start_ingestion_job(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConflictException":
            return None
        raise
    return response["ingestionJob"]["ingestionJobId"]


def latest_job_failed(client: Any, target: KnowledgeBaseTarget) -> bool:
    """Whether the most recently started ingestion job of the data source ended FAILED."""
    response = client.list_ingestion_jobs(
        knowledgeBaseId=target.knowledge_base_id,
        dataSourceId=target.data_source_id,
        sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"},
        maxResults=1,
    )
    jobs = response.get("ingestionJobSummaries", [])
    return bool(jobs) and jobs[0]["status"] == "FAILED"
