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


SALT = bytes(range(16))


def test_the_sql_creates_extension_schema_role_and_one_indexed_table_per_knowledge_base():
    sql = logic.statements([VectorTable("faq", 1024), VectorTable("manuals", 256)], "pa'ss", SALT)
    assert sql[0] == "CREATE EXTENSION IF NOT EXISTS vector"
    # The login role is created with the password's verifier, never the password, and only if missing:
    # afterwards its password is the rotation function's.
    verifier = logic.scram_verifier("pa'ss", SALT)
    assert sql[2] == (
        "DO $create$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bedrock_user') "
        f"THEN CREATE ROLE bedrock_user LOGIN PASSWORD '{verifier}'; END IF; END $create$"
    )
    assert not any("pa'ss" in statement or "pa''ss" in statement for statement in sql)
    assert not any(statement.startswith("ALTER ROLE") for statement in sql)
    tables = [s for s in sql if s.startswith("CREATE TABLE")]
    assert tables == [
        "CREATE TABLE IF NOT EXISTS bedrock_integration.faq (id uuid PRIMARY KEY, embedding vector(1024), chunks text, metadata json, custom_metadata jsonb)",
        "CREATE TABLE IF NOT EXISTS bedrock_integration.manuals (id uuid PRIMARY KEY, embedding vector(256), chunks text, metadata json, custom_metadata jsonb)",
    ]
    assert (
        "CREATE INDEX IF NOT EXISTS faq_embedding ON bedrock_integration.faq USING hnsw (embedding vector_cosine_ops)"
        in sql
    )
    assert all("IF NOT EXISTS" in s or s.startswith(("GRANT", "DO")) for s in sql)


def test_the_verifier_is_the_scram_sha_256_one_of_rfc_7677():
    """RFC 7677, section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
    iterations. The client's proof in that exchange, with our StoredKey, must give back a ClientKey
    whose hash is StoredKey; our ServerKey must sign the exchange as the server did."""
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = logic.scram_verifier("pencil", salt)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    assert method == "SCRAM-SHA-256"
    assert iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    ).encode()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_alternate_login_is_created_as_a_member_of_the_bedrock_role():
    create, grant, password = logic.login_statements("bedrock_user_clone", "pw", SALT)
    assert "CREATE ROLE bedrock_user_clone LOGIN;" in create
    assert grant == "GRANT bedrock_user TO bedrock_user_clone"
    assert (
        password == f"ALTER ROLE bedrock_user_clone WITH LOGIN PASSWORD '{logic.scram_verifier('pw', SALT)}'"
    )
    (only,) = logic.login_statements("bedrock_user", "pw", SALT)
    assert only.startswith("ALTER ROLE bedrock_user WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:")


@pytest.mark.parametrize("username", ["postgres", "bedrock_user; DROP TABLE x", "vectors_admin"])
def test_no_other_role_gets_its_password_set(username):
    with pytest.raises(ValueError, match="is not the Bedrock login"):
        logic.login_statements(username, "pw", SALT)


@pytest.mark.parametrize(("name", "dimensions"), [("Bad-Name", 10), ("ok", 4096), ("x; drop", 3)])
def test_unsafe_names_and_unsupported_sizes_are_refused(name, dimensions):
    with pytest.raises(ValueError, match=r"SQL identifier|outside 1\.\.2000"):
        VectorTable(name, dimensions)


TARGET = {"resourceArn": CLUSTER, "secretArn": ADMIN, "database": "vectors"}
ARGS = {"cluster_arn": CLUSTER, "secret_arn": ADMIN, "database": "vectors"}


def resuming(stub: Stubber) -> None:
    """The Data API's answer while a paused Aurora Serverless v2 instance resumes."""
    stub.add_client_error(
        "execute_statement",
        service_error_code="DatabaseResumingException",
        service_message="The Aurora DB instance is resuming after being auto-paused. Please wait a few "
        "seconds and try again.",
        http_status_code=400,
    )


def plenty() -> float:
    return 600.0


def test_statements_run_in_order_and_a_resuming_cluster_is_waited_for():
    rds = client("rds-data")
    waits = []
    with Stubber(rds) as stub:
        stub.add_response("execute_statement", {}, {**TARGET, "sql": "one"})
        resuming(stub)
        resuming(stub)
        stub.add_response("execute_statement", {}, {**TARGET, "sql": "two"})
        assert logic.run(rds, **ARGS, sql=["one", "two"], time_left=plenty, sleep=waits.append) == 2
        stub.assert_no_pending_responses()
    assert waits == [1.0, 2.0]


def test_the_backoff_doubles_up_to_its_cap_while_time_is_left():
    rds = client("rds-data")
    waits = []
    with Stubber(rds) as stub:
        for _ in range(7):
            resuming(stub)
        stub.add_response("execute_statement", {}, {**TARGET, "sql": "one"})
        logic.execute(rds, **ARGS, sql="one", time_left=plenty, sleep=waits.append)
        stub.assert_no_pending_responses()
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]


def test_the_wait_ends_with_a_clear_error_when_the_time_runs_out():
    rds = client("rds-data")
    budget = [5.0]
    waits = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        budget[0] -= seconds

    with Stubber(rds) as stub:
        for _ in range(3):
            resuming(stub)
        with pytest.raises(
            logic.DatabaseNotReadyError, match=r"still answers DatabaseResumingException after 3"
        ):
            logic.execute(rds, **ARGS, sql="one", time_left=lambda: budget[0], sleep=sleep)
    assert waits == [1.0, 2.0]  # the next wait (4 s) would not fit in the 2 s left


def test_other_database_errors_fail_at_once():
    rds = client("rds-data")
    with Stubber(rds) as stub:
        stub.add_client_error(
            "execute_statement", service_error_code="BadRequestException", http_status_code=400
        )
        with pytest.raises(Exception, match="BadRequestException"):
            logic.run(rds, **ARGS, sql=["bad"], time_left=plenty, sleep=lambda _: pytest.fail("no wait"))


def dimensions_answer(**tables: int) -> dict:
    """ExecuteStatement's answer to logic.DIMENSIONS_QUERY for the given tables."""
    return {"records": [[{"stringValue": name}, {"longValue": dims}] for name, dims in tables.items()]}


def test_existing_dimensions_are_read_from_the_column_type_modifier():
    rds = client("rds-data")
    with Stubber(rds) as stub:
        stub.add_response(
            "execute_statement",
            dimensions_answer(faq=1024, manuals=256),
            {**TARGET, "sql": logic.DIMENSIONS_QUERY},
        )
        assert logic.existing_dimensions(rds, time_left=plenty, **ARGS) == {"faq": 1024, "manuals": 256}


def test_a_changed_dimension_is_refused_with_what_to_do_and_new_tables_are_fine():
    tables = [VectorTable("faq", 256), VectorTable("manuals", 256), VectorTable("new", 1024)]
    with pytest.raises(logic.DimensionsChangedError) as raised:
        logic.check_dimensions(tables, {"faq": 1024, "manuals": 256})
    message = str(raised.value)
    assert "bedrock_integration.faq holds vector(1024), the profile asks for 256" in message
    assert "manuals" not in message
    assert "new name" in message
    assert "Nothing was changed" in message
    logic.check_dimensions(tables, {"manuals": 256})  # new tables: nothing to refuse


def event(request_type: str = "Create", dimensions: int = 1024, **extra) -> dict:
    return {
        "RequestType": request_type,
        "LogicalResourceId": "Schema",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework",
            "ClusterArn": CLUSTER,
            "AdminSecretArn": ADMIN,
            "BedrockSecretArn": BEDROCK,
            "Database": "vectors",
            "Tables": json.dumps([{"name": "faq", "dimensions": dimensions}]),
        },
        **extra,
    }


class FakeContext:
    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def aws(monkeypatch):
    """Stubbed rds-data and secretsmanager clients behind the handler; no real sleeping."""
    rds, secrets = client("rds-data"), client("secretsmanager")
    monkeypatch.setattr(handler_module, "clients", lambda: (rds, secrets))
    monkeypatch.setattr(handler_module, "new_salt", lambda: SALT)
    monkeypatch.setattr(logic.time, "sleep", lambda seconds: None)
    with Stubber(rds) as rds_stub, Stubber(secrets) as secrets_stub:
        yield rds_stub, secrets_stub
        rds_stub.assert_no_pending_responses()
        secrets_stub.assert_no_pending_responses()


def expect_schema(rds_stub: Stubber, secrets_stub: Stubber, dimensions: int, existing: dict) -> None:
    rds_stub.add_response(
        "execute_statement", dimensions_answer(**existing), {**TARGET, "sql": logic.DIMENSIONS_QUERY}
    )
    login = {"username": "bedrock_user", "password": "s3cret"}
    secrets_stub.add_response("get_secret_value", {"SecretString": json.dumps(login)}, {"SecretId": BEDROCK})
    for statement in logic.statements([VectorTable("faq", dimensions)], "s3cret", SALT):
        rds_stub.add_response("execute_statement", {}, {**TARGET, "sql": statement})


def test_the_handler_reads_the_bedrock_password_and_runs_the_schema(aws):
    expect_schema(*aws, 1024, {})
    result = handler_module.on_event(event(), FakeContext())
    assert result == {"PhysicalResourceId": "pgvector-schema:Schema", "Data": {"Statements": "9"}}


def test_a_paused_cluster_is_waited_for_from_the_first_query(aws):
    rds_stub, secrets_stub = aws
    resuming(rds_stub)  # the first Data API call after a pause
    resuming(rds_stub)
    expect_schema(rds_stub, secrets_stub, 1024, {})
    assert handler_module.on_event(event(), FakeContext())["Data"] == {"Statements": "9"}


def test_the_wait_stops_before_lambda_times_out(aws, monkeypatch):
    rds_stub, _ = aws
    resuming(rds_stub)
    with pytest.raises(logic.DatabaseNotReadyError):
        # 20.5 s left minus the 20 s margin: not even the first 1 s wait fits.
        handler_module.on_event(event(), FakeContext(remaining_ms=20_500))


# --------------------------------------------------------------------------------------------------
# The CloudFormation event sequences of a rollback (CloudFormation user guide, "Update request for
# CloudFormation custom resources": a rollback sends an Update with the old properties).


def test_a_dimension_change_fails_before_any_change_and_its_rollback_succeeds(aws):
    rds_stub, secrets_stub = aws
    expect_schema(rds_stub, secrets_stub, 1024, {})
    assert (
        handler_module.on_event(event("Create"), FakeContext())["PhysicalResourceId"]
        == "pgvector-schema:Schema"
    )
    # Update to 256 dimensions: refused after the read, before the secret or any DDL.
    rds_stub.add_response(
        "execute_statement", dimensions_answer(faq=1024), {**TARGET, "sql": logic.DIMENSIONS_QUERY}
    )
    with pytest.raises(
        logic.DimensionsChangedError, match="holds vector\\(1024\\), the profile asks for 256"
    ):
        handler_module.on_event(
            event("Update", 256, PhysicalResourceId="pgvector-schema:Schema"), FakeContext()
        )
    # The rollback Update carries the old dimensions: they match, the idempotent schema runs again.
    expect_schema(rds_stub, secrets_stub, 1024, {"faq": 1024})
    rollback = handler_module.on_event(
        event("Update", 1024, PhysicalResourceId="pgvector-schema:Schema"), FakeContext()
    )
    assert rollback["PhysicalResourceId"] == "pgvector-schema:Schema"


@pytest.mark.parametrize(
    "physical_id", ["pgvector-schema:Schema", "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"]
)
def test_delete_keeps_the_vectors_and_calls_nothing(monkeypatch, physical_id):
    # Also the Delete after a failed Create (the provider framework's marker id), which the framework
    # answers itself (aws-cdk-lib 2.275, provider-framework/runtime/cfn-response.js).
    monkeypatch.setattr(handler_module, "clients", lambda: pytest.fail("no AWS call on delete"))
    result = handler_module.on_event({**event("Delete"), "PhysicalResourceId": physical_id}, None)
    assert result == {"PhysicalResourceId": physical_id}


def test_a_missing_property_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(handler_module, "clients", lambda: pytest.fail("no AWS call on bad input"))
    bad = event()
    del bad["ResourceProperties"]["ClusterArn"]
    with pytest.raises(ValueError, match="ClusterArn"):
        handler_module.on_event(bad, FakeContext())
