#!/usr/bin/env python3
"""Gateway benchmarks (one run, figures as ratios; `make bench` runs it after bench/synth.py).

1. Warm overhead: the whole handler (event parsing, validation, routing, response, EMF metrics)
   over the bare provider call with the same stub, median per request.
2. Cold start: importing the handler, as a ratio to importing boto3 and creating the
   bedrock-runtime client (each in a fresh interpreter; interpreter start-up subtracted).
3. Cache-hit path: a request answered from the DynamoDB cache (moto server over HTTP on loopback)
   against one that misses and writes.
4. Streamed time to first token: a local OpenAI-compatible backend streaming its first event at
   once, asked directly and through the gateway (`make gateway-local`'s server, a self-hosted
   target on the pooled connection): the median time from sending the request to reading the first
   content event, and the gateway's addition (target < 5 ms).
5. Keys: the same request through the local server with and without the key check (the key
   authorizer's logic on a key file), and the authorizer's answer alone.
6. Semantic cache on a miss: a request to an alias with the semantic cache against the same request
   without it, each a miss (a new question and tenant every time), median: the lookup's own work
   (normalising and hashing the question and its scope, building, signing and parsing QueryVectors
   through the botocore s3vectors client the handler builds), and with the miss's PutVectors. The
   embedding model answers at once and the store in-process with nothing to search
   (tests/support/s3vectors.py), its time measured and subtracted, so their latency is excluded
   (target for the lookup < 2 ms).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
CONFIG = {"chat": {"copy": [{"kind": "bedrock", "model": "amazon.nova-lite-v1:0"}]}}
os.environ["GATEWAY_CONFIG"] = json.dumps(CONFIG)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # the per-request INFO lines would dominate the output
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log

from lambdas.gateway import handler  # noqa: E402 - after the environment it reads at import
from lambdas.gateway.cache import ResponseCache  # noqa: E402
from lambdas.gateway.local import event_for  # noqa: E402
from lambdas.gateway.providers.base import ChatResult  # noqa: E402
from lambdas.gateway.schema import ChatCompletionRequest  # noqa: E402
from lambdas.gateway.service import Gateway  # noqa: E402

BODY = {
    "model": "copy",
    "messages": [{"role": "user", "content": "Write a two-line slogan for a savings account."}],
    "temperature": 0,
    "max_tokens": 100,
}


class StubChat:
    """Returns a fixed answer immediately: the 'provider call' both sides pay for."""

    name = "bedrock:stub"
    applies_guardrail_itself = True
    result = ChatResult(
        text="Save a little, every day.", finish_reason="stop", input_tokens=20, output_tokens=8
    )

    def chat(self, request, *, deadline):
        return self.result


def median_us(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def warm_overhead(repeat: int = 3000) -> tuple[float, float]:
    stub = StubChat()
    handler.gateway = lambda: Gateway(chat_routes={"copy": [stub]}, embedding_routes={})
    event = event_for("POST", "/v1/chat/completions", {}, json.dumps(BODY).encode())
    request = ChatCompletionRequest.model_validate(BODY)
    with contextlib.redirect_stdout(io.StringIO()) as sink:  # EMF and logs go to stdout in Lambda
        for _ in range(200):
            handler.on_event(event, None)  # warm up
        full = median_us(lambda: handler.on_event(event, None), repeat)
        sink.truncate(0)
    bare = median_us(lambda: stub.chat(request, deadline=None), repeat)
    return full, bare


def import_seconds(code: str, runs: int = 7) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start() -> tuple[float, float]:
    baseline = import_seconds("pass")
    gateway_import = import_seconds("import lambdas.gateway.handler") - baseline
    boto_client = (
        import_seconds("import boto3; boto3.client('bedrock-runtime', region_name='us-east-1')") - baseline
    )
    return gateway_import, boto_client


def cache_path(repeat: int = 200) -> tuple[float, float]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        dynamodb = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto's local endpoint
        )
        dynamodb.create_table(
            TableName="cache",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        cache = ResponseCache(dynamodb, table="cache", ttl_seconds=3600)
        service = Gateway(chat_routes={"copy": [StubChat()]}, embedding_routes={}, cache=cache)

        class NoMetrics:
            def record(self, usage, *, tenant):
                return None

        counter = iter(range(10**9))

        def miss():
            body = {**BODY, "messages": [{"role": "user", "content": f"question {next(counter)}"}]}
            service.chat(body, tenant="bench", metrics=NoMetrics())

        service.chat(BODY, tenant="bench", metrics=NoMetrics())  # fill
        hit = median_us(lambda: service.chat(BODY, tenant="bench", metrics=NoMetrics()), repeat)
        missed = median_us(miss, repeat)
        return hit, missed
    finally:
        server.stop()


FIRST_EVENT = (
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Save"},"finish_reason":null}]}\n\n'
)
REST_EVENTS = (
    b'data: {"choices":[{"index":0,"delta":{"content":" more"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)


def streaming_backend():
    """A loopback OpenAI-compatible server: the first event at once, the rest 20 ms later."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            import socket

            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part, pause in ((FIRST_EVENT, 0.02), (REST_EVENTS, 0)):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
                time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def first_content_ms(url: str, body: dict, headers: dict | None = None) -> float:
    """Send a streamed request; the time until the first event with content has been read."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    data = json.dumps(body).encode()
    start = time.perf_counter()
    connection.request(
        "POST", parts.path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    seen = b""
    while b'"content":"S' not in seen.replace(b" ", b""):
        data = response.read1(65536)  # what has arrived (a chunked body's readline waits for the next chunk)
        if not data:
            raise RuntimeError("the stream ended without content")
        seen += data
    elapsed = time.perf_counter() - start
    response.read()
    connection.close()
    return elapsed * 1000


def streamed_ttft(repeat: int = 150) -> tuple[float, float]:
    from lambdas.gateway.local import serve
    from lambdas.gateway.providers.openai_format import OpenAIHttpChat

    backend = streaming_backend()
    backend_url = f"http://127.0.0.1:{backend.server_address[1]}"
    target = OpenAIHttpChat(base_url=backend_url, model="m")
    handler.gateway = lambda: Gateway(chat_routes={"copy": [target]}, embedding_routes={})
    server = serve(handler.on_event)
    body = {**BODY, "stream": True}
    direct_body = {**body, "model": "m"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for _ in range(20):  # warm up both paths
                first_content_ms(f"{backend_url}/v1/chat/completions", direct_body)
                first_content_ms(f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions", body)
            direct = statistics.median(
                first_content_ms(f"{backend_url}/v1/chat/completions", direct_body) for _ in range(repeat)
            )
            through = statistics.median(
                first_content_ms(f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions", body)
                for _ in range(repeat)
            )
    finally:
        server.shutdown()
        backend.shutdown()
    return through, direct


def key_check(repeat: int = 300) -> tuple[float, float, float]:
    """(request with the key check, without, the authorizer's answer alone) in ms (median)."""
    import tempfile
    import urllib.request

    from lambdas.gateway.local import serve
    from lambdas.gateway_authorizer.keys import FileKeyStore, authorize, key_hash

    handler.gateway = lambda: Gateway(chat_routes={"copy": [StubChat()]}, embedding_routes={})
    with tempfile.TemporaryDirectory() as directory:
        store = FileKeyStore(Path(directory) / "keys.json")
        key = store.add("bench")
        keyed, open_ = serve(handler.on_event, keys=store), serve(handler.on_event)

        def get(server) -> None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_address[1]}/v1/models",
                headers={"Authorization": f"Bearer {key}"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                response.read()

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                for _ in range(50):
                    get(keyed)
                    get(open_)
                with_keys = median_us(lambda: get(keyed), repeat) / 1000
                without = median_us(lambda: get(open_), repeat) / 1000
            arn = "arn:aws:execute-api:us-east-1:123456789012:abc/api/GET/v1/models"
            store.lookup(key_hash(key))
            alone = median_us(lambda: authorize(f"Bearer {key}", arn, store), 3000) / 1000
        finally:
            keyed.shutdown()
            open_.shutdown()
    return with_keys, without, alone


class InstantEmbeddings:
    """An embedding model that answers at once: its latency is not the gateway's."""

    name = "bedrock:amazon.titan-embed-text-v2:0"

    def embed(self, inputs, *, dimensions, deadline):
        from lambdas.gateway.providers.base import EmbeddingResult

        return EmbeddingResult(vectors=[[0.03125] * dimensions for _ in inputs], input_tokens=12)


def semantic_miss(repeat: int = 500) -> tuple[float, float, float]:
    """Medians of: a miss with the cache, without it, and with the lookup alone (no write); each less
    the time the in-process store spent answering."""
    from lambdas.gateway.semantic_cache import AliasPolicy, SemanticCache
    from tests.support.s3vectors import S3VectorsFake

    store = S3VectorsFake()
    index = "arn:aws:s3vectors:us-east-1:123456789012:bucket/bench/index/semantic-cache"
    # The client the handler builds for S3 Vectors (lambdas/gateway/handler.py aws_client).
    client = store.client()
    client.meta.config.parameter_validation = handler.client_config("s3vectors").parameter_validation

    def semantic(write: bool) -> SemanticCache:
        cache = SemanticCache(
            client,
            InstantEmbeddings(),
            embedding_alias="embedder",
            index_arn=index,
            dimensions=512,
            ttl_seconds=3600,
            aliases={"copy": AliasPolicy(0.95)},
        )
        if not write:
            cache.store = lambda *args, **kwargs: 0
        return cache

    plain = Gateway(chat_routes={"copy": [StubChat()]}, embedding_routes={})
    cached = Gateway(chat_routes={"copy": [StubChat()]}, embedding_routes={}, semantic=semantic(True))
    lookup_only = Gateway(chat_routes={"copy": [StubChat()]}, embedding_routes={}, semantic=semantic(False))

    class NoMetrics:
        def record(self, usage, *, tenant):
            return None

        def record_semantic(self, probe):
            return None

    counter = iter(range(10**9))

    def median_without_store(service: Gateway) -> float:
        times = []
        for _ in range(repeat):
            store.indexes.clear()  # the fake's own search is not the gateway's: nothing to search
            n = next(counter)
            body = {**BODY, "messages": [{"role": "user", "content": f"question {n} about savings accounts"}]}
            spent = store.seconds
            start = time.perf_counter()
            service.chat(body, tenant=f"tenant-{n}", metrics=NoMetrics())
            times.append(time.perf_counter() - start - (store.seconds - spent))
        return statistics.median(times) * 1e6

    for service in (cached, plain, lookup_only):  # warm up (clients, pydantic)
        median_without_store(service)
    result = median_without_store(cached), median_without_store(plain), median_without_store(lookup_only)
    assert store.calls[-1][0] == "QueryVectors"
    assert "PutVectors" in {op for op, _ in store.calls}
    return result


def main() -> int:
    full, bare = warm_overhead()
    gateway_import, boto_client = cold_start()
    hit, missed = cache_path()
    through, direct = streamed_ttft()
    with_keys, without_keys, authorizer_alone = key_check()
    semantic, plain, lookup_only = semantic_miss()
    print("gateway benchmarks (one run, 2-core machine)")
    print(f"warm request through the handler   {full:8.1f} us (median); bare provider call {bare:.2f} us")
    print(f"  gateway overhead per request     {(full - bare) / 1000:8.3f} ms (target < 2 ms)")
    print(
        f"cold import of the handler         {gateway_import * 1000:8.1f} ms; boto3 + bedrock-runtime client "
        f"{boto_client * 1000:.1f} ms"
    )
    print(f"  ratio                            {gateway_import / boto_client:8.2f} x (target <= 1.5x)")
    print(
        f"cache hit (moto over HTTP)         {hit / 1000:8.2f} ms; miss + write {missed / 1000:.2f} ms "
        f"({missed / hit:.2f}x the hit)"
    )
    print(
        f"streamed first token, via gateway  {through:8.2f} ms (median); backend directly {direct:.2f} ms "
        f"({through / direct:.2f}x)"
    )
    print(f"  added by the gateway             {through - direct:8.2f} ms (target < 5 ms)")
    print(
        f"request with the key check         {with_keys:8.2f} ms (median); without {without_keys:.2f} ms; "
        f"the authorizer's answer alone {authorizer_alone * 1000:.1f} us"
    )
    print(f"  added by the key check           {with_keys - without_keys:8.2f} ms")
    print(
        f"semantic cache miss (lookup+write) {semantic / 1000:8.2f} ms (median); without the cache "
        f"{plain / 1000:.2f} ms"
    )
    print(f"  added by its lookup              {(lookup_only - plain) / 1000:8.2f} ms (target < 2 ms)")
    print(f"  added by lookup and write        {(semantic - plain) / 1000:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
