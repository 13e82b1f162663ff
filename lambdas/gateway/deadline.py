"""One absolute deadline per request, and AWS clients whose timeouts never reach past it.

The deadline starts when the handler receives the request: the profile's `deadline_seconds` or the
Lambda invocation's remaining time less a margin for shaping the answer, whichever is smaller.
Every AWS call checks it first (a request out of time is answered 504 `deadline_exceeded` in the
OpenAI error format) and runs on a client whose connect and read timeouts fit in the time left.

botocore fixes its timeouts per client (`Config(connect_timeout, read_timeout)`; the HTTP session
takes them when the client is built), so `TimedClients` keeps one client per timeout step, built on
first use and kept for the container's life: quarter seconds under 2 s, whole seconds above. A
call gets the largest step that is not above the time left, so no call can outlast the deadline.
Measured on the project machine: a warm client of an already-loaded service builds in 5 to 13 ms
(the first of a service in ~65 to 145 ms), so a container builds a handful of them once, where a
client per call would add that cost to every one of up to 128 embedding calls.
The read timeout bounds each wait for data on the socket; a non-streaming Converse, InvokeModel,
Retrieve, ApplyGuardrail or GetItem sends its response at once, so it bounds the call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from .errors import GatewayError

RESPONSE_MARGIN_SECONDS = 0.5  # kept after the deadline to shape the answer, log and flush metrics
MIN_CALL_SECONDS = 0.05  # with less time left no call can succeed: the deadline is exceeded
CONNECT_TIMEOUT_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 25.0  # a call made without a deadline (local tools, benchmarks)
MAX_CALL_SECONDS = 60.0  # no call waits longer, whatever the deadline says


class DeadlineExceeded(GatewayError):
    def __init__(self, budget: float, where: str) -> None:
        super().__init__(
            504,
            f"deadline exceeded: the request did not finish within the gateway's {budget:g} s "
            f"(ran out before: {where})",
            type="timeout",
            code="deadline_exceeded",
        )


@dataclass
class Deadline:
    expires_at: float
    budget: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def start(
        cls, seconds: float, *, context: Any = None, clock: Callable[[], float] = time.monotonic
    ) -> Deadline:
        """From now: `seconds`, or less when the Lambda invocation has less time left."""
        budget = seconds
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining_ms):
            budget = min(budget, remaining_ms() / 1000 - RESPONSE_MARGIN_SECONDS)
        return cls(expires_at=clock() + budget, budget=max(budget, 0.0), clock=clock)

    def remaining(self) -> float:
        return self.expires_at - self.clock()

    def capped(self, seconds: float) -> Deadline:
        """This deadline, or `seconds` from now if that comes first: for a step worth less than the
        rest of the request (a slow one gives up and leaves the rest of the time to the others)."""
        cap = self.clock() + seconds
        if cap >= self.expires_at:
            return self
        return Deadline(expires_at=cap, budget=seconds, clock=self.clock)

    def check(self, where: str) -> float:
        """The time left, or DeadlineExceeded when too little is left for `where` to succeed."""
        remaining = self.remaining()
        if remaining < MIN_CALL_SECONDS:
            raise DeadlineExceeded(self.budget, where)
        return remaining


def timeout_step(seconds: float) -> float:
    """The largest timeout step not above `seconds`: whole seconds from 2 s, quarter seconds from
    0.25 s, then 0.1 s and MIN_CALL_SECONDS."""
    if seconds >= 2:
        return float(math.floor(min(seconds, MAX_CALL_SECONDS)))
    if seconds >= 0.25:
        return math.floor(seconds * 4) / 4
    return 0.1 if seconds >= 0.1 else MIN_CALL_SECONDS


def sdk_config(timeout: float) -> Config:
    """No SDK retries (the router retries and falls back within the deadline); both timeouts fit.

    `total_max_attempts` counts the first attempt; `max_attempts` counts retries only, so the
    `max_attempts: 1` used before allowed one hidden retry, doubling a slow call's wait (botocore
    Config docstring, "retries": https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html)."""
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout),
        read_timeout=timeout,
    )


class TimedClients:
    """The clients of one AWS service, one per timeout step. `make(timeout)` builds one."""

    def __init__(self, make: Callable[[float], Any]) -> None:
        self._make = make
        self._clients: dict[float, Any] = {}

    @classmethod
    def fixed(cls, client: Any) -> TimedClients:
        """One client for every call (tests with stubs; its own timeouts apply)."""
        return cls(lambda timeout: client)

    def within(self, deadline: Deadline | None, where: str, *, cap: float | None = None) -> Any:
        """The client for a call made now: raises DeadlineExceeded when the deadline has run out,
        else its timeouts fit in the time left (and in `cap`, for calls worth less than the rest)."""
        left = deadline.check(where) if deadline is not None else DEFAULT_TIMEOUT_SECONDS
        step = timeout_step(min(left, cap) if cap is not None else left)
        client = self._clients.get(step)
        if client is None:
            client = self._clients[step] = self._make(step)
        return client


def as_timed(client: Any) -> TimedClients:
    """Accept a TimedClients or a plain client (wrapped with `TimedClients.fixed`)."""
    return client if isinstance(client, TimedClients) else TimedClients.fixed(client)
