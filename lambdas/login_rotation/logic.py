"""Secrets Manager rotation of the Aurora vector store's Bedrock login, through the RDS Data API.

The four steps are those of every Lambda rotation function (Secrets Manager user guide, "Lambda
rotation functions": https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html):
createSecret puts a new version labelled AWSPENDING, setSecret changes the database to match it,
testSecret checks it, finishSecret moves AWSCURRENT to it. Each step is idempotent: Secrets Manager
may call a step again after a failure.

The database side runs as the cluster's admin (its Aurora-managed secret) through the Data API, so
the function needs no network path to the cluster, which has none by design:
- alternating users (Secrets Manager user guide, "Rotation strategies"): the new version names the
  login role that is not current (`bedrock_user` <-> `bedrock_user_clone`). setSecret creates the
  alternate on first use as a member of `bedrock_user`, whose rights on the schema and tables it
  inherits, and sets its password. The current credentials stay valid throughout;
- single user: the new version keeps `bedrock_user` and setSecret changes its password.

What testSecret can check: the Data API signs in with a secret's current version only
(ExecuteStatement takes a secret ARN, no version), so the pending password cannot be tried before
finishSecret. testSecret checks, as the admin, that the pending role exists, may log in and holds the
rights of `bedrock_user`; the password itself was set by setSecret's ALTER ROLE, which failed the
step if it did not run. The next Data API call with the secret (Bedrock's, or the ingestion function's
wake-up) proves it.

Passwords: GetRandomPassword without the characters that would need quoting in SQL or in a connection
string. The ALTER ROLE statement carries the password's SCRAM-SHA-256 verifier, computed here
(lambdas/pgvector_schema/logic.py scram_verifier), never the password: SCRAM-SHA-256 is the only
method the Data API supports for Aurora PostgreSQL 14 and later (Aurora user guide, "Limitations for
the Amazon RDS Data API").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from ..pgvector_schema.logic import ALTERNATE, ROLE, execute, login_statements, new_salt

PASSWORD_LENGTH = 32
# Quotes, backslash, slash, @ and whitespace: nothing that a SQL literal or a libpq URL must escape.
EXCLUDED_CHARACTERS = "'\"\\/@`:; "
Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"


class RotationError(RuntimeError):
    """A rotation request this function must not, or cannot, carry out; the message says which."""


@dataclass(frozen=True)
class Store:
    """Where the login lives: the cluster, its admin secret (Aurora-managed), the database, the login's
    own secret, and the rotation strategy from the profile."""

    cluster_arn: str
    admin_secret_arn: str
    database: str
    login_secret_arn: str
    strategy: Literal["alternating_users", "single_user"]


def next_username(current: str, strategy: str) -> str:
    """The login role the next version names."""
    if current not in (ROLE, ALTERNATE):
        raise RotationError(f"the secret names {current!r}, not the Bedrock login ({ROLE} or {ALTERNATE})")
    if strategy == "single_user":
        return ROLE
    return ROLE if current == ALTERNATE else ALTERNATE


# One row for a role that exists: may it log in, and does it hold the Bedrock login's rights?
CHECK_ROLE = "SELECT rolcanlogin, pg_has_role(oid, :role, 'USAGE') FROM pg_roles WHERE rolname = :name"


class Rotation:
    """The four steps for one store, over injected clients (secretsmanager, rds-data)."""

    def __init__(
        self,
        store: Store,
        *,
        secrets: Any,
        rds_data: Any,
        time_left: Callable[[], float],
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.rds_data = rds_data
        self.time_left = time_left
        self.sleep = sleep

    def run(self, step: Step, secret_id: str, token: str) -> str:
        """Carry out one step; returns what was done (for the log, never a secret)."""
        if secret_id != self.store.login_secret_arn:
            raise RotationError(f"this function rotates {self.store.login_secret_arn} only, not {secret_id}")
        described = self.secrets.describe_secret(SecretId=secret_id)
        # Refused only when DescribeSecret says rotation is off: the key may be absent while Secrets
        # Manager tests a new configuration (RotateSecret with RotateImmediately false).
        if described.get("RotationEnabled") is False:
            raise RotationError(f"rotation is not enabled on {secret_id}")
        stages = described.get("VersionIdsToStages", {})
        if token not in stages:
            raise RotationError(f"version {token} of {secret_id} does not exist")
        if CURRENT in stages[token]:
            return "already current"
        if PENDING not in stages[token]:
            raise RotationError(f"version {token} of {secret_id} is not pending rotation")
        steps = {
            "createSecret": self.create_pending,
            "setSecret": self.set_pending,
            "testSecret": self.check_pending,
            "finishSecret": self.make_pending_current,
        }
        return steps[step](token, stages)

    def _value(self, **version: str) -> dict[str, Any]:
        response = self.secrets.get_secret_value(SecretId=self.store.login_secret_arn, **version)
        return json.loads(response["SecretString"])

    def _sql(self, sql: str, **extra: Any) -> dict[str, Any]:
        return execute(
            self.rds_data,
            cluster_arn=self.store.cluster_arn,
            secret_arn=self.store.admin_secret_arn,
            database=self.store.database,
            sql=sql,
            time_left=self.time_left,
            sleep=self.sleep,
            **extra,
        )

    def create_pending(self, token: str, _stages: dict[str, list[str]]) -> str:
        try:
            self._value(VersionId=token, VersionStage=PENDING)
            return "pending version exists"
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        current = self._value(VersionStage=CURRENT)
        username = next_username(current["username"], self.store.strategy)
        password = self.secrets.get_random_password(
            PasswordLength=PASSWORD_LENGTH, ExcludeCharacters=EXCLUDED_CHARACTERS
        )["RandomPassword"]
        self.secrets.put_secret_value(
            SecretId=self.store.login_secret_arn,
            ClientRequestToken=token,
            SecretString=json.dumps({**current, "username": username, "password": password}),
            VersionStages=[PENDING],
        )
        return f"pending version names {username}"

    def set_pending(self, token: str, _stages: dict[str, list[str]]) -> str:
        pending = self._value(VersionId=token, VersionStage=PENDING)
        current = self._value(VersionStage=CURRENT)
        expected = next_username(current["username"], self.store.strategy)
        if pending["username"] != expected:
            raise RotationError(
                f"the pending version names {pending['username']!r}, but after {current['username']!r} "
                f"the {self.store.strategy} strategy sets {expected!r}: cancel this rotation "
                "(aws secretsmanager cancel-rotate-secret) and start a new one"
            )
        for statement in login_statements(pending["username"], pending["password"], new_salt()):
            self._sql(statement)
        return f"password set for {pending['username']}"

    def check_pending(self, token: str, _stages: dict[str, list[str]]) -> str:
        username = self._value(VersionId=token, VersionStage=PENDING)["username"]
        records = self._sql(
            CHECK_ROLE,
            parameters=[
                {"name": "role", "value": {"stringValue": ROLE}},
                {"name": "name", "value": {"stringValue": username}},
            ],
        ).get("records", [])
        if [[field.get("booleanValue") for field in record] for record in records] != [[True, True]]:
            raise RotationError(
                f"{username} does not exist, may not log in, or lacks the rights of {ROLE}: "
                "setSecret did not take effect"
            )
        return f"{username} may log in with the rights of {ROLE}"

    def make_pending_current(self, token: str, stages: dict[str, list[str]]) -> str:
        current = next(version for version, labels in stages.items() if CURRENT in labels)
        self.secrets.update_secret_version_stage(
            SecretId=self.store.login_secret_arn,
            VersionStage=CURRENT,
            MoveToVersionId=token,
            RemoveFromVersionId=current,
        )
        return f"version {token} is current"
