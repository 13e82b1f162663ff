"""Serve the gateway handler over HTTP on localhost: the adapter the tests and `make gateway-local`
use. Each HTTP request becomes the API Gateway (REST, proxy) event the Lambda would receive.

    python -m lambdas.gateway.local --config gateway.json [--port 8080] [--echo]

`--echo` swaps every model for a local echo (no AWS needed) to try the API with any OpenAI client.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def key_id(headers: dict[str, str]) -> str:
    """What API Gateway puts in requestContext.identity.apiKeyId: an id, never the key. Locally the
    key (x-api-key, or an OpenAI client's `Authorization: Bearer`) is hashed, so a key never becomes
    a tenant in logs and metrics."""
    lowered = {name.lower(): value for name, value in headers.items()}
    key = lowered.get("x-api-key") or lowered.get("authorization", "").removeprefix("Bearer ").strip()
    return f"local-{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else "local"


def event_for(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "path": path,
        "headers": headers,
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "identity": {"apiKeyId": key_id(headers)},
        },
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        result = self.server.on_event(event_for(self.command, urlsplit(self.path).path, headers, body), None)
        payload = result.get("body", "").encode()
        self.send_response(result["statusCode"])
        for key, value in (result.get("headers") or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the handler logs as JSON
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of parallel clients (a load test, an eval
    # run) had connections refused before a thread could take them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], on_event: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self.on_event = on_event


def serve(on_event: Handler, host: str = "127.0.0.1", port: int = 0) -> _Server:
    """Start serving in a background thread; `server.server_address` tells the port; `shutdown()` stops."""
    server = _Server((host, port), on_event)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the genai-stack gateway on localhost.")
    parser.add_argument("--config", required=True, help="a JSON file in the GATEWAY_CONFIG format")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--echo", action="store_true", help="answer with a local echo instead of real models")
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as file:
        os.environ["GATEWAY_CONFIG"] = json.dumps(json.load(file))
    from lambdas.gateway import handler  # reads GATEWAY_CONFIG at import, like a cold start

    if args.echo:
        from lambdas.gateway.echo import echo_gateway

        handler.gateway = lambda: echo_gateway(handler.SETTINGS)
    server = serve(handler.on_event, port=args.port)
    print(f"gateway on http://127.0.0.1:{server.server_address[1]}/v1 (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
