"""Ingestion logic over injected `bedrock-agent` and `rds-data` clients (tests pass stubbed ones).

A knowledge base on Aurora PostgreSQL Serverless v2 writes its vectors through the RDS Data API, and
the cluster pauses at 0 ACUs. While it resumes, Data API calls fail (DatabaseResumingException: "The
Data API request automatically resumes the DB instance. Wait a few seconds and try again", botocore
reference, RDSDataService DatabaseResumingException,
https://docs.aws.amazon.com/botocore/latest/reference/services/rds-data/client/exceptions/DatabaseResumingException.html;
Aurora user guide, "Scaling to Zero ACUs with automatic pause and resume for Aurora Serverless v2",
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html), and
Bedrock's own calls to a paused store fail the same way ("The Aurora DB instance ... is resuming after
being auto-paused", aws-samples/bedrock-chat#848). So before an ingestion job starts on such a store,
`wake_database` runs `SELECT 1` through the Data API and retries with exponential backoff until the
cluster answers or the caller's time is up.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

RESUMING = frozenset({"DatabaseResumingException", "DatabaseUnavailableException"})
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 16.0


class DatabaseNotReadyError(RuntimeError):
    """The vector store's cluster was still resuming when the caller's time ran out."""


@dataclass(frozen=True)
class AuroraDatabase:
    """The Aurora vector store of a knowledge base, as the Data API addresses it."""

    cluster_arn: str
    secret_arn: str
    database: str


@dataclass(frozen=True)
class KnowledgeBaseTarget:
    """One knowledge base data source, the data-bucket prefix its documents live under, and its
    Aurora vector store if it has one (None for S3 Vectors, which has nothing to wake)."""

    name: str
    knowledge_base_id: str
    data_source_id: str
    prefix: str
    database: AuroraDatabase | None = None


def wake_database(
    client: Any,
    database: AuroraDatabase,
    *,
    time_left: Callable[[], float],
    sleep: Callable[[float], None] | None = None,
) -> int:
    """`SELECT 1` until the cluster answers: waits of 1, 2, 4, 8, 16, 16, ... seconds while
    `time_left()` (seconds) covers the next wait, then DatabaseNotReadyError. Returns the attempts."""
    sleep = sleep or time.sleep
    delay = FIRST_DELAY_SECONDS
    attempts = 0
    while True:
        attempts += 1
        try:
            client.execute_statement(
                resourceArn=database.cluster_arn,
                secretArn=database.secret_arn,
                database=database.database,
                sql="SELECT 1",
            )
            return attempts
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code not in RESUMING:
                raise
            if time_left() < delay:
                raise DatabaseNotReadyError(
                    f"the Aurora cluster {database.cluster_arn} still answers {code} after {attempts} "
                    "attempts; no ingestion job was started (the event is retried)"
                ) from error
            sleep(delay)
            delay = min(MAX_DELAY_SECONDS, delay * 2)


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
