"""Per-target request shaping: a bounded `max_tokens`, and the system prompt for models whose chat
templates refuse a system role. Build_gateway wraps every target in one Shaped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from .deadline import Deadline
from .providers.base import ChatProvider, ChatResult, Delta
from .schema import ChatCompletionRequest

SystemPrompt = Literal["keep", "merge"]


def bounded_max_tokens(request: ChatCompletionRequest, limit: int) -> ChatCompletionRequest:
    """`limit` when the request sets no max_tokens, and at most `limit` when it sets more: a model
    server given no max_tokens generates up to its context length, longer than the deadline."""
    wanted = request.token_limit
    tokens = min(wanted, limit) if wanted else limit
    if wanted == tokens and request.max_completion_tokens is None:
        return request
    return request.model_copy(update={"max_tokens": tokens, "max_completion_tokens": None})


def merge_system(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """The system messages' text, prepended to the first user message; the system messages go.

    The chat template of Mistral 7B Instruct v0.1 and v0.2 (Mistral's "Tokenizer V1") raises "Only
    user and assistant roles are supported!" on a system message, and Mistral's reference tokenizer
    (mistral-common) prepends the system prompt to the first user message instead (Mistral docs,
    "Tokenization", https://docs.mistral.ai/cookbook/concept-deep-dive-tokenization-templates)."""
    system = [m.text for m in request.messages if m.role == "system"]
    if not system:
        return request
    rest = [m for m in request.messages if m.role != "system"]
    first = next(i for i, m in enumerate(rest) if m.role == "user")  # the schema requires one
    rest[first] = rest[first].prefixed("\n\n".join(system))  # its images kept
    return request.model_copy(update={"messages": rest})


class Shaped:
    """A target with its own limits: every request reaches it with a bounded max_tokens and, with
    `system_prompt="merge"`, without a system message."""

    def __init__(
        self, target: ChatProvider, *, max_tokens: int, system_prompt: SystemPrompt = "keep"
    ) -> None:
        self.target = target
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.name = target.name
        self.applies_guardrail_itself = target.applies_guardrail_itself

    def shape(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        request = bounded_max_tokens(request, self.max_tokens)
        return merge_system(request) if self.system_prompt == "merge" else request

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        return self.target.chat(self.shape(request), deadline=deadline)

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        return self.target.stream(self.shape(request), deadline=deadline)
