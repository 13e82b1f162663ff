"""The provider interface every target implements, and the result types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lambdas.gateway.deadline import Deadline
from lambdas.gateway.schema import ChatCompletionRequest


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str  # OpenAI's: stop, length, content_filter
    input_tokens: int
    output_tokens: int
    guardrail_intervened: bool = False


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    input_tokens: int


class ChatProvider(Protocol):
    """One target. Each call it makes checks `deadline` first and gets only the time left
    (lambdas/gateway/deadline.py); raise ProviderError on failure."""

    name: str
    applies_guardrail_itself: bool  # True: the model call enforces the guardrail (Bedrock Converse)

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult: ...


class EmbeddingProvider(Protocol):
    name: str

    def embed(self, inputs: list[str], *, dimensions: int | None, deadline: Deadline) -> EmbeddingResult: ...
