"""Errors the gateway returns, in the OpenAI error format, and provider failures it reasons about."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """A request the gateway answers with an error: HTTP status + OpenAI-style error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})  # e.g. Retry-After on a 429
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


class ProviderError(Exception):
    """A target failed. `retryable`: throttling, 5xx or timeout (try again, then fall back);
    otherwise the request itself is wrong for the target (4xx, no fallback).
    `client_message`: the model itself refused the request as the caller's error (a 4xx from the
    model server): the caller gets a 400 with the model's own message instead of a 502."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        throttled: bool = False,
        timeout: bool = False,
        client_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.throttled = throttled
        self.timeout = timeout
        self.client_message = client_message
