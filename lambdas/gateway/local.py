"""Serve the gateway handler over HTTP on localhost: the adapter the tests and `make gateway-local`
use. Each HTTP request becomes the API Gateway (REST, proxy) event the Lambda would receive.

    python -m lambdas.gateway.local --config gateway.json [--port 8080] [--echo] [--keys FILE]

`--echo` swaps every model for a local echo (no AWS needed) to try the API with any OpenAI client.
Keys are checked as the deployed API checks them: `Authorization: Bearer <key>` through the same
authorizer logic (lambdas/gateway_authorizer/keys.py), a missing or unknown key answered with the
same 401 body as the API's gateway response. The key file holds hashes only; `--new-key TENANT`
adds a key and prints it once (a first start with an empty file makes one for tenant `local`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..gateway_authorizer.keys import UNAUTHORIZED, FileKeyStore, KeyStore, Unauthorized, authorize
from .errors import gateway_response

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def key_id(headers: dict[str, str]) -> str:
    """What API Gateway puts in requestContext.identity.apiKeyId: an id, never the key. Locally the
    key (x-api-key, or an OpenAI client's `Authorization: Bearer`) is hashed, so a key never becomes
    a tenant in logs and metrics."""
    lowered = {name.lower(): value for name, value in headers.items()}
    key = lowered.get("x-api-key") or lowered.get("authorization", "").removeprefix("Bearer ").strip()
    return f"local-{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else "local"


# What API Gateway passes the authorizer as methodArn, for the local API "local" and stage "api".
LOCAL_METHOD_ARN = "arn:aws:execute-api:local:000000000000:local/api/{method}{path}"


def event_for(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The proxy event; with `authorizer` (the key authorizer's answer) as API Gateway builds it: the
    authorizer's context and principalId under requestContext.authorizer, the usage-plan key's id
    as identity.apiKeyId."""
    identity = {"apiKeyId": authorizer["context"]["keyId"]} if authorizer else {"apiKeyId": key_id(headers)}
    context = {"requestId": str(uuid.uuid4()), "identity": identity}
    if authorizer:
        context["authorizer"] = {**authorizer["context"], "principalId": authorizer["principalId"]}
    return {
        "httpMethod": method,
        "path": path,
        "headers": headers,
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
        "requestContext": context,
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        # A stream is written in small pieces: without TCP_NODELAY, Nagle's algorithm holds each
        # piece until the client acknowledges the previous one (delayed ACKs: tens of ms a piece).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        path = urlsplit(self.path).path
        try:
            answer = self.server.authorize(self.command, path, headers)
        except Unauthorized:
            status, error = gateway_response("UNAUTHORIZED", UNAUTHORIZED)
            result = {
                "statusCode": status,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(error),
            }
        else:
            result = self.server.on_event(event_for(self.command, path, headers, body, answer), None)
        self.send_response(result["statusCode"])
        for key, value in (result.get("headers") or {}).items():
            self.send_header(key, value)
        if "stream" in result:  # server-sent events: each chunk as the handler yields it, then close
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in result["stream"]:
                self.wfile.write(chunk)
                self.wfile.flush()
            return
        payload = result.get("body", "").encode()
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

    def __init__(self, address: tuple[str, int], on_event: Handler, keys: KeyStore | None) -> None:
        super().__init__(address, _RequestHandler)
        self.on_event = on_event
        self.keys = keys

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> dict[str, Any] | None:
        """The key authorizer's answer (raises Unauthorized), or None when no keys are checked."""
        if self.keys is None:
            return None
        arn = LOCAL_METHOD_ARN.format(method=method, path=path)
        return authorize(headers.get("authorization"), arn, self.keys)


def serve(
    on_event: Handler, host: str = "127.0.0.1", port: int = 0, *, keys: KeyStore | None = None
) -> _Server:
    """Start serving in a background thread; `server.server_address` tells the port; `shutdown()` stops.
    `keys`: check bearer keys as the deployed API does (None: no key check, for handler tests)."""
    server = _Server((host, port), on_event, keys)
    # A short poll: shutdown() waits up to one poll interval (socketserver's default is 0.5 s).
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the genai-stack gateway on localhost.")
    parser.add_argument("--config", required=True, help="a JSON file in the GATEWAY_CONFIG format")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--echo", action="store_true", help="answer with a local echo instead of real models")
    parser.add_argument("--keys", default=".gateway-keys.json", help="the local key file (hashes only)")
    parser.add_argument(
        "--new-key", metavar="TENANT", help="add a key for TENANT to the key file and print it"
    )
    args = parser.parse_args()
    keys = FileKeyStore(Path(args.keys))
    if args.new_key or not keys.path.exists():
        tenant = args.new_key or "local"
        print(
            f"new key for tenant {tenant} (shown once; {keys.path} keeps only its hash): {keys.add(tenant)}"
        )
    with open(args.config, encoding="utf-8") as file:
        os.environ["GATEWAY_CONFIG"] = json.dumps(json.load(file))
    from . import handler  # reads GATEWAY_CONFIG at import, like a cold start

    if args.echo:
        from .echo import echo_gateway

        handler.gateway = lambda: echo_gateway(handler.SETTINGS)
    server = serve(handler.on_event, port=args.port, keys=keys)
    print(f"gateway on http://127.0.0.1:{server.server_address[1]}/v1 (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
