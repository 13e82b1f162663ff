"""Lambda entry point of the gateway: API Gateway (REST, proxy) events in, OpenAI-style JSON out.

Thin: start the request's deadline, decode and size-check the body, dispatch by method and path,
turn every failure into an OpenAI-style error (4xx for the caller's mistakes, 502/503/504 for
upstream ones and for a deadline that ran out, a plain 500 with no detail for a bug of ours), and
emit metrics. Configuration is validated at cold start; AWS clients are created on first use, one
per service and timeout step (lambdas/gateway/deadline.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from . import sse
from .config import Settings, build_gateway
from .deadline import Deadline, TimedClients, sdk_config
from .errors import GatewayError, bad_request
from .metrics import EmfMetrics, record_unhandled_error
from .routes import route_of
from .service import Gateway

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME (the template scopes it to the profile)
SETTINGS = Settings.model_validate_json(os.environ.get("GATEWAY_CONFIG") or "{}")  # validated at cold start


def client_config(service: str) -> Config:
    """What a service's clients need beyond their timeouts.

    S3: Signature Version 4, which pre-signed URLs of SSE-KMS objects need (Amazon S3 API reference,
    "Authenticating Requests (AWS Signature Version 4)"; lambdas/gateway/images.py). Virtual-hosted
    addressing gives the bucket's regional host (<bucket>.s3.<region>.amazonaws.com; in us-east-1
    botocore writes <bucket>.s3.amazonaws.com, that region's own endpoint), which a bucket answers
    from its first minute (the global host may redirect a new bucket of another region, and a
    redirected pre-signed request fails its signature).

    S3 Vectors: no client-side parameter validation. The semantic cache builds both of its requests
    itself (tests validate them against the service model), and checking every float of a vector on
    every call is time the request waits for (bench/gateway.py)."""
    if service == "s3":
        return Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    if service == "s3vectors":
        return Config(parameter_validation=False)
    return Config()


@cache
def aws_client(service: str) -> TimedClients:
    """The service's clients, one per timeout step; SDK retries off (the router retries in the deadline)."""
    extra = client_config(service)
    return TimedClients(lambda timeout: boto3.client(service, config=sdk_config(timeout).merge(extra)))


@cache
def gateway() -> Gateway:
    return build_gateway(SETTINGS, aws_client)


def response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def _body(event: dict[str, Any]) -> Any:
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(data) > SETTINGS.max_body_bytes:
        raise GatewayError(
            413,
            f"the request body is {len(data)} bytes; the limit is {SETTINGS.max_body_bytes}",
            code="request_too_large",
        )
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:  # a small body can nest deeper than Python's parser recurses
        raise bad_request("the request body nests too deeply", code="invalid_json") from None


def _guarded(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A stream whose status is already sent: a bug of ours during it is logged and counted, and the
    caller gets an `error` event with no detail (as the 500 of a buffered answer)."""
    try:
        yield from chunks
    except Exception:
        logger.exception("unexpected error during a stream")
        record_unhandled_error()
        yield sse.event(GatewayError(500, "internal error", type="server_error").body())


def tenant_of(request_context: dict[str, Any]) -> str:
    """The tenant's name from the key authorizer (lambdas/gateway_authorizer), else the API key id
    API Gateway gives; never a key."""
    authorizer = request_context.get("authorizer") or {}
    identity = request_context.get("identity") or {}
    return authorizer.get("tenant") or identity.get("apiKeyId") or "anonymous"


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = Deadline.start(SETTINGS.deadline_seconds, context=context)
    context_info = event.get("requestContext") or {}
    logger.append_keys(correlation_id=context_info.get("requestId"))
    tenant = tenant_of(context_info)
    method, path = event.get("httpMethod", ""), route_of(event)
    try:
        if (method, path) == ("GET", "/v1/models"):
            return response(200, gateway().list_models())
        if method == "GET" and path.startswith("/v1/models/"):
            return response(200, gateway().get_model(path.removeprefix("/v1/models/")))
        if path in ("/v1/chat/completions", "/v1/embeddings", "/v1/images/generations", "/v1/feedback"):
            if method != "POST":
                raise GatewayError(405, f"{path} takes POST", code="method_not_allowed")
            body = _body(event)
            if SETTINGS.log_prompts:
                logger.info("request", extra={"body": body})
            if path == "/v1/chat/completions" and isinstance(body, dict) and body.get("stream") is True:
                chunks, headers = gateway().chat_stream(
                    body, tenant=tenant, metrics=EmfMetrics(), deadline=deadline
                )
                logger.info("streaming", extra={"path": path, "tenant": tenant, **headers})
                return {
                    "statusCode": 200,
                    "headers": {"Content-Type": sse.CONTENT_TYPE, "Cache-Control": "no-cache", **headers},
                    "stream": _guarded(chunks),
                }
            operation = {
                "/v1/chat/completions": gateway().chat,
                "/v1/embeddings": gateway().embeddings,
                "/v1/images/generations": gateway().generate_images,
                "/v1/feedback": gateway().rate,
            }[path]
            result, headers = operation(body, tenant=tenant, metrics=EmfMetrics(), deadline=deadline)
            logger.info("answered", extra={"path": path, "tenant": tenant, **headers})
            return response(200, result, headers)
        raise GatewayError(404, f"no route for {method} {path or '/'}", code="not_found")
    except GatewayError as error:
        logger.info("refused", extra={"status": error.status, "code": error.code})
        return response(error.status, error.body(), error.headers)
    except Exception:  # a bug of ours: log it, count it (Lambda's Errors never sees it), never show it
        logger.exception("unexpected error")
        record_unhandled_error()
        return response(500, GatewayError(500, "internal error", type="server_error").body())
