"""Targets that speak the OpenAI chat format: SageMaker endpoints (the messages API of the LMI and
TGI containers) and self-hosted OpenAI-compatible servers (vLLM, TGI) behind the internal ALB."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.gateway.deadline import Deadline, as_timed
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.aws_errors import model_server_error, provider_error
from lambdas.gateway.providers.base import ChatResult
from lambdas.gateway.schema import ChatCompletionRequest


def openai_body(request: ChatCompletionRequest, model: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.text} for m in request.messages],
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
    return body


def parse_openai(target: str, payload: bytes) -> ChatResult:
    try:
        data = json.loads(payload)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return ChatResult(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, IndexError, TypeError):
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


class OpenAIHttpChat:
    """POST <base_url>/v1/chat/completions on an internal, OpenAI-compatible server."""

    applies_guardrail_itself = False

    def __init__(self, *, base_url: str, model: str, opener: Any = urllib.request.urlopen) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model = model
        self.name = f"openai_http:{model}"
        self.opener = opener

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        timeout = deadline.check(self.name)  # urllib takes a timeout per call: the exact time left
        data = json.dumps(openai_body(request, self.model)).encode()
        headers = {"Content-Type": "application/json"}
        http_request = urllib.request.Request(self.url, data=data, headers=headers)  # noqa: S310 - http(s) checked in __init__
        try:
            with self.opener(http_request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            try:
                detail = error.read()
            except (OSError, AttributeError):
                detail = b""
            raise model_server_error(self.name, error.code, detail) from None
        except TimeoutError:
            raise ProviderError(f"{self.name}: timed out", retryable=True, timeout=True) from None
        except (urllib.error.URLError, OSError) as error:
            raise ProviderError(f"{self.name}: unreachable ({error})", retryable=True) from None
        return parse_openai(self.name, payload)
