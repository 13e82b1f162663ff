"""Targets that speak the OpenAI chat format: SageMaker endpoints (the messages API of the LMI and
TGI containers) and self-hosted OpenAI-compatible servers (vLLM, TGI) behind the internal ALB."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..deadline import Deadline, as_timed
from ..errors import ProviderError
from ..schema import ANSWER_OPTIONS, ChatCompletionRequest, Message
from ..sse import openai_deltas
from .aws_errors import model_server_error, provider_error
from .base import ChatResult, Delta
from .http_pool import HttpPool, shared_pool

# Forwarded as the caller sent them when set (vLLM's OpenAI-compatible server and the messages API of
# the LMI and TGI containers take the OpenAI names). `user` is not: it identifies the caller's end
# user to OpenAI's abuse monitoring, the models here have no use for it, and a model server's logs are
# no place for it (the gateway logs a hash of it instead).
FORWARDED = ANSWER_OPTIONS


def openai_message(message: Message) -> dict[str, Any]:
    """Text-only content is sent as one string (what every chat template takes); content with images
    as the OpenAI parts, data URLs and web URLs as given (the model server resolves them)."""
    if message.content is None:
        content: Any = None
    elif message.text_only:
        content = message.text
    else:
        # cache_control is a Bedrock prompt-cache hint (vLLM caches prefixes by itself): not sent on.
        content = [part.model_dump(exclude_none=True, exclude={"cache_control"}) for part in message.content]
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def openai_body(request: ChatCompletionRequest, model: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [openai_message(m) for m in request.messages],
        "temperature": request.temperature,
    }
    if model:
        body["model"] = model
    if request.token_limit:
        body["max_tokens"] = request.token_limit
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.n > 1:
        body["n"] = request.n
    if request.tools:
        body["tools"] = [tool.model_dump(exclude_none=True) for tool in request.tools]
    for name in FORWARDED:
        value = getattr(request, name)
        if value is not None:
            body[name] = value.model_dump() if hasattr(value, "model_dump") else value
    return body


def streaming_body(request: ChatCompletionRequest, model: str | None = None) -> dict[str, Any]:
    """The body for a streamed answer; the usage comes as the last chunk (`stream_options`,
    OpenAI's and vLLM's)."""
    return {**openai_body(request, model), "stream": True, "stream_options": {"include_usage": True}}


def _choice(choice: dict[str, Any]) -> tuple[str, str, tuple[dict[str, Any], ...], str | None]:
    message = choice["message"]
    calls = tuple(message.get("tool_calls") or ())
    # vLLM's reasoning parsers answer `reasoning_content` (newer releases also `reasoning`).
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish = choice.get("finish_reason") or ("tool_calls" if calls else "stop")
    return message.get("content") or "", finish, calls, reasoning if isinstance(reasoning, str) else None


def parse_openai(target: str, payload: bytes) -> ChatResult:
    try:
        data = json.loads(payload)
        choices = data["choices"]
        text, finish, calls, reasoning = _choice(choices[0])
        usage = data.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        return ChatResult(
            text=text,
            finish_reason=finish,
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            tool_calls=calls,
            reasoning_content=reasoning,
            cached_tokens=int(cached) if cached is not None else None,
            logprobs=choices[0].get("logprobs"),
            choices=tuple(choices) if len(choices) > 1 else (),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ProviderError(f"{target}: response is not an OpenAI chat completion", retryable=True) from None


class SageMakerChat:
    applies_guardrail_itself = False

    def __init__(self, client: Any, *, endpoint: str, inference_component: str | None = None) -> None:
        self.clients = as_timed(client)
        self.endpoint = endpoint
        self.inference_component = inference_component
        self.name = f"sagemaker:{endpoint}"

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        call: dict[str, Any] = {
            "EndpointName": self.endpoint,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(openai_body(request)),
        }
        if self.inference_component:
            call["InferenceComponentName"] = self.inference_component
        client = self.clients.within(deadline, self.name)
        try:
            response = client.invoke_endpoint(**call)
        except (ClientError, BotoCoreError) as error:
            raise provider_error(self.name, error) from None
        return parse_openai(self.name, response["Body"].read())

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        """InvokeEndpointWithResponseStream: the container's server-sent events arrive in PayloadPart
        events, cut anywhere ("InvokeEndpointWithResponseStream", SageMaker API reference:
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html);
        ModelStreamError and InternalStreamFailure end it with an error."""
        call: dict[str, Any] = {
            "EndpointName": self.endpoint,
            "ContentType": "application/json",
            "Accept": "text/event-stream",
            "Body": json.dumps(streaming_body(request)),
        }
        if self.inference_component:
            call["InferenceComponentName"] = self.inference_component
        client = self.clients.within(deadline, self.name)
        try:
            parts = client.invoke_endpoint_with_response_stream(**call)["Body"]
            yield from openai_deltas(self.name, _payload_bytes(self.name, parts))
        except (ClientError, BotoCoreError) as error:  # EventStreamError is a ClientError
            raise provider_error(self.name, error) from None


def _payload_bytes(target: str, parts: Any) -> Iterator[bytes]:
    for part in parts:
        if "PayloadPart" in part:
            yield part["PayloadPart"].get("Bytes", b"")
        else:
            name, detail = next(iter(part.items()))
            raise ProviderError(f"{target}: {name} ({detail.get('Message', detail)})", retryable=False)


class OpenAIHttpChat:
    """POST <base_url>/v1/chat/completions on an internal, OpenAI-compatible server."""

    applies_guardrail_itself = False

    def __init__(self, *, base_url: str, model: str, pool: HttpPool | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model = model
        self.name = f"openai_http:{model}"
        # Kept-alive connections, one pool per process: it outlives the request and, in a warm
        # Lambda, the invocation (lambdas/gateway/providers/http_pool.py).
        self.pool = pool if pool is not None else shared_pool()

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        timeout = deadline.check(self.name)  # the pool takes a timeout per call: the exact time left
        data = json.dumps(openai_body(request, self.model)).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            response = self.pool.request("POST", self.url, body=data, headers=headers, timeout=timeout)
        except TimeoutError:
            raise ProviderError(f"{self.name}: timed out", retryable=True, timeout=True) from None
        except (OSError, http.client.HTTPException) as error:
            raise ProviderError(f"{self.name}: unreachable ({error!r})", retryable=True) from None
        if response.status >= 400:
            raise model_server_error(self.name, response.status, response.body)
        if response.status >= 300:  # no redirects on an internal hop: our configuration
            raise ProviderError(f"{self.name}: answered HTTP {response.status}", retryable=True)
        return parse_openai(self.name, response.body)

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        """The server's own stream (`stream: true`), read as it arrives on a pooled connection."""
        timeout = deadline.check(self.name)
        data = json.dumps(streaming_body(request, self.model)).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        try:
            with self.pool.stream("POST", self.url, body=data, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    raise model_server_error(self.name, response.status, response.read())
                if response.status >= 300:
                    raise ProviderError(f"{self.name}: answered HTTP {response.status}", retryable=True)
                yield from openai_deltas(self.name, response.chunks())
                response.read()  # what follows [DONE] (the chunked body's end): the connection is reused
        except TimeoutError:
            raise ProviderError(f"{self.name}: timed out", retryable=True, timeout=True) from None
        except (OSError, http.client.HTTPException) as error:
            raise ProviderError(f"{self.name}: unreachable ({error!r})", retryable=True) from None
