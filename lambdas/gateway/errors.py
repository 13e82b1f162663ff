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


# API Gateway's own errors, answered before the function runs, in the OpenAI format (the API's gateway
# responses, stacks/components/model_gateway.py; the local server renders the same bodies):
# (response type, status or None to keep API Gateway's, error type, code). A missing, malformed or
# unknown key is OpenAI's 401 invalid_api_key (API Gateway says 401 Unauthorized from the authorizer,
# 403 Forbidden for a key outside the usage plans); throttles and quotas are 429.
GATEWAY_RESPONSES: tuple[tuple[str, str | None, str, str], ...] = (
    ("UNAUTHORIZED", "401", "invalid_request_error", "invalid_api_key"),
    ("INVALID_API_KEY", "401", "invalid_request_error", "invalid_api_key"),
    ("ACCESS_DENIED", "403", "invalid_request_error", "access_denied"),
    ("MISSING_AUTHENTICATION_TOKEN", "403", "invalid_request_error", "missing_auth"),
    ("THROTTLED", "429", "rate_limit_error", "rate_limit_exceeded"),
    ("QUOTA_EXCEEDED", "429", "rate_limit_error", "quota_exceeded"),
    ("REQUEST_TOO_LARGE", "413", "invalid_request_error", "request_too_large"),
    ("INTEGRATION_TIMEOUT", "504", "timeout", "gateway_timeout"),
    ("DEFAULT_4XX", None, "invalid_request_error", "gateway_error"),
    ("DEFAULT_5XX", None, "server_error", "gateway_error"),
)


def gateway_response(response_type: str, message: str) -> tuple[int, dict[str, Any]]:
    """The status and body API Gateway answers for `response_type` with `message`."""
    for name, status, error_type, code in GATEWAY_RESPONSES:
        if name == response_type:
            error = GatewayError(int(status or 0), message, type=error_type, code=code)
            return error.status, error.body()
    raise KeyError(response_type)


def unknown_model(alias: str, kind: str = "", *, param: str | None = "model") -> GatewayError:
    """404 for a model id that is no alias of this gateway (`kind`: "embedding ", "image ", ...)."""
    return GatewayError(
        404,
        f"unknown {kind}model {alias!r}; GET /v1/models lists the aliases",
        param=param,
        code="model_not_found",
    )


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
