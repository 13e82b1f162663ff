"""The gateway's runtime loop (lambdas/gateway/runtime.py) against a fake of Lambda's runtime API
over HTTP, as AWS documents it: next invocation, buffered response, streamed response (chunked,
API Gateway's metadata + 8 null bytes + payload, chunks leaving as they are produced), errors."""

from __future__ import annotations

import base64
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lambdas.gateway import runtime

REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


class FakeRuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event: dict) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.event = event
        self.posts: queue.Queue = queue.Queue()  # (path, headers, body, trailers)
        self.chunks: queue.Queue = queue.Queue()  # each streamed chunk as it arrives


class _Handler(BaseHTTPRequestHandler):
    server: FakeRuntimeApi
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        assert self.path == "/2018-06-01/runtime/invocation/next"
        body = json.dumps(self.server.event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", REQUEST_ID)
        self.send_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:1:function:gw")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        trailers: dict[str, str] = {}
        if headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    break
                data = self.rfile.read(size)
                self.rfile.readline()
                parts.append(data)
                self.server.chunks.put(data)
            while (line := self.rfile.readline().strip()) != b"":
                name, _, value = line.decode().partition(": ")
                trailers[name.lower()] = value
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(headers.get("content-length", 0)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.posts.put((self.path, headers, body, trailers))

    def log_message(self, *args) -> None:
        return


@pytest.fixture
def fake_api():
    servers = []

    def start(event: dict) -> tuple[FakeRuntimeApi, runtime.RuntimeApi]:
        server = FakeRuntimeApi(event)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server, runtime.RuntimeApi(f"127.0.0.1:{server.server_address[1]}")

    yield start
    for server in servers:
        server.shutdown()


def test_a_buffered_route_answers_the_proxy_document_with_context_and_trace(fake_api):
    server, api = fake_api({"httpMethod": "GET", "path": "/v1/models"})
    seen = {}

    def handler(event, context):
        seen["remaining"] = context.get_remaining_time_in_millis()
        seen["request_id"] = context.aws_request_id
        import os

        seen["trace"] = os.environ.get("_X_AMZN_TRACE_ID")
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    runtime.serve_one(api, handler)
    path, headers, body, _ = server.posts.get(timeout=5)
    assert path == f"/2018-06-01/runtime/invocation/{REQUEST_ID}/response"
    assert json.loads(body) == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"ok": true}',
    }
    assert seen["request_id"] == REQUEST_ID
    assert seen["remaining"] > 0
    assert seen["trace"].startswith("Root=1-5bef4de7")
    assert "lambda-runtime-function-response-mode" not in headers


def test_the_chat_route_streams_metadata_delimiter_and_chunks_as_they_are_produced(fake_api):
    server, api = fake_api({"httpMethod": "POST", "path": "/v1/chat/completions"})
    release = threading.Event()

    def produce():
        yield b"data: one\n\n"
        assert release.wait(5)  # the first chunk must have left before the second is produced
        yield b"data: [DONE]\n\n"

    def handler(event, context):
        return {"statusCode": 200, "headers": {"Content-Type": "text/event-stream"}, "stream": produce()}

    worker = threading.Thread(target=runtime.serve_one, args=(api, handler))
    worker.start()
    prelude = server.chunks.get(timeout=5)
    metadata, delimiter = prelude[:-8], prelude[-8:]
    assert json.loads(metadata) == {"statusCode": 200, "headers": {"Content-Type": "text/event-stream"}}
    assert delimiter == b"\x00" * 8  # API Gateway's delimiter: exactly 8 null bytes
    assert server.chunks.get(timeout=5) == b"data: one\n\n"  # arrived while the handler still runs
    release.set()
    worker.join(5)
    _path, headers, body, trailers = server.posts.get(timeout=5)
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    assert body == prelude + b"data: one\n\ndata: [DONE]\n\n"
    assert trailers == {}


def test_a_non_streamed_answer_on_the_chat_route_still_uses_the_streaming_format(fake_api):
    server, api = fake_api({"httpMethod": "POST", "path": "/v1/chat/completions"})
    runtime.serve_one(api, lambda e, c: {"statusCode": 400, "headers": {}, "body": '{"error": {}}'})
    _, headers, body, _ = server.posts.get(timeout=5)
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert body == b'{"statusCode": 400, "headers": {}}' + b"\x00" * 8 + b'{"error": {}}'


def test_an_error_mid_stream_is_reported_in_the_trailers(fake_api):
    server, api = fake_api({"httpMethod": "POST", "path": "/v1/chat/completions"})

    def produce():
        yield b"data: one\n\n"
        raise RuntimeError("the model connection broke")

    runtime.serve_one(api, lambda e, c: {"statusCode": 200, "headers": {}, "stream": produce()})
    _, _, body, trailers = server.posts.get(timeout=5)
    assert body.endswith(b"data: one\n\n")
    assert trailers["lambda-runtime-function-error-type"] == "RuntimeError"
    document = json.loads(base64.b64decode(trailers["lambda-runtime-function-error-body"]))
    assert document["errorMessage"] == "the model connection broke"


def test_a_handler_exception_is_the_invocation_error(fake_api, capsys):
    server, api = fake_api({"httpMethod": "GET", "path": "/v1/models"})

    def handler(event, context):
        raise ValueError("boom")

    runtime.serve_one(api, handler)
    path, headers, body, _ = server.posts.get(timeout=5)
    assert path == f"/2018-06-01/runtime/invocation/{REQUEST_ID}/error"
    assert headers["lambda-runtime-function-error-type"] == "Unhandled"
    assert json.loads(body)["errorType"] == "ValueError"


def test_the_wrapper_script_starts_this_runtime():
    from pathlib import Path

    script = Path(runtime.__file__).with_name("bootstrap")
    assert script.stat().st_mode & 0o111  # Lambda runs it: it must be executable in the bundle
    assert "-m lambdas.gateway.runtime" in script.read_text()


def test_the_route_is_the_matched_resource_not_a_custom_domain_s_path(fake_api):
    """Behind a custom domain's base path mapping, `path` carries the base path; the route API Gateway
    matched is `resource` (the streamed route must still answer in the streaming format)."""
    from lambdas.gateway.routes import route_of

    event = {"httpMethod": "POST", "path": "/llm/v1/chat/completions", "resource": "/v1/chat/completions"}
    server, api = fake_api(event)
    runtime.serve_one(api, lambda e, c: {"statusCode": 200, "headers": {}, "body": "{}"})
    _, headers, _, _ = server.posts.get(timeout=5)
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    models = {
        "path": "/llm/v1/models/copywriter",
        "resource": "/v1/models/{id}",
        "pathParameters": {"id": "copywriter"},
    }
    assert route_of(models) == "/v1/models/copywriter"
    assert route_of({"path": "/v1/models/"}) == "/v1/models"  # the local server's events
