#!/usr/bin/env python3
"""Upstream connection benchmark (one run, figures as ratios; `make bench` runs it after
bench/gateway.py).

A self-hosted target (OpenAIHttpChat) against a local OpenAI-compatible server on loopback that
keeps connections alive (tests/support/upstream.py), over plain HTTP and over TLS (a self-signed
certificate made at run time): the code before the pool (urllib.request.urlopen, a new connection,
and on TLS a new handshake, per request) side by side with the pooled target
(lambdas/gateway/providers/http_pool.py). Median per request, the ratio old/pooled, and the
connections and TLS handshakes the server counted. Loopback has no network latency: on a real
hop each new connection also costs round trips (TCP, and TLS), so the gap only widens there.
"""

from __future__ import annotations

import json
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# The project's modules, importable once the repository is on sys.path (a bench runs as a script).
from lambdas.gateway.deadline import Deadline  # noqa: E402 - after the sys.path line above
from lambdas.gateway.providers.http_pool import HttpPool  # noqa: E402
from lambdas.gateway.providers.openai_format import OpenAIHttpChat, openai_body, parse_openai  # noqa: E402
from lambdas.gateway.schema import ChatCompletionRequest  # noqa: E402
from tests.support.upstream import self_signed_certificate, upstream  # noqa: E402

REQUEST = ChatCompletionRequest.model_validate(
    {
        "model": "self-hosted",
        "messages": [{"role": "user", "content": "Write a two-line slogan for a savings account."}],
        "max_tokens": 100,
    }
)


def old_chat(url: str, context: ssl.SSLContext | None):
    """What OpenAIHttpChat.chat did before the pool: urllib, a new connection per request."""
    data = json.dumps(openai_body(REQUEST, "llama")).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback benchmark server
        url + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
        return parse_openai("openai_http:llama", response.read())


def median_ms(action, repeat: int) -> float:
    for _ in range(20):
        action()  # warm up (and, pooled, open the connection)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def side_by_side(certificate: tuple[Path, Path] | None, repeat: int) -> dict[str, float]:
    context = ssl.create_default_context(cafile=str(certificate[0])) if certificate else None
    with upstream(certificate=certificate) as server:
        old = median_ms(lambda: old_chat(server.url, context), repeat)
        old_connections, old_handshakes = server.connections, server.handshakes
        pool = HttpPool(ca_file=str(certificate[0]) if certificate else None)
        target = OpenAIHttpChat(base_url=server.url, model="llama", pool=pool)
        pooled = median_ms(lambda: target.chat(REQUEST, deadline=Deadline.start(25)), repeat)
        pool.close()
        return {
            "old": old,
            "pooled": pooled,
            "old_connections": old_connections,
            "old_handshakes": old_handshakes,
            "pooled_connections": server.connections - old_connections,
            "pooled_handshakes": server.handshakes - old_handshakes,
            "requests": repeat + 20,
        }


def main(repeat: int = 500) -> int:
    plain = side_by_side(None, repeat)
    with tempfile.TemporaryDirectory() as directory:
        tls = side_by_side(self_signed_certificate(Path(directory)), repeat)
    print("upstream connection benchmarks (one run, 2-core machine, loopback server)")
    for label, figures in (("plain HTTP", plain), ("TLS       ", tls)):
        handshakes = (
            f"; TLS handshakes {figures['old_handshakes']:.0f} vs {figures['pooled_handshakes']:.0f}"
            if label.startswith("TLS")
            else ""
        )
        print(
            f"{label} new connection per request {figures['old']:6.3f} ms; "
            f"pooled {figures['pooled']:6.3f} ms (median)"
        )
        print(
            f"  ratio old/pooled                 {figures['old'] / figures['pooled']:6.2f} x; connections "
            f"{figures['old_connections']:.0f} vs {figures['pooled_connections']:.0f} for "
            f"{figures['requests']:.0f} requests{handshakes}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
