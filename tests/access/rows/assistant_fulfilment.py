"""The customer assistant's fulfilment function (lambdas/assistant_fulfilment): reads and writes the
records table (handler.py DynamoRecords: GetItem, PutItem; Service Authorization Reference, DynamoDB:
arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}) and calls the gateway's chat
completions with SigV4 (handler.py GatewayAnswers: execute-api:Invoke on
arn:${Partition}:execute-api:${Region}:${Account}:${ApiId}/${Stage}/${Method}/${ApiSpecificResourcePath},
API Gateway developer guide, "Control access to a REST API with IAM permissions"). Nothing else of the
gateway, and no scan or delete of the records."""

from __future__ import annotations

import re

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

PACKAGE = "assistant_fulfilment"
HANDLERS = ("lambdas.assistant_fulfilment.handler.on_event",)
APIS = frozenset({"dynamodb.GetItem", "dynamodb.PutItem"})


def gateway_method(deployment: Deployment, url: str, method: str, path: str) -> str:
    """The execute-api ARN of `method path` on the API and stage of a gateway base URL
    (https://{api id}.execute-api.{region}.{suffix}/{stage}/v1)."""
    match = re.match(r"^https://([a-z0-9]+)\.execute-api\.[^/]+/([^/]+)/v1$", url)
    assert match, f"not a gateway base URL: {url}"
    api, stage = match.groups()
    return deployment.arn("execute-api", f"{api}/{stage}/{method}{path}")


def rows(function: Function, deployment: Deployment) -> list[Call]:
    table = deployment.arn("dynamodb", f"table/{function.environment['RECORDS_TABLE']}")
    url = function.environment["GATEWAY_URL"]
    return [
        Call(
            "dynamodb:GetItem", table, "an account's bill, a district's known outage", api="dynamodb.GetItem"
        ),
        Call("dynamodb:PutItem", table, "an outage report, a connection request", api="dynamodb.PutItem"),
        Call("dynamodb:Scan", table, "never the whole table", expect="deny"),
        Call("dynamodb:DeleteItem", table, "nor removes a record", expect="deny"),
        Call(
            "execute-api:Invoke",
            gateway_method(deployment, url, "POST", "/v1/chat/completions"),
            "the fallback asks the gateway (SigV4)",
        ),
        Call(
            "execute-api:Invoke",
            gateway_method(deployment, url, "POST", "/v1/embeddings"),
            "only chat completions",
            expect="deny",
        ),
        Call(
            "execute-api:Invoke",
            gateway_method(deployment, url, "GET", "/v1/models"),
            "only chat completions",
            expect="deny",
        ),
    ]
