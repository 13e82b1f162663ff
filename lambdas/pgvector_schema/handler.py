"""Lambda entry point: provider-framework `on_event` handler that creates the pgvector schema.

ResourceProperties: ClusterArn, AdminSecretArn (the cluster's master secret, used for the DDL),
BedrockSecretArn (the login role Bedrock uses), Database, Tables (JSON list of {name, dimensions}).
Delete does nothing: the tables hold the knowledge bases' vectors and are retained with the cluster.

Create and Update first read the dimensions of the tables that exist and fail, before any change,
when one differs from the request (logic.check_dimensions says why and what to do instead); the
rollback Update, which carries the old dimensions, then finds them matching. Every Data API call
waits out a resuming cluster until this invocation's time is almost up (logic.execute).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import (
    VectorTable,
    check_dimensions,
    existing_dimensions,
    new_salt,
    run,
    statements,
)

logger = Logger(service="pgvector-schema")
# Stop waiting for a resuming cluster this long before Lambda's own timeout, to report a clear error.
SAFETY_MARGIN_SECONDS = 20.0


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dimensions: int


class _Properties(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    cluster_arn: str = Field(alias="ClusterArn", min_length=1)
    admin_secret_arn: str = Field(alias="AdminSecretArn", min_length=1)
    bedrock_secret_arn: str = Field(alias="BedrockSecretArn", min_length=1)
    database: str = Field(alias="Database", min_length=1)
    tables: list[_Table] = Field(alias="Tables")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    RequestType: Literal["Create", "Update", "Delete"]
    ResourceProperties: dict[str, Any]
    PhysicalResourceId: str | None = None


@cache
def clients() -> tuple[Any, Any]:
    return boto3.client("rds-data"), boto3.client("secretsmanager")


def _properties(raw: dict[str, Any]) -> _Properties:
    data = dict(raw)
    if isinstance(data.get("Tables"), str):
        data["Tables"] = json.loads(data["Tables"])
    return _Properties.model_validate(data)


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        parsed = _Event.model_validate(event)
        props = _properties(parsed.ResourceProperties) if parsed.RequestType != "Delete" else None
    except (ValidationError, ValueError) as error:
        raise ValueError(f"invalid custom resource event: {error}") from None
    physical_id = parsed.PhysicalResourceId or f"pgvector-schema:{event.get('LogicalResourceId', 'schema')}"
    if props is None:
        logger.info("delete: tables and vectors are kept")
        return {"PhysicalResourceId": physical_id}
    tables = [VectorTable(t.name, t.dimensions) for t in props.tables]
    rds_data, secrets = clients()

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS

    target = {
        "cluster_arn": props.cluster_arn,
        "secret_arn": props.admin_secret_arn,
        "database": props.database,
    }
    check_dimensions(tables, existing_dimensions(rds_data, time_left=time_left, **target))
    # The login's password, for the role's creation only (lambdas/login_rotation changes it later).
    login = json.loads(secrets.get_secret_value(SecretId=props.bedrock_secret_arn)["SecretString"])
    sql = statements(tables, login["password"], new_salt())
    count = run(rds_data, sql=sql, time_left=time_left, **target)
    logger.info("schema ready", extra={"tables": [t.name for t in tables], "statements": count})
    return {"PhysicalResourceId": physical_id, "Data": {"Statements": str(count)}}
