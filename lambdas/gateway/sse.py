"""Server-sent events, both ways: reading an OpenAI-compatible model server's stream (`data: {...}`
events, `data: [DONE]` at the end) and writing the gateway's own (OpenAI's chat.completion.chunk
objects). Framing: "text/event-stream", each event `data: <json>` and a blank line (HTML Living
Standard, server-sent events; the OpenAI API reference, "Streaming": chat.completion.chunk)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import GatewayError, ProviderError
from .providers.base import Delta

DONE = b"data: [DONE]\n\n"
CONTENT_TYPE = "text/event-stream"


def event(document: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(document, separators=(",", ":")).encode() + b"\n\n"


def events(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON documents of a `data:` event stream, whatever the chunking of the bytes; stops at
    [DONE]. Comments (`:`) and other fields (event:, id:, retry:) are skipped."""
    buffer = b""
    data: list[bytes] = []
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
            elif not line and data:
                payload, data = b"\n".join(data), []
                if payload.strip() == b"[DONE]":
                    return
                yield json.loads(payload)
    if data and b"\n".join(data).strip() != b"[DONE]":
        yield json.loads(b"\n".join(data))


def openai_deltas(target: str, chunks: Iterable[bytes]) -> Iterator[Delta]:
    """An OpenAI-compatible server's chat.completion.chunk stream as Deltas (the first choice; a
    stream asks for one). An `error` event (vLLM, TGI) is a ProviderError."""
    try:
        for document in events(chunks):
            if "error" in document:
                error = document["error"]
                message = error.get("message", error) if isinstance(error, dict) else error
                raise ProviderError(f"{target}: {message}", retryable=False)
            for choice in document.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                piece = Delta(
                    text=delta.get("content") or "",
                    reasoning=reasoning if isinstance(reasoning, str) else "",
                    tool_calls=tuple(delta.get("tool_calls") or ()),
                    finish_reason=choice.get("finish_reason"),
                )
                if piece != Delta():
                    yield piece
            usage = document.get("usage")
            if usage:
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                yield Delta(
                    input_tokens=int(usage.get("prompt_tokens", 0)),
                    output_tokens=int(usage.get("completion_tokens", 0)),
                    cached_tokens=int(cached) if cached is not None else None,
                )
    except (ValueError, TypeError, AttributeError) as error:
        raise ProviderError(
            f"{target}: the stream is not OpenAI chat.completion.chunk events ({error})", retryable=True
        ) from None


# -- the gateway's own stream ---------------------------------------------------------------------
@dataclass
class Opened:
    """A target's stream whose first delta has arrived (route() treats a target that fails before
    that like any failed call: retry, then fall back); iterating gives that delta, then the rest."""

    first: Delta | None
    rest: Iterator[Delta]

    @classmethod
    def of(cls, stream: Iterator[Delta]) -> Opened:
        iterator = iter(stream)
        return cls(first=next(iterator, None), rest=iterator)

    def __iter__(self) -> Iterator[Delta]:
        if self.first is not None:
            yield self.first
        yield from self.rest


@dataclass
class Answered:
    """What a finished stream did, for metrics."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    guardrail_intervened: bool = False
    first_at: float | None = None  # clock() when the first content left


def _chunk(ident: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    return event(
        {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def _usage_event(ident: str, created: int, model: str, usage: dict[str, Any]) -> bytes:
    """stream_options.include_usage: the last chunk, with no choices and the usage."""
    return event(
        {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
    )


def _usage(answer: Answered) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }
    if answer.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cached_tokens}
    return usage


def chunks(
    deltas: Iterable[Delta],
    *,
    model: str,
    include_usage: bool,
    clock: Callable[[], float],
    on_end: Callable[[Answered], None],
    ident: str | None = None,
) -> Iterator[bytes]:
    """The gateway's events for a target's deltas: a first chunk with the role, one per delta with
    content, a last one with the finish reason, the usage (stream_options.include_usage), [DONE].
    A failure after the first byte (the status is sent) becomes an `error` event, and the stream
    ends without [DONE]. `on_end` gets the totals either way (metrics), before the last event."""
    ident, created = ident or f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    answer, finish = Answered(), None
    yield _chunk(ident, created, model, {"role": "assistant", "content": ""})
    try:
        for delta in deltas:
            content: dict[str, Any] = {}
            if delta.text:
                content["content"] = delta.text
            if delta.reasoning:
                content["reasoning_content"] = delta.reasoning
            if delta.tool_calls:
                content["tool_calls"] = list(delta.tool_calls)
            if content:
                if answer.first_at is None:
                    answer.first_at = clock()
                yield _chunk(ident, created, model, content)
            finish = delta.finish_reason or finish
            answer.guardrail_intervened = answer.guardrail_intervened or delta.guardrail_intervened
            if delta.input_tokens is not None:
                answer.input_tokens = delta.input_tokens
            if delta.output_tokens is not None:
                answer.output_tokens = delta.output_tokens
            if delta.cached_tokens is not None:
                answer.cached_tokens = delta.cached_tokens
    except (ProviderError, GatewayError) as error:
        on_end(answer)  # before the last event: a caller that has read it may look at the metrics
        yield event(
            {
                "error": {
                    "message": f"the model failed during the answer: {error}",
                    "type": "upstream_error",
                    "param": None,
                    "code": "upstream_stream_error",
                }
            }
        )
        return
    yield _chunk(ident, created, model, {}, finish or "stop")
    if include_usage:
        yield _usage_event(ident, created, model, _usage(answer))
    on_end(answer)
    yield DONE


def whole(response: dict[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    """A finished chat.completion (cached, grounded) as a stream: one chunk with all of it."""
    ident, created, model = response["id"], response["created"], response["model"]
    (choice,) = response["choices"][:1]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
    if message.get("reasoning_content"):
        delta["reasoning_content"] = message["reasoning_content"]
    yield _chunk(ident, created, model, delta)
    last = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
        **{
            k: v
            for k, v in response.items()
            if k not in ("id", "object", "created", "model", "choices", "usage")
        },
    }
    yield event(last)
    if include_usage:
        yield _usage_event(ident, created, model, response["usage"])
    yield DONE
