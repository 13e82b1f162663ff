"""Test doubles for the gateway: scripted providers, a recording metrics sink, a fake clock."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.base import ChatResult, EmbeddingResult
from lambdas.gateway.providers.http_pool import Response
from lambdas.gateway.service import Usage


class ScriptedChat:
    """Answers from a script: each item is a ChatResult to return or a ProviderError to raise."""

    applies_guardrail_itself = True

    def __init__(
        self,
        name: str,
        *script: ChatResult | ProviderError,
        clock: FakeClock | None = None,
        cost: float = 0.0,
    ):
        self.name = name
        self.script = list(script)
        self.calls = 0
        self.requests = []
        self.clock = clock
        self.cost = cost
        self.time_left: list[float] = []  # the deadline's remaining time at each call

    def chat(self, request, *, deadline) -> ChatResult:
        self.calls += 1
        self.requests.append(request)
        self.time_left.append(deadline.remaining())
        if self.clock is not None:
            self.clock.now += self.cost
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, ProviderError):
            raise step
        return step


class FixedEmbeddings:
    name = "bedrock:amazon.titan-embed-text-v2:0"

    def embed(self, inputs, *, dimensions, deadline) -> EmbeddingResult:
        size = dimensions or 4
        return EmbeddingResult(
            vectors=[[float(len(t))] * size for t in inputs], input_tokens=sum(len(t) for t in inputs)
        )


@dataclass
class RecordingMetrics:
    records: list[tuple[Usage, str]] = field(default_factory=list)
    ratings: list[tuple[object, float]] = field(default_factory=list)
    routes: list[tuple[str, bool]] = field(default_factory=list)
    semantic: list[object] = field(default_factory=list)  # semantic_cache.Probe, one per lookup

    def record(self, usage: Usage, *, tenant: str) -> None:
        self.records.append((usage, tenant))

    def record_rating(self, rated, score: float) -> None:
        self.ratings.append((rated, score))

    def record_route(self, route: str, *, large: bool) -> None:
        self.routes.append((route, large))

    def record_semantic(self, probe) -> None:
        self.semantic.append(probe)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def answer(text: str = "Hello!", *, intervened: bool = False) -> ChatResult:
    return ChatResult(
        text=text,
        finish_reason="content_filter" if intervened else "stop",
        input_tokens=12,
        output_tokens=3,
        guardrail_intervened=intervened,
    )


THROTTLED = ProviderError("t: ThrottlingException", retryable=True, throttled=True)
SERVER_ERROR = ProviderError("t: InternalServerException", retryable=True)
TIMEOUT = ProviderError("t: timed out", retryable=True, timeout=True)
REJECTED = ProviderError("t: ValidationException", retryable=False)


class ScriptedPool:
    """Stands in for HttpPool in OpenAIHttpChat: records each call, answers (status, body) or raises."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls: list[dict] = []

    def request(self, method, url, *, body=None, headers=None, timeout):
        self.calls.append(
            {"method": method, "url": url, "body": body, "headers": headers, "timeout": timeout}
        )
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        status, payload = self.outcome
        return Response(status=status, reason="", headers={}, body=payload)


class ModelServer:
    """A self-hosted OpenAI-compatible server on loopback (HTTP/1.1 keep-alive): records each body
    and the TCP connections it accepts; answers `payload` (a chat.completion) as JSON, or
    `stream_payload` (server-sent event bytes) in chunks when the body asks for `stream: true`."""

    def __init__(self, payload: dict, stream_payload: bytes = b"") -> None:
        self.payload = payload
        self.stream_payload = stream_payload
        self.bodies: list[dict] = []
        self.connections = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                owner.connections += 1

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.bodies.append(body)
                self.send_response(200)
                if body.get("stream"):
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    data = owner.stream_payload
                    for i in range(0, len(data), 50):
                        self.wfile.write(
                            f"{len(data[i : i + 50]):x}\r\n".encode() + data[i : i + 50] + b"\r\n"
                        )
                    self.wfile.write(b"0\r\n\r\n")
                    return
                raw = json.dumps(owner.payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


class WordEmbeddings:
    """A deterministic stand-in for an embedding model: a sentence's content words (lowercase, a
    plural's -s dropped, filler words left out) hashed into `dimensions` buckets, L2-normalised (as
    Titan Text Embeddings V2 normalises by default). Paraphrases with the same content words come out
    close, unrelated sentences far apart; `latency` delays each call."""

    name = "bedrock:amazon.titan-embed-text-v2:0"
    FILLER = frozenset(
        [
            "a",
            "an",
            "the",
            "is",
            "are",
            "was",
            "what",
            "whats",
            "what's",
            "how",
            "do",
            "does",
            "can",
            "i",
            "you",
            "your",
            "me",
            "my",
            "please",
            "tell",
            "about",
            "of",
            "on",
            "for",
            "to",
            "in",
            "our",
            "we",
            "us",
            "it",
            "its",
            "it's",
        ]
    )

    def __init__(self, *, latency: float = 0.0, failure: Exception | None = None) -> None:
        self.latency = latency
        self.failure = failure
        self.calls: list[list[str]] = []

    def words(self, text: str) -> list[str]:
        import re

        words = [w for w in re.findall(r"[\w']+", text.lower()) if w not in self.FILLER]
        return [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words]

    def embed(self, inputs, *, dimensions, deadline) -> EmbeddingResult:
        import hashlib
        import math
        import time

        self.calls.append(list(inputs))
        if self.latency:
            time.sleep(self.latency)
        if self.failure is not None:
            raise self.failure
        size = dimensions or 256
        vectors = []
        for text in inputs:
            vector = [0.0] * size
            for word in self.words(text):
                vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % size] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return EmbeddingResult(vectors=vectors, input_tokens=sum(max(1, len(t) // 4) for t in inputs))
