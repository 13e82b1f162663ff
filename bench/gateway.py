#!/usr/bin/env python3
"""Gateway benchmarks (one run, figures as ratios; `make bench` runs it after bench/synth.py).

1. Warm overhead: the whole handler (event parsing, validation, routing, response, EMF metrics)
   over the bare provider call with the same stub, median per request.
2. Cold start: importing the handler, as a ratio to importing boto3 and creating the
   bedrock-runtime client (each in a fresh interpreter; interpreter start-up subtracted).
3. Cache-hit path: a request answered from the DynamoDB cache (moto server over HTTP on loopback)
   against one that misses and writes.
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


def main() -> int:
    full, bare = warm_overhead()
    gateway_import, boto_client = cold_start()
    hit, missed = cache_path()
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
