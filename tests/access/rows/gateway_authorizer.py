"""The gateway's key authorizer (lambdas/gateway_authorizer): one call, dynamodb GetItem on the key
table (keys.py DynamoKeyStore.lookup), on
arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName} (Service Authorization Reference,
Amazon DynamoDB: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
The table is encrypted with the platform key: DynamoDB uses it on the caller's behalf, so the caller may
need kms:Decrypt through DynamoDB (kms:ViaService dynamodb.<region>.amazonaws.com; DynamoDB developer
guide, "Encryption at rest: how it works":
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.custom_model_deployment import _platform_key

PACKAGE = "gateway_authorizer"
HANDLERS = ("lambdas.gateway_authorizer.handler.on_event",)
APIS = frozenset({"dynamodb.GetItem"})


def rows(function: Function, deployment: Deployment) -> list[Call]:
    table = deployment.arn("dynamodb", f"table/{function.environment['KEY_TABLE']}")
    key = _platform_key(deployment)
    via_dynamodb = {"kms:ViaService": f"dynamodb.{deployment.region}.amazonaws.com"}
    return [
        Call("dynamodb:GetItem", table, "keys.py DynamoKeyStore.lookup", api="dynamodb.GetItem"),
        Call("kms:Decrypt", key, "the key table's key, through DynamoDB", context=via_dynamodb),
        Call(
            "dynamodb:PutItem",
            table,
            "the authorizer never writes keys (genai-stack keys does)",
            expect="deny",
        ),
        Call("dynamodb:Scan", table, "nor lists them", expect="deny"),
        Call(
            "dynamodb:GetItem",
            deployment.arn("dynamodb", "table/another-table"),
            "only the key table",
            expect="deny",
        ),
        Call("kms:Decrypt", key, "the key only through DynamoDB, not directly", expect="deny"),
    ]
