"""Knowledge base ingestion Lambda: logic with a stubbed bedrock-agent client, handler end to end."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from lambdas.kb_ingestion import logic
from lambdas.kb_ingestion.logic import KnowledgeBaseTarget
from tests.support.stubs import offline_client

FAQ = KnowledgeBaseTarget(
    name="faq", knowledge_base_id="KB00000001", data_source_id="DS00000001", prefix="kb/faq/"
)
DOCS = KnowledgeBaseTarget(
    name="docs", knowledge_base_id="KB00000002", data_source_id="DS00000002", prefix="kb/docs/"
)
JOB = {
    "knowledgeBaseId": "KB00000001",
    "dataSourceId": "DS00000001",
    "ingestionJobId": "JOB0000001",
    "status": "STARTING",
    "startedAt": datetime(2026, 11, 22, tzinfo=UTC),
    "updatedAt": datetime(2026, 11, 22, tzinfo=UTC),
}


@pytest.fixture
def client():
    return offline_client("bedrock-agent")


def test_targets_are_chosen_by_prefix():
    assert logic.targets_for_key([FAQ, DOCS], "kb/faq/answers.pdf") == [FAQ]
    assert logic.targets_for_key([FAQ, DOCS], "kb/other/x.pdf") == []


def test_a_job_is_started_with_an_idempotency_token_per_event_and_target(client):
    token = logic.client_token("event-1", FAQ)
    assert 33 <= len(token) <= 256
    assert token != logic.client_token("event-2", FAQ)
    assert token != logic.client_token("event-1", DOCS)
    with Stubber(client) as stub:
        stub.add_response(
            "start_ingestion_job",
            {"ingestionJob": JOB},
            {
                "knowledgeBaseId": "KB00000001",
                "dataSourceId": "DS00000001",
                "description": "new doc",
                "clientToken": token,
            },
        )
        assert logic.start_ingestion(client, FAQ, reason="new doc", event_id="event-1") == "JOB0000001"
        stub.assert_no_pending_responses()


def test_a_running_job_is_not_an_error(client):
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_ingestion_job", service_error_code="ConflictException", http_status_code=409
        )
        assert logic.start_ingestion(client, FAQ, reason="scheduled", event_id=None) is None


def test_other_errors_propagate(client):
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_ingestion_job", service_error_code="AccessDeniedException", http_status_code=403
        )
        with pytest.raises(Exception, match="AccessDeniedException"):
            logic.start_ingestion(client, FAQ, reason="scheduled", event_id=None)


@pytest.mark.parametrize(
    ("status", "failed"), [("FAILED", True), ("COMPLETE", False), ("IN_PROGRESS", False)]
)
def test_the_latest_job_status_decides_failure(client, status, failed):
    expected = {
        "knowledgeBaseId": "KB00000001",
        "dataSourceId": "DS00000001",
        "sortBy": {"attribute": "STARTED_AT", "order": "DESCENDING"},
        "maxResults": 1,
    }
    with Stubber(client) as stub:
        stub.add_response(
            "list_ingestion_jobs", {"ingestionJobSummaries": [{**JOB, "status": status}]}, expected
        )
        assert logic.latest_job_failed(client, FAQ) is failed


def test_no_job_yet_is_not_a_failure(client):
    with Stubber(client) as stub:
        stub.add_response("list_ingestion_jobs", {"ingestionJobSummaries": []})
        assert logic.latest_job_failed(client, FAQ) is False


# --------------------------------------------------------------------------------------------------
# Handler


@pytest.fixture
def handler(monkeypatch, client):
    monkeypatch.setenv(
        "KNOWLEDGE_BASES",
        json.dumps(
            [
                {
                    "name": t.name,
                    "knowledge_base_id": t.knowledge_base_id,
                    "data_source_id": t.data_source_id,
                    "prefix": t.prefix,
                }
                for t in (FAQ, DOCS)
            ]
        ),
    )
    module = importlib.reload(importlib.import_module("lambdas.kb_ingestion.handler"))
    monkeypatch.setattr(module, "bedrock_agent", lambda: client)
    return module


def s3_event(key: str, detail_type: str = "Object Created") -> dict:
    return {
        "id": "evt-123",
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"object": {"key": key}},
    }


def test_a_new_document_starts_ingestion_of_its_knowledge_base_only(handler, client):
    with Stubber(client) as stub:
        stub.add_response(
            "start_ingestion_job",
            {"ingestionJob": JOB},
            {
                "knowledgeBaseId": "KB00000001",
                "dataSourceId": "DS00000001",
                "description": "Object Created: kb/faq/new.pdf",
                "clientToken": logic.client_token("evt-123", FAQ),
            },
        )
        assert handler.on_event(s3_event("kb/faq/new.pdf"), None) == {"started": {"faq": "JOB0000001"}}
        stub.assert_no_pending_responses()


def test_a_deleted_document_also_reingests(handler, client):
    with Stubber(client) as stub:
        stub.add_response("start_ingestion_job", {"ingestionJob": {**JOB, "knowledgeBaseId": "KB00000002"}})
        assert handler.on_event(s3_event("kb/docs/old.pdf", "Object Deleted"), None)["started"] == {
            "docs": "JOB0000001"
        }


def test_the_schedule_ingests_every_knowledge_base(handler, client):
    with Stubber(client) as stub:
        stub.add_response("start_ingestion_job", {"ingestionJob": JOB})
        stub.add_client_error(
            "start_ingestion_job", service_error_code="ConflictException", http_status_code=409
        )
        assert handler.on_event({"action": "ingest"}, None) == {
            "started": {"faq": "JOB0000001", "docs": None}
        }


def test_the_check_publishes_one_failure_metric_per_knowledge_base(handler, client, capsys):
    with Stubber(client) as stub:
        stub.add_response("list_ingestion_jobs", {"ingestionJobSummaries": [{**JOB, "status": "FAILED"}]})
        stub.add_response("list_ingestion_jobs", {"ingestionJobSummaries": [{**JOB, "status": "COMPLETE"}]})
        assert handler.on_event({"action": "check"}, None) == {"failed": {"faq": True, "docs": False}}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {m["KnowledgeBase"]: m["IngestionJobFailed"] for m in metrics}
    assert values == {"faq": [1.0], "docs": [0.0]}
    assert {m["_aws"]["CloudWatchMetrics"][0]["Namespace"] for m in metrics} == {"GenAiStack/KnowledgeBases"}


def test_a_knowledge_base_schedule_ingests_that_knowledge_base_only(handler, client):
    with Stubber(client) as stub:
        stub.add_response("start_ingestion_job", {"ingestionJob": {**JOB, "knowledgeBaseId": "KB00000002"}})
        assert handler.on_event({"action": "ingest", "knowledge_base": "docs"}, None) == {
            "started": {"docs": "JOB0000001"}
        }
        stub.assert_no_pending_responses()
    with pytest.raises(ValueError, match="unknown knowledge base 'nope'"):
        handler.on_event({"action": "ingest", "knowledge_base": "nope"}, None)


def test_an_unknown_event_is_rejected(handler):
    with pytest.raises(ValueError, match="unsupported event"):
        handler.on_event({"action": "explode"}, None)


def test_bad_configuration_fails_at_cold_start(monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_BASES", '[{"name": "faq"}]')
    with pytest.raises(RuntimeError, match="KNOWLEDGE_BASES is not valid"):
        importlib.reload(importlib.import_module("lambdas.kb_ingestion.handler"))


# --------------------------------------------------------------------------------------------------
# Aurora vector stores: wake the paused cluster before an ingestion job starts

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:vectors"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bedrock-login-AbCdEf"
STORE = logic.AuroraDatabase(cluster_arn=CLUSTER, secret_arn=SECRET, database="vectors")
ON_AURORA = KnowledgeBaseTarget(
    name="manuals",
    knowledge_base_id="KB00000003",
    data_source_id="DS00000003",
    prefix="kb/manuals/",
    database=STORE,
)
PING = {"resourceArn": CLUSTER, "secretArn": SECRET, "database": "vectors", "sql": "SELECT 1"}


@pytest.fixture
def rds():
    return offline_client("rds-data")


def resuming(stub: Stubber) -> None:
    stub.add_client_error(
        "execute_statement",
        service_error_code="DatabaseResumingException",
        service_message="The Aurora DB instance is resuming after being auto-paused. Please wait a few "
        "seconds and try again.",
        http_status_code=400,
        expected_params=PING,
    )


def test_a_paused_cluster_is_woken_with_exponential_backoff(rds):
    waits = []
    with Stubber(rds) as stub:
        for _ in range(3):
            resuming(stub)
        stub.add_response("execute_statement", {}, PING)
        assert logic.wake_database(rds, STORE, time_left=lambda: 60.0, sleep=waits.append) == 4
        stub.assert_no_pending_responses()
    assert waits == [1.0, 2.0, 4.0]


def test_the_wake_gives_up_when_the_next_wait_does_not_fit(rds):
    with Stubber(rds) as stub:
        resuming(stub)
        with pytest.raises(logic.DatabaseNotReadyError, match="no ingestion job was started"):
            logic.wake_database(rds, STORE, time_left=lambda: 0.5, sleep=lambda s: pytest.fail("no wait"))


def test_other_data_api_errors_are_not_retried(rds):
    with Stubber(rds) as stub:
        stub.add_client_error(
            "execute_statement", service_error_code="ForbiddenException", http_status_code=403
        )
        with pytest.raises(Exception, match="ForbiddenException"):
            logic.wake_database(rds, STORE, time_left=lambda: 60.0, sleep=lambda s: pytest.fail("no wait"))


class RemainingTime:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


@pytest.fixture
def aurora_handler(monkeypatch, client, rds):
    targets = [FAQ, ON_AURORA]
    monkeypatch.setenv(
        "KNOWLEDGE_BASES",
        json.dumps(
            [
                {
                    "name": t.name,
                    "knowledge_base_id": t.knowledge_base_id,
                    "data_source_id": t.data_source_id,
                    "prefix": t.prefix,
                    **(
                        {
                            "database": {
                                "cluster_arn": CLUSTER,
                                "secret_arn": SECRET,
                                "database": "vectors",
                            }
                        }
                        if t.database
                        else {}
                    ),
                }
                for t in targets
            ]
        ),
    )
    module = importlib.reload(importlib.import_module("lambdas.kb_ingestion.handler"))
    monkeypatch.setattr(module, "bedrock_agent", lambda: client)
    monkeypatch.setattr(module, "rds_data", lambda: rds)
    monkeypatch.setattr(logic.time, "sleep", lambda seconds: None)
    return module


def test_scheduled_ingestion_of_an_aurora_knowledge_base_waits_for_the_resuming_cluster(
    aurora_handler, client, rds
):
    assert aurora_handler.TARGETS[1].database == STORE
    with Stubber(rds) as rds_stub, Stubber(client) as stub:
        resuming(rds_stub)  # the first Data API call after the pause
        rds_stub.add_response("execute_statement", {}, PING)
        stub.add_response("start_ingestion_job", {"ingestionJob": {**JOB, "knowledgeBaseId": "KB00000003"}})
        event = {"action": "ingest", "knowledge_base": "manuals"}
        assert aurora_handler.on_event(event, RemainingTime(60_000)) == {"started": {"manuals": "JOB0000001"}}
        rds_stub.assert_no_pending_responses()
        stub.assert_no_pending_responses()


def test_no_job_starts_while_the_cluster_does_not_answer(aurora_handler, client, rds):
    with Stubber(rds) as rds_stub, Stubber(client):
        resuming(rds_stub)  # the Stubber raises on any start_ingestion_job call
        with pytest.raises(logic.DatabaseNotReadyError):
            aurora_handler.on_event(s3_event("kb/manuals/new.pdf"), RemainingTime(5_500))


def test_a_knowledge_base_on_s3_vectors_wakes_nothing(aurora_handler, client, monkeypatch):
    monkeypatch.setattr(aurora_handler, "rds_data", lambda: pytest.fail("no Data API call for S3 Vectors"))
    with Stubber(client) as stub:
        stub.add_response("start_ingestion_job", {"ingestionJob": JOB})
        assert aurora_handler.on_event(s3_event("kb/faq/new.pdf"), RemainingTime(60_000))["started"] == {
            "faq": "JOB0000001"
        }


def test_a_bad_database_entry_fails_at_cold_start(monkeypatch):
    monkeypatch.setenv(
        "KNOWLEDGE_BASES",
        json.dumps(
            [
                {
                    "name": "m",
                    "knowledge_base_id": "K",
                    "data_source_id": "D",
                    "prefix": "p/",
                    "database": {"cluster_arn": "vectors", "secret_arn": SECRET, "database": "v"},
                }
            ]
        ),
    )
    with pytest.raises(RuntimeError, match="KNOWLEDGE_BASES is not valid"):
        importlib.reload(importlib.import_module("lambdas.kb_ingestion.handler"))
