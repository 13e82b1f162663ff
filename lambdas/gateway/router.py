"""Fallback and retries: try each target of an alias in order, retrying retryable failures with
jittered exponential backoff, all within the request's deadline (lambdas/gateway/deadline.py)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .deadline import Deadline
from .errors import GatewayError, ProviderError
from .providers.base import ChatProvider, ChatResult
from .schema import ChatCompletionRequest


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_target: int = 2
    base_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 2.0
    deadline_seconds: float = 25.0  # a request's budget when the caller starts no deadline of its own


@dataclass(frozen=True)
class Routed:
    result: ChatResult | Any  # what `call` returned (a ChatResult unless route was given a call)
    target: str
    fallbacks: int  # targets given up on before this one answered
    attempts: int


def backoff(policy: RetryPolicy, attempt: int, rng: Callable[[], float]) -> float:
    """Exponential backoff with "equal jitter": between half and all of the capped exponential step."""
    step = min(policy.max_backoff_seconds, policy.base_backoff_seconds * (2**attempt))
    return step * (0.5 + rng() / 2)


def route(
    targets: Sequence[ChatProvider],
    request: ChatCompletionRequest,
    *,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    deadline: Deadline | None = None,
    call: Callable[[ChatProvider], Any] | None = None,
) -> Routed:
    """`deadline`: the request's (started at entry); without one, `policy.deadline_seconds` from now.
    `call(target)`: what to do with a target (default: its chat answer; a stream opens it and waits
    for its first delta, so that a target failing before it has said anything is retried or
    fallen back from like any other)."""
    if deadline is None:
        deadline = Deadline.start(policy.deadline_seconds, clock=clock)
    errors: list[ProviderError] = []
    attempts = 0
    for index, target in enumerate(targets):
        for attempt in range(policy.attempts_per_target):
            deadline.check(f"attempt {attempts + 1} ({target.name})")
            attempts += 1
            try:
                result = call(target) if call else target.chat(request, deadline=deadline)
            except ProviderError as error:
                if error.client_message is not None:  # the model refused the caller's request
                    raise GatewayError(
                        400,
                        f"the model refused the request: {error.client_message}",
                        code="model_rejected_request",
                    ) from None
                if not error.retryable:
                    raise GatewayError(
                        502,
                        f"upstream model rejected the request ({error})",
                        type="upstream_error",
                        code="upstream_rejected",
                    ) from None
                errors.append(error)
                pause = backoff(policy, attempt, rng)
                if attempt + 1 < policy.attempts_per_target and pause < deadline.remaining():
                    sleep(pause)
                continue
            return Routed(result=result, target=target.name, fallbacks=index, attempts=attempts)
    reasons = "; ".join(str(e) for e in errors[-3:])
    if errors and all(e.timeout for e in errors):
        raise GatewayError(504, f"every model timed out: {reasons}", type="timeout", code="upstream_timeout")
    if errors and all(e.throttled for e in errors):
        # 429 with Retry-After: OpenAI clients wait and retry a rate limit (a 503 they treat as an
        # outage); the wait is the router's own longest backoff, rounded up to whole seconds.
        raise GatewayError(
            429,
            f"every model is throttled, retry later: {reasons}",
            type="rate_limit_error",
            code="upstream_throttled",
            headers={"Retry-After": str(math.ceil(policy.max_backoff_seconds))},
        )
    raise GatewayError(
        502, f"every model failed: {reasons}", type="upstream_error", code="upstream_unavailable"
    )
