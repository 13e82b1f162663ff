"""pgvector schema custom resource: the SQL, the retry on a resuming cluster, the handler."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.pgvector_schema import handler as handler_module
from lambdas.pgvector_schema import logic
from lambdas.pgvector_schema.logic import VectorTable

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:vectors"
ADMIN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin-AbCdEf"
BEDROCK = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bedrock-AbCdEf"


def client(service: str):
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_the_sql_creates_extension_schema_role_and_one_indexed_table_per_knowledge_base():
    sql = logic.statements([VectorTable("faq", 1024), VectorTable("manuals", 256)], "pa'ss")
    assert sql[0] == "CREATE EXTENSION IF NOT EXISTS vector"
    assert "PASSWORD 'pa''ss'" in sql[3]  # quotes doubled: no way out of the literal
    tables = [s for s in sql if s.startswith("CREATE TABLE")]
    assert tables == [
        "CREATE TABLE IF NOT EXISTS bedrock_integration.faq (id uuid PRIMARY KEY, embedding vector(1024), chunks text, metadata json, custom_metadata jsonb)",
        "CREATE TABLE IF NOT EXISTS bedrock_integration.manuals (id uuid PRIMARY KEY, embedding vector(256), chunks text, metadata json, custom_metadata jsonb)",
    ]
    assert (
        "CREATE INDEX IF NOT EXISTS faq_embedding ON bedrock_integration.faq USING hnsw (embedding vector_cosine_ops)"
        in sql
    )
    assert all("IF NOT EXISTS" in s or s.startswith(("ALTER", "GRANT", "DO")) for s in sql)


@pytest.mark.parametrize(("name", "dimensions"), [("Bad-Name", 10), ("ok", 4096), ("x; drop", 3)])
def test_unsafe_names_and_unsupported_sizes_are_refused(name, dimensions):
    with pytest.raises(ValueError, match=r"SQL identifier|outside 1\.\.2000"):
        VectorTable(name, dimensions)


def test_statements_run_in_order_and_a_resuming_cluster_is_waited_for():
    rds = client("rds-data")
    waits = []
    with Stubber(rds) as stub:
        expected = {"resourceArn": CLUSTER, "secretArn": ADMIN, "database": "vectors"}
        stub.add_response("execute_statement", {}, {**expected, "sql": "one"})
        stub.add_client_error(
            "execute_statement", service_error_code="DatabaseResumingException", http_status_code=400
        )
        stub.add_response("execute_statement", {}, {**expected, "sql": "two"})
        assert (
            logic.run(
                rds,
                cluster_arn=CLUSTER,
                secret_arn=ADMIN,
                database="vectors",
                sql=["one", "two"],
                sleep=waits.append,
            )
            == 2
        )
        stub.assert_no_pending_responses()
    assert waits == [2.0]


def test_other_database_errors_fail_at_once():
    rds = client("rds-data")
    with Stubber(rds) as stub:
        stub.add_client_error(
            "execute_statement", service_error_code="BadRequestException", http_status_code=400
        )
        with pytest.raises(Exception, match="BadRequestException"):
            logic.run(
                rds,
                cluster_arn=CLUSTER,
                secret_arn=ADMIN,
                database="vectors",
                sql=["bad"],
                sleep=lambda _: None,
            )


def event(request_type: str = "Create", **props) -> dict:
    return {
        "RequestType": request_type,
        "LogicalResourceId": "Schema",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework",
            "ClusterArn": CLUSTER,
            "AdminSecretArn": ADMIN,
            "BedrockSecretArn": BEDROCK,
            "Database": "vectors",
            "Tables": json.dumps([{"name": "faq", "dimensions": 1024}]),
            **props,
        },
    }


def test_the_handler_reads_the_bedrock_password_and_runs_the_schema(monkeypatch):
    rds, secrets = client("rds-data"), client("secretsmanager")
    monkeypatch.setattr(handler_module, "clients", lambda: (rds, secrets))
    with Stubber(rds) as rds_stub, Stubber(secrets) as secrets_stub:
        secrets_stub.add_response(
            "get_secret_value", {"SecretString": json.dumps({"password": "s3cret"})}, {"SecretId": BEDROCK}
        )
        for _ in logic.statements([VectorTable("faq", 1024)], "s3cret"):
            rds_stub.add_response("execute_statement", {})
        result = handler_module.on_event(event(), None)
        rds_stub.assert_no_pending_responses()
    assert result == {"PhysicalResourceId": "pgvector-schema:Schema", "Data": {"Statements": "10"}}


def test_delete_keeps_the_vectors_and_calls_nothing(monkeypatch):
    monkeypatch.setattr(handler_module, "clients", lambda: pytest.fail("no AWS call on delete"))
    result = handler_module.on_event(
        {**event("Delete"), "PhysicalResourceId": "pgvector-schema:Schema"}, None
    )
    assert result == {"PhysicalResourceId": "pgvector-schema:Schema"}


def test_a_missing_property_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(handler_module, "clients", lambda: pytest.fail("no AWS call on bad input"))
    bad = event()
    del bad["ResourceProperties"]["ClusterArn"]
    with pytest.raises(ValueError, match="ClusterArn"):
        handler_module.on_event(bad, None)
