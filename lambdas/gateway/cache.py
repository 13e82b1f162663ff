"""Exact-match response cache in DynamoDB. A cache failure is a miss, never an error."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.gateway.schema import ChatCompletionRequest


def cache_key(alias: str, request: ChatCompletionRequest, guardrail_version: str | None) -> str:
    """A hash of the normalised request: what changes the answer is in it, what does not (ids,
    `user`, field order, whitespace around the text) is not."""
    normalised = {
        "alias": alias,
        "guardrail": guardrail_version,
        "messages": [[m.role, m.text.strip()] for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.token_limit,
        "stop": request.stop_sequences,
        "knowledge_base": request.knowledge_base,
    }
    return hashlib.sha256(json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cacheable(request: ChatCompletionRequest) -> bool:
    """Deterministic requests (temperature 0), or requests that opt in with `cache: true`."""
    return request.temperature == 0 or request.cache


class ResponseCache:
    """Items: {pk: key, response: JSON text, expires_at: epoch seconds (the table's TTL attribute)}."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str, Exception], None] = lambda op, error: None,
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.on_error = on_error

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            item = self.client.get_item(TableName=self.table, Key={"pk": {"S": key}}).get("Item")
            # DynamoDB deletes expired items lazily: an item past its TTL is a miss.
            if not item or int(item["expires_at"]["N"]) <= self.clock():
                return None
            return json.loads(item["response"]["S"])
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            self.on_error("get", error)
            return None

    def put(self, key: str, response: dict[str, Any]) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": key},
                    "response": {"S": json.dumps(response)},
                    "expires_at": {"N": str(int(self.clock()) + self.ttl_seconds)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            self.on_error("put", error)
