"""Exact-match response cache in DynamoDB. A cache failure is a miss, never an error."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import MIN_CALL_SECONDS, Deadline, as_timed
from .schema import ANSWER_OPTIONS, ChatCompletionRequest, Message

# A cache call is worth less than the model call: it gets at most this long (DynamoDB answers a
# GetItem in milliseconds), and a slow cache is a miss that leaves the rest of the deadline intact.
CACHE_TIMEOUT_SECONDS = 1.0


def cache_key(alias: str, request: ChatCompletionRequest, guardrail_version: str | None) -> str:
    """A hash of the normalised request: what changes the answer is in it, what does not (ids,
    `user`, field order, whitespace around the text) is not."""
    normalised = {
        "alias": alias,
        "guardrail": guardrail_version,
        "messages": [_message(m) for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.token_limit,
        "stop": request.stop_sequences,
        "knowledge_base": request.knowledge_base,
    }
    # Every other parameter that changes the answer, when set (so a plain request keeps its key).
    for name in ANSWER_PARAMETERS:
        value = getattr(request, name)
        if value is not None and not (name == "n" and value == 1):
            normalised[name] = value.model_dump() if hasattr(value, "model_dump") else value
    if request.tools:
        normalised["tools"] = [tool.model_dump() for tool in request.tools]
    return hashlib.sha256(json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


ANSWER_PARAMETERS = ("n", *ANSWER_OPTIONS)


def _message(message: Message) -> list[Any]:
    """[role, text] for a plain message (as before: whitespace around the text does not count); tool
    calls, tool results and images in full."""
    if message.text_only and not message.tool_calls and not message.tool_call_id:
        return [message.role, message.text.strip()]
    return [message.role, message.model_dump(mode="json", exclude_none=True)]


def cacheable(request: ChatCompletionRequest) -> bool:
    """Deterministic requests (temperature 0), or requests that opt in with `cache: true`."""
    return request.temperature == 0 or request.cache


class ResponseCache:
    """Items: {pk: key, response: JSON text, expires_at: epoch seconds (the table's TTL attribute)}.

    `client`: a DynamoDB client or a TimedClients of them (lambdas/gateway/deadline.py)."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str, Exception], None] = lambda op, error: None,
        timeout_seconds: float = CACHE_TIMEOUT_SECONDS,
    ) -> None:
        self.clients = as_timed(client)
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.on_error = on_error
        self.timeout_seconds = timeout_seconds

    def get(self, key: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        client = self.clients.within(deadline, "the cache lookup", cap=self.timeout_seconds)
        try:
            item = client.get_item(TableName=self.table, Key={"pk": {"S": key}}).get("Item")
            # DynamoDB deletes expired items lazily: an item past its TTL is a miss.
            if not item or int(item["expires_at"]["N"]) <= self.clock():
                return None
            return json.loads(item["response"]["S"])
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            self.on_error("get", error)
            return None

    def put(self, key: str, response: dict[str, Any], deadline: Deadline | None = None) -> None:
        """Skipped when the deadline is (nearly) gone: the answer is worth more than its cache entry."""
        if deadline is not None and deadline.remaining() < MIN_CALL_SECONDS:
            return
        client = self.clients.within(deadline, "the cache write", cap=self.timeout_seconds)
        try:
            client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": key},
                    "response": {"S": json.dumps(response)},
                    "expires_at": {"N": str(int(self.clock()) + self.ttl_seconds)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            self.on_error("put", error)
