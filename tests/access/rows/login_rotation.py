"""Rotation of the Aurora vector store's Bedrock login (lambdas/login_rotation): the calls of the four
Secrets Manager steps (logic.py Rotation) on the login's secret, and the Data API as the admin.

- secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue, UpdateSecretVersionStage on the
  secret, GetRandomPassword on "*" (it has no resource type): the execution role of a rotation
  function (Secrets Manager user guide, "Lambda rotation function execution role permissions":
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets-required-permissions-function.html).
- PutSecretValue encrypts the new version with the secret's key (kms:GenerateDataKey) and
  GetSecretValue decrypts (kms:Decrypt), both through Secrets Manager with the secret's ARN as
  encryption context ("Secret encryption and decryption in AWS Secrets Manager").
- rds-data:ExecuteStatement on the cluster, with the admin secret read as the caller (rows/pgvector_schema.py
  cites the Data API pages).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.pgvector_schema import _secret_key, elsewhere, secret_rows

PACKAGE = "login_rotation"
HANDLERS = ("lambdas.login_rotation.handler.on_event",)
APIS = frozenset(
    {
        "secretsmanager.DescribeSecret",
        "secretsmanager.GetSecretValue",
        "secretsmanager.GetRandomPassword",
        "secretsmanager.PutSecretValue",
        "secretsmanager.UpdateSecretVersionStage",
    }
)  # and rds-data.ExecuteStatement, through lambdas/pgvector_schema/logic.py execute (bundled with it)


def rows(function: Function, deployment: Deployment) -> list[Call]:
    login = function.environment["LOGIN_SECRET_ARN"]
    admin = function.environment["ADMIN_SECRET_ARN"]
    cluster = function.environment["CLUSTER_ARN"]
    via = {"kms:ViaService": f"secretsmanager.{deployment.region}.amazonaws.com"}
    result = [
        Call("secretsmanager:DescribeSecret", login, "logic.py run", api="secretsmanager.DescribeSecret"),
        *secret_rows(
            deployment,
            login,
            "logic.py reads the current and pending versions",
            "secretsmanager.GetSecretValue",
        ),
        Call(
            "secretsmanager:PutSecretValue",
            login,
            "logic.py create_pending",
            api="secretsmanager.PutSecretValue",
        ),
        Call(
            "kms:GenerateDataKey",
            _secret_key(deployment, login),
            "create_pending: Secrets Manager encrypts the new version with the secret's key",
            context={**via, "kms:EncryptionContext:SecretARN": login},
            api="secretsmanager.PutSecretValue",
        ),
        Call(
            "secretsmanager:UpdateSecretVersionStage",
            login,
            "logic.py make_pending_current",
            api="secretsmanager.UpdateSecretVersionStage",
        ),
        Call(
            "secretsmanager:GetRandomPassword",
            "*",
            "logic.py create_pending (no resource type)",
            api="secretsmanager.GetRandomPassword",
        ),
        Call(
            "rds-data:ExecuteStatement",
            cluster,
            "logic.py set_pending / check_pending",
            api="rds-data.ExecuteStatement",
        ),
        *secret_rows(
            deployment,
            admin,
            "the Data API reads the admin secret as the caller",
            "rds-data.ExecuteStatement",
        ),
        # What it must not do: write the admin secret, or any other secret; run SQL elsewhere.
        Call("secretsmanager:PutSecretValue", admin, "the admin secret is Aurora's to rotate", expect="deny"),
        Call("secretsmanager:UpdateSecretVersionStage", admin, "not the admin secret", expect="deny"),
        Call(
            "kms:GenerateDataKey",
            _secret_key(deployment, login),
            "the key for no other secret",
            context={**via, "kms:EncryptionContext:SecretARN": admin},
            expect="deny",
        ),
        *elsewhere(deployment, "secretsmanager:PutSecretValue"),
    ]
    return result
