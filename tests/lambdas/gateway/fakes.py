"""Test doubles for the gateway: scripted providers, a recording metrics sink, a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.base import ChatResult, EmbeddingResult
from lambdas.gateway.providers.http_pool import Response
from lambdas.gateway.service import Usage


class ScriptedChat:
    """Answers from a script: each item is a ChatResult to return or a ProviderError to raise."""

    applies_guardrail_itself = True

    def __init__(
        self,
        name: str,
        *script: ChatResult | ProviderError,
        clock: FakeClock | None = None,
        cost: float = 0.0,
    ):
        self.name = name
        self.script = list(script)
        self.calls = 0
        self.requests = []
        self.clock = clock
        self.cost = cost
        self.time_left: list[float] = []  # the deadline's remaining time at each call

    def chat(self, request, *, deadline) -> ChatResult:
        self.calls += 1
        self.requests.append(request)
        self.time_left.append(deadline.remaining())
        if self.clock is not None:
            self.clock.now += self.cost
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, ProviderError):
            raise step
        return step


class FixedEmbeddings:
    name = "bedrock:amazon.titan-embed-text-v2:0"

    def embed(self, inputs, *, dimensions, deadline) -> EmbeddingResult:
        size = dimensions or 4
        return EmbeddingResult(
            vectors=[[float(len(t))] * size for t in inputs], input_tokens=sum(len(t) for t in inputs)
        )


@dataclass
class RecordingMetrics:
    records: list[tuple[Usage, str]] = field(default_factory=list)

    def record(self, usage: Usage, *, tenant: str) -> None:
        self.records.append((usage, tenant))


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def answer(text: str = "Hello!", *, intervened: bool = False) -> ChatResult:
    return ChatResult(
        text=text,
        finish_reason="content_filter" if intervened else "stop",
        input_tokens=12,
        output_tokens=3,
        guardrail_intervened=intervened,
    )


THROTTLED = ProviderError("t: ThrottlingException", retryable=True, throttled=True)
SERVER_ERROR = ProviderError("t: InternalServerException", retryable=True)
TIMEOUT = ProviderError("t: timed out", retryable=True, timeout=True)
REJECTED = ProviderError("t: ValidationException", retryable=False)


class ScriptedPool:
    """Stands in for HttpPool in OpenAIHttpChat: records each call, answers (status, body) or raises."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls: list[dict] = []

    def request(self, method, url, *, body=None, headers=None, timeout):
        self.calls.append(
            {"method": method, "url": url, "body": body, "headers": headers, "timeout": timeout}
        )
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        status, payload = self.outcome
        return Response(status=status, reason="", headers={}, body=payload)
