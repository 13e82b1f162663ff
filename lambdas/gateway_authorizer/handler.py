"""Lambda (TOKEN) authorizer of the gateway: `Authorization: Bearer <key>` -> the tenant and the
usage-plan key API Gateway meters. Thin: the logic is lambdas/gateway_authorizer/keys.py.

API Gateway caches the answer per key (the authorizer's TTL), so the key table is read once per key
and TTL, not per request. An unknown key raises "Unauthorized": API Gateway answers 401 (the
gateway response UNAUTHORIZED, in the OpenAI error format). The key is never logged: only whether
the lookup found a tenant.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from .keys import UNAUTHORIZED, DynamoKeyStore, KeyStore, Unauthorized, authorize

logger = Logger()


@cache
def key_store() -> KeyStore:
    return DynamoKeyStore(boto3.client("dynamodb"), os.environ["KEY_TABLE"])


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        answer = authorize(event.get("authorizationToken"), event.get("methodArn", ""), key_store())
    except Unauthorized:
        logger.info("refused: unknown key")
        raise Exception(UNAUTHORIZED) from None  # API Gateway reads this exact message
    logger.info("allowed", extra={"tenant": answer["context"]["tenant"], "key_id": answer["principalId"]})
    return answer
