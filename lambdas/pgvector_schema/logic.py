"""The SQL a Bedrock knowledge base needs in Aurora PostgreSQL, run through the RDS Data API.

Schema and statements follow the Amazon Bedrock user guide ("Prerequisites for your own vector
store: Amazon Aurora"): the vector extension, a schema, a login role for Bedrock, and per knowledge
base a table with id (uuid), embedding (vector), chunks (text), metadata (json) and custom_metadata
(jsonb), an HNSW index on the embedding for cosine distance and GIN indexes for text and metadata
filtering. Every statement is idempotent, so Create and Update run the same list.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SCHEMA = "bedrock_integration"
ROLE = "bedrock_user"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OTHER_COLUMNS = "chunks text, metadata json, custom_metadata jsonb"
INDEXES = (
    ("embedding", "hnsw (embedding vector_cosine_ops)"),
    ("chunks", "gin (to_tsvector('simple', chunks))"),
    ("custom_metadata", "gin (custom_metadata)"),
)
RETRYABLE = {"DatabaseResumingException", "DatabaseUnavailableException", "StatementTimeoutException"}


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


def _literal(value: str) -> str:
    """A SQL string literal. The Data API cannot bind parameters in DDL such as ALTER ROLE."""
    return "'" + value.replace("'", "''") + "'"


def statements(tables: Sequence[VectorTable], bedrock_password: str) -> list[str]:
    sql = [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f"THEN CREATE ROLE {ROLE} LOGIN; END IF; END $$",
        f"ALTER ROLE {ROLE} WITH LOGIN PASSWORD {_literal(bedrock_password)}",
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


def run(
    client: Any,
    *,
    cluster_arn: str,
    secret_arn: str,
    database: str,
    sql: Sequence[str],
    attempts: int = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Execute each statement; retry while a paused cluster resumes. Returns the statements run."""
    for statement in sql:
        for attempt in range(1, attempts + 1):
            try:
                client.execute_statement(
                    resourceArn=cluster_arn, secretArn=secret_arn, database=database, sql=statement
                )
                break
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code not in RETRYABLE or attempt == attempts:
                    raise
                sleep(min(30.0, 2.0 * attempt))
    return len(sql)
