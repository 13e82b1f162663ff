"""The provider interface every target implements, and the result types."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..deadline import Deadline
from ..schema import ChatCompletionRequest


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str  # OpenAI's: stop, length, content_filter
    input_tokens: int
    output_tokens: int
    guardrail_intervened: bool = False
    tool_calls: tuple[dict[str, Any], ...] = ()  # OpenAI tool_calls objects (finish_reason tool_calls)
    reasoning_content: str | None = None
    cached_tokens: int | None = None  # prompt tokens read from the model's prompt cache
    logprobs: dict[str, Any] | None = None
    choices: tuple[dict[str, Any], ...] = ()  # n > 1 (OpenAI-format backends): every choice as given


@dataclass(frozen=True)
class Delta:
    """One piece of a streamed answer: text, reasoning or tool-call fragments (OpenAI's delta
    `tool_calls` entries: index, and id/type/name on a call's first fragment), and at the end the
    finish reason and the token counts."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
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

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        """The answer as it is generated; ProviderError before or between deltas."""
        ...


class EmbeddingProvider(Protocol):
    name: str

    def embed(self, inputs: list[str], *, dimensions: int | None, deadline: Deadline) -> EmbeddingResult: ...
