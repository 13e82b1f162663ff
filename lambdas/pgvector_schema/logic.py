"""The SQL a Bedrock knowledge base needs in Aurora PostgreSQL, run through the RDS Data API.

Schema and statements follow the Amazon Bedrock user guide ("Prerequisites for your own vector
store: Amazon Aurora"): the vector extension, a schema, a login role for Bedrock, and per knowledge
base a table with id (uuid), embedding (vector), chunks (text), metadata (json) and custom_metadata
(jsonb), an HNSW index on the embedding for cosine distance and GIN indexes for text and metadata
filtering. Every statement is idempotent, so Create and Update run the same list.

A table's `vector(N)` column cannot take vectors of another size, and `CREATE TABLE IF NOT EXISTS`
silently keeps an existing table: so before any statement, `check_dimensions` reads the dimensions
of the tables that already exist and refuses a change with a message that says what to do (see
`DimensionsChangedError`). The request then fails before it changed anything, and the rollback
Update, which carries the old dimensions, finds them matching and succeeds.

The cluster pauses at 0 ACUs; a Data API call while it resumes fails with DatabaseResumingException
("A request was cancelled because the Aurora Serverless v2 DB instance was paused. The Data API
request automatically resumes the DB instance. Wait a few seconds and try again": botocore reference,
RDSDataService DatabaseResumingException,
https://docs.aws.amazon.com/botocore/latest/reference/services/rds-data/client/exceptions/DatabaseResumingException.html;
Aurora user guide, "Scaling to Zero ACUs with automatic pause and resume for Aurora Serverless v2",
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html).
`execute` retries it with exponential backoff for as long as the caller's time allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SCHEMA = "bedrock_integration"
ROLE = "bedrock_user"
ALTERNATE = f"{ROLE}_clone"  # the second login of alternating-users rotation
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OTHER_COLUMNS = "chunks text, metadata json, custom_metadata jsonb"
INDEXES = (
    ("embedding", "hnsw (embedding vector_cosine_ops)"),
    ("chunks", "gin (to_tsvector('simple', chunks))"),
    ("custom_metadata", "gin (custom_metadata)"),
)
RETRYABLE = frozenset(
    {"DatabaseResumingException", "DatabaseUnavailableException", "StatementTimeoutException"}
)
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 16.0
# The embedding column of every table of SCHEMA with its type modifier: pgvector's vector_typmod_in
# returns a `vector(N)` column's N as the type modifier, which PostgreSQL keeps in pg_attribute.atttypmod
# (pgvector, src/vector.c, vector_typmod_in: https://github.com/pgvector/pgvector/blob/master/src/vector.c).
DIMENSIONS_QUERY = (
    "SELECT c.relname, a.atttypmod FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'bedrock_integration' AND c.relkind = 'r' AND a.attname = 'embedding' "
    "AND NOT a.attisdropped"
)


class DatabaseNotReadyError(RuntimeError):
    """The cluster was still resuming (or unavailable) when the caller's time ran out."""


class DimensionsChangedError(ValueError):
    """A table exists with other embedding dimensions than the request asks for."""


@dataclass(frozen=True)
class VectorTable:
    name: str
    dimensions: int

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"table name {self.name!r} is not a lower-case SQL identifier")
        if not 1 <= self.dimensions <= 2000:  # pgvector HNSW indexes take up to 2,000 dimensions
            raise ValueError(
                f"table {self.name}: {self.dimensions} dimensions is outside 1..2000 for an HNSW index"
            )


def sql_literal(value: str) -> str:
    """A SQL string literal. The Data API cannot bind parameters in DDL such as ALTER ROLE."""
    return "'" + value.replace("'", "''") + "'"


SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def new_salt() -> bytes:
    return os.urandom(16)


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 and RFC 7677: SaltedPassword
    = PBKDF2-HMAC-SHA-256; StoredKey = H(HMAC(SaltedPassword, "Client Key")); ServerKey =
    HMAC(SaltedPassword, "Server Key")), in PostgreSQL's text form `SCRAM-SHA-256$<iterations>:<salt>$
    <StoredKey>:<ServerKey>`. "If the presented password string is already in MD5-encrypted or
    SCRAM-encrypted format, then it is stored as-is" (PostgreSQL 16, CREATE ROLE, PASSWORD), so the
    password itself never travels in SQL text, where a failing statement would put it in the server
    log. Passwords here are ASCII (GetRandomPassword), for which SASLprep changes nothing."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt_text, stored_text, server_text = (
        base64.b64encode(b).decode() for b in (salt, stored_key, server_key)
    )
    return f"SCRAM-SHA-256${iterations}:{salt_text}${stored_text}:{server_text}"


def _create_role_if_missing(name: str, verifier: str | None = None) -> str:
    password = f" PASSWORD {sql_literal(verifier)}" if verifier else ""
    return (
        f"DO $create$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
        f"THEN CREATE ROLE {name} LOGIN{password}; END IF; END $create$"
    )


def login_statements(username: str, password: str, salt: bytes) -> list[str]:
    """Set the Bedrock login's password: `username` (ROLE, or its alternate `ROLE_clone` that
    alternating-users rotation uses: lambdas/login_rotation) may log in with `password`, sent as its
    SCRAM verifier. The alternate is created on first use as a member of ROLE, whose rights it
    inherits."""
    if username not in (ROLE, ALTERNATE):
        raise ValueError(f"{username!r} is not the Bedrock login ({ROLE} or {ALTERNATE})")
    sql = [] if username == ROLE else [_create_role_if_missing(username), f"GRANT {ROLE} TO {username}"]
    verifier = scram_verifier(password, salt)
    return [*sql, f"ALTER ROLE {username} WITH LOGIN PASSWORD {sql_literal(verifier)}"]


def statements(tables: Sequence[VectorTable], password: str, salt: bytes) -> list[str]:
    """Every statement, in order. The login role gets `password` only when it is created: afterwards
    its password is the rotation function's to change (a schema update during a rotation must not set
    it back)."""
    sql = [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        _create_role_if_missing(ROLE, scram_verifier(password, salt)),
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ROLE}",
    ]
    for table in tables:
        name, qualified = table.name, f"{SCHEMA}.{table.name}"
        columns = f"id uuid PRIMARY KEY, embedding vector({table.dimensions}), {OTHER_COLUMNS}"
        sql += [f"CREATE TABLE IF NOT EXISTS {qualified} ({columns})"]
        sql += [
            f"CREATE INDEX IF NOT EXISTS {name}_{suffix} ON {qualified} USING {how}"
            for suffix, how in INDEXES
        ]
        sql += [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {qualified} TO {ROLE}"]
    return sql


def execute(
    client: Any,
    *,
    cluster_arn: str,
    secret_arn: str,
    database: str,
    sql: str,
    time_left: Callable[[], float],
    sleep: Callable[[float], None] | None = None,
    parameters: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """ExecuteStatement, retried while the cluster resumes: waits of 1, 2, 4, 8, 16, 16, ... seconds for
    as long as `time_left()` (seconds) still covers the next wait; then DatabaseNotReadyError. Any
    other error is raised at once."""
    sleep = sleep or time.sleep  # looked up per call, so that a test can replace time.sleep
    delay = FIRST_DELAY_SECONDS
    attempts = 0
    while True:
        attempts += 1
        try:
            return client.execute_statement(
                resourceArn=cluster_arn,
                secretArn=secret_arn,
                database=database,
                sql=sql,
                **({"parameters": list(parameters)} if parameters else {}),
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code not in RETRYABLE:
                raise
            if time_left() < delay:
                raise DatabaseNotReadyError(
                    f"the Aurora cluster {cluster_arn} still answers {code} after {attempts} attempts; "
                    "it may take longer to resume than this request could wait: retry the deployment "
                    "(the cluster keeps resuming on its own)"
                ) from error
            sleep(delay)
            delay = min(MAX_DELAY_SECONDS, delay * 2)


def existing_dimensions(
    client: Any,
    *,
    time_left: Callable[[], float],
    sleep: Callable[[float], None] | None = None,
    **target: str,
) -> dict[str, int]:
    """The embedding dimensions of the tables of SCHEMA that exist: pgvector keeps a `vector(N)`
    column's N as the column's type modifier (pg_attribute.atttypmod)."""
    response = execute(
        client,
        sql=DIMENSIONS_QUERY,
        time_left=time_left,
        sleep=sleep,
        **target,
    )
    return {record[0]["stringValue"]: int(record[1]["longValue"]) for record in response.get("records", [])}


def check_dimensions(tables: Sequence[VectorTable], existing: dict[str, int]) -> None:
    """DimensionsChangedError naming every table whose existing dimensions differ from the request."""
    changed = [
        f"{SCHEMA}.{table.name} holds vector({existing[table.name]}), the profile asks for {table.dimensions}"
        for table in tables
        if table.name in existing and existing[table.name] != table.dimensions
    ]
    if changed:
        raise DimensionsChangedError(
            "; ".join(changed) + ". A knowledge base's embedding dimensions cannot change in place: its "
            "vectors would no longer fit the column and its knowledge base must be re-created and "
            "re-ingested anyway. Add a knowledge base under a new name (a new table and a new knowledge "
            "base, ingested afresh), move its users, then remove the old one; or restore the old "
            "dimensions. Nothing was changed."
        )


def run(
    client: Any,
    *,
    cluster_arn: str,
    secret_arn: str,
    database: str,
    sql: Sequence[str],
    time_left: Callable[[], float],
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Execute each statement in order, each retried while the cluster resumes. Returns the count."""
    for statement in sql:
        execute(
            client,
            cluster_arn=cluster_arn,
            secret_arn=secret_arn,
            database=database,
            sql=statement,
            time_left=time_left,
            sleep=sleep,
        )
    return len(sql)
