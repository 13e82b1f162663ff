"""The gateway function's runtime loop: Lambda's runtime API with response streaming, in the Python
managed runtime.

Why: API Gateway streams a REST method's answer only from a function invoked with
InvokeWithResponseStream that writes API Gateway's streaming format ("Set up a Lambda proxy
integration with payload response streaming in API Gateway":
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html),
and Lambda's Python managed runtimes do not stream (only Node.js and custom runtimes do). Of the
documented ways, this one keeps the handler a plain function of the event (tested in-process and by
the local server), needs no third-party layer pinned to a version (the Lambda Web Adapter would run
the gateway as a web server behind a Rust extension and pass the authorizer's context in headers),
and speaks the runtime API exactly as AWS documents it for custom runtimes ("Using the Lambda
runtime API for custom runtimes": https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html;
"Building a custom runtime", response streaming:
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming),
so a fake runtime API in the tests checks it over HTTP. It is started by the managed runtime's
wrapper-script hook (AWS_LAMBDA_EXEC_WRAPPER=lambdas/gateway/bootstrap, "Modifying the runtime
environment": https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html), which execs it in
place of the managed runtime's own loop, the way the Lambda Web Adapter takes over.

Per invocation: GET next; the handler's answer goes back buffered (a JSON document, as the managed
runtime would send it) or, for the routes API Gateway invokes with streaming (STREAMED_PATHS), as
`Lambda-Runtime-Function-Response-Mode: streaming` with chunked transfer encoding: API Gateway's
metadata JSON, 8 null bytes, then the body as the handler produces it. An error after the stream
began is reported in the trailers Lambda-Runtime-Function-Error-Type / -Body.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .routes import route_of

VERSION = "2018-06-01"
# The routes whose integration streams (stacks/components/model_gateway.py): their answers must be in
# API Gateway's streaming format, streamed or not.
STREAMED_PATHS = frozenset({"/v1/chat/completions"})
STREAMING_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\x00" * 8  # between the metadata JSON and the payload ("exactly 8 null bytes")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class Context:
    """The parts of Lambda's context object the gateway reads, from the next-invocation headers."""

    aws_request_id: str
    deadline_ms: int
    invoked_function_arn: str
    function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    function_version: str = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    memory_limit_in_mb: str = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    log_group_name: str = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
    log_stream_name: str = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def streamed(event: dict[str, Any]) -> bool:
    return route_of(event) in STREAMED_PATHS


def body_chunks(result: dict[str, Any]) -> Iterator[bytes]:
    """The answer's body as bytes: a handler's `stream` (an iterator of bytes) or its `body`."""
    stream = result.get("stream")
    if stream is not None:
        yield from stream
        return
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    if data:
        yield data


def streaming_prelude(result: dict[str, Any]) -> bytes:
    metadata = {"statusCode": result.get("statusCode", 200), "headers": result.get("headers") or {}}
    return json.dumps(metadata).encode() + DELIMITER


def buffered(result: dict[str, Any]) -> bytes:
    """The proxy-integration answer as the managed runtime would send it (a stream joined first)."""
    if "stream" in result:
        body = b"".join(body_chunks(result)).decode()
        result = {**{k: v for k, v in result.items() if k != "stream"}, "body": body}
    return json.dumps(result).encode()


class RuntimeApi:
    """The runtime API at AWS_LAMBDA_RUNTIME_API, one HTTP/1.1 connection per call."""

    def __init__(self, address: str) -> None:
        self.address = address

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address, timeout=timeout)

    def next(self) -> tuple[dict[str, Any], Context, dict[str, str]]:
        connection = self._connection(None)  # no timeout: "the response may be delayed"
        connection.request("GET", f"/{VERSION}/runtime/invocation/next")
        response = connection.getresponse()
        payload = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        connection.close()
        context = Context(
            aws_request_id=headers["lambda-runtime-aws-request-id"],
            deadline_ms=int(headers.get("lambda-runtime-deadline-ms", "0")),
            invoked_function_arn=headers.get("lambda-runtime-invoked-function-arn", ""),
        )
        return json.loads(payload or b"{}"), context, headers

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        connection = self._connection(30)
        connection.request("POST", path, body=body, headers=headers)
        connection.getresponse().read()
        connection.close()

    def respond(self, request_id: str, payload: bytes) -> None:
        self._post(
            f"/{VERSION}/runtime/invocation/{request_id}/response",
            payload,
            {"Content-Type": "application/json"},
        )

    def error(self, request_id: str | None, error: BaseException) -> None:
        body = json.dumps(error_document(error)).encode()
        path = (
            f"/{VERSION}/runtime/invocation/{request_id}/error"
            if request_id
            else f"/{VERSION}/runtime/init/error"
        )
        self._post(
            path,
            body,
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Unhandled"},
        )

    def stream(self, request_id: str, prelude: bytes, chunks: Iterable[bytes]) -> None:
        """POST the response in streaming mode: chunked transfer encoding, the prelude first, each
        chunk sent as it comes; an error mid-stream goes in the trailers."""
        connection = self._connection(None)
        connection.putrequest("POST", f"/{VERSION}/runtime/invocation/{request_id}/response")
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", STREAMING_CONTENT_TYPE)
        connection.putheader(
            "Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
        )
        connection.endheaders()
        trailers = b""
        try:
            connection.send(_chunk(prelude))
            for data in chunks:
                if data:
                    connection.send(_chunk(data))
        except Exception as error:  # reported to Lambda, then the loop goes on
            traceback.print_exc()  # the error the trailers report, in the function's log too
            document = base64.b64encode(json.dumps(error_document(error)).encode()).decode()
            trailers = (
                f"Lambda-Runtime-Function-Error-Type: {type(error).__name__}\r\n"
                f"Lambda-Runtime-Function-Error-Body: {document}\r\n"
            ).encode()
        try:
            connection.send(b"0\r\n" + trailers + b"\r\n")
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):  # the response was dropped: on to the next invocation
            traceback.print_exc()
        finally:
            connection.close()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def error_document(error: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_exception(error)[-5:],
    }


def serve_one(api: RuntimeApi, handler: Handler) -> None:
    event, context, headers = api.next()
    trace = headers.get("lambda-runtime-trace-id")
    if trace:  # what the managed runtime sets for X-Ray (Powertools Tracer, boto3 read it)
        os.environ["_X_AMZN_TRACE_ID"] = trace
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        result = handler(event, context)
    except Exception as error:  # Lambda records it as the invocation's error
        traceback.print_exc()
        api.error(context.aws_request_id, error)
        return
    if streamed(event):
        api.stream(context.aws_request_id, streaming_prelude(result), body_chunks(result))
    else:
        api.respond(context.aws_request_id, buffered(result))


def main() -> None:  # pragma: no cover - runs inside Lambda (tests call serve_one with a fake API)
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        from . import handler  # the cold start: configuration validated here

        on_event = handler.on_event
    except Exception as error:
        traceback.print_exc()
        api.error(None, error)
        sys.exit(1)
    while True:
        serve_one(api, on_event)


if __name__ == "__main__":  # pragma: no cover
    main()
