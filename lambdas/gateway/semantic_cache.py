"""Semantic response cache: a request whose question means the same as one already answered, in the
same context, gets that answer without a model call.

What decides a hit:
- The question: the last message, a user message of text only, normalised (Unicode NFKC, runs of
  whitespace as one space), embedded by the profile's embedding alias (the gateway's own provider,
  so the call goes through its application inference profile and is counted like any embedding).
- The scope, matched exactly: a hash of everything else the exact cache key holds (lambdas/gateway/
  cache.py: the alias, the guardrail version, the earlier messages, the system prompt, every
  parameter that changes the answer) and of the tenant, unless the alias is shared. Two tenants never
  share an answer of an alias that is not `shared`, whatever their questions.
- The nearest stored question in the scope whose entry has not expired, by cosine similarity (S3
  Vectors' cosine distance is 1 - similarity), at or above the alias's `min_similarity`.

The store is an S3 Vectors index (the store the project's knowledge bases use; pay per request and
GB, nothing idle): each answered question is a vector whose filterable metadata holds `scope` and
`expires_at` (S3 Vectors has no expiry of its own: the query filters expired entries out) and whose
non-filterable `entry` holds the answer and what it cost. QueryVectors with a filter and metadata
needs s3vectors:GetVectors as well as QueryVectors (Amazon S3 API reference, QueryVectors,
Permissions: https://docs.aws.amazon.com/AmazonS3/latest/API/API_S3VectorBuckets_QueryVectors.html).

Any failure (the embedding, the query, the write, a malformed entry, the time cap) is a miss, counted
as an error, never a failed request. Only requests at temperature 0 or with `cache: true` use it.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from .cache import cache_key, cacheable
from .deadline import MIN_CALL_SECONDS, Deadline, as_timed
from .errors import GatewayError, ProviderError
from .guardrail import Guardrail
from .providers.base import EmbeddingProvider
from .schema import ChatCompletionRequest

# A lookup is worth less than the model call it may save: the embedding and the query each get at
# most this long, and a slow lookup is a miss that leaves the rest of the deadline to the model.
SEMANTIC_TIMEOUT_SECONDS = 1.0
# "Total metadata per vector: Up to 40 KB (filterable + non-filterable)" (Amazon S3 user guide, S3
# Vectors "Limitations and restrictions": https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html).
# The filterable part (scope, expires_at) is under 100 bytes; an answer whose entry would not fit is
# not stored (PutVectors would refuse it with 400).
MAX_ENTRY_BYTES = 40 * 1024 - 512
ENTRY_KEY = "entry"  # the index's one non-filterable metadata key (stacks/components/vector_store.py)
SHARED = "*shared*"  # the tenant part of a shared alias's scope (a tenant name is a slug: no '*')


@dataclass(frozen=True)
class AliasPolicy:
    min_similarity: float
    shared: bool = False


@dataclass(frozen=True)
class Probe:
    """One lookup: where it looked (scope, key, the question's vector for the write after a miss),
    what the embedding cost, and what it found."""

    alias: str
    scope: str
    key: str
    vector: tuple[float, ...] | None
    lookup_tokens: int = 0
    lookup_usd: float = 0.0
    answer: dict[str, Any] | None = None
    similarity: float | None = None  # of the nearest entry in scope, hit or not
    saved_tokens: int = 0
    saved_usd: float = 0.0
    errors: int = 0

    @property
    def hit(self) -> bool:
        return self.answer is not None


def question_of(request: ChatCompletionRequest) -> str | None:
    """The normalised question, or None when the request ends with anything but a text-only user
    message (a tool result, an image): those are left to the exact cache."""
    last = request.messages[-1] if request.messages else None
    if last is None or last.role != "user" or not last.text_only:
        return None
    text = " ".join(unicodedata.normalize("NFKC", last.text).split())
    return text or None


def scope_of(
    request: ChatCompletionRequest, *, tenant: str, guardrail_version: str | None, shared: bool
) -> str:
    """Everything but the question, exactly: the exact cache's key of the request with its last
    message emptied, and the tenant (or SHARED)."""
    context = request.model_copy(
        update={"messages": [*request.messages[:-1], request.messages[-1].model_copy(update={"content": ""})]}
    )
    key = cache_key(request.model, context, guardrail_version)
    return hashlib.sha256(f"{key}\n{SHARED if shared else tenant}".encode()).hexdigest()


logger = Logger(child=True)  # the handler's logger (its service and correlation id)


def _failed(probe: Probe, step: str, error: Exception) -> Probe:
    """A failure is a miss: logged (never the question) and counted in the probe."""
    logger.warning(
        "semantic cache miss on a failure",
        extra={"alias": probe.alias, "step": step, "error": f"{type(error).__name__}: {error}"},
    )
    return replace(probe, errors=probe.errors + 1)


# botocore serializes (and, with validation on, checks) a list of floats one element at a time: about
# 2 microseconds a float, so a 512-dimension vector cost a lookup 1 ms of CPU before it was sent
# (bench/gateway.py). The vectors therefore travel as a one-element placeholder through the client's
# parameter handling and are written into the JSON body just before it is signed, with the client's
# documented events ("Event references", botocore: before-parameter-build receives the parameters and
# the request's context; before-sign the request before its signature is computed, so the signature
# covers the body sent). tests/support/s3vectors.py checks that signature and reads the vectors from
# the body AWS would receive.
_VECTORS = "genai_stack_vectors"  # the request context's key for the vectors set aside
_PLACEHOLDER = [0.0]
_PLACEHOLDER_JSON = b'{"float32":[0.0]}'  # as botocore's JSON serializer writes it


def _set_aside(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if "queryVector" in params:
        context[_VECTORS] = [params["queryVector"]["float32"]]
        params["queryVector"] = {"float32": _PLACEHOLDER}
    elif "vectors" in params:
        context[_VECTORS] = [v["data"]["float32"] for v in params["vectors"]]
        params["vectors"] = [{**v, "data": {"float32": _PLACEHOLDER}} for v in params["vectors"]]


def _put_back(request: Any, **_: Any) -> None:
    """Each placeholder of the body, in order, becomes its vector (a Vector's JSON, or a list)."""
    # Kept in the context: a retry rebuilds the body from the placeholder and is signed again.
    vectors = request.context.get(_VECTORS)
    if vectors is None:
        return
    parts = request.data.split(_PLACEHOLDER_JSON)
    if len(parts) != len(vectors) + 1:  # the serializer wrote it otherwise: rebuild the document
        body = json.loads(request.data)
        entries = [body["queryVector"]] if "queryVector" in body else [v["data"] for v in body["vectors"]]
        for entry, vector in zip(entries, vectors, strict=True):
            entry["float32"] = list(vector)
        request.data = json.dumps(body, separators=(",", ":")).encode()
        return
    data = [parts[0]]
    for vector, rest in zip(vectors, parts[1:], strict=True):
        data += [
            b'{"float32":',
            vector.encoded if isinstance(vector, Vector) else json.dumps(vector).encode(),
            b"}",
            rest,
        ]
    request.data = b"".join(data)


class Vector(tuple):
    """A vector whose JSON is written once (the lookup's query and the miss's write send the same)."""

    @property
    def encoded(self) -> bytes:
        cached = getattr(self, "_encoded", None)
        if cached is None:
            cached = json.dumps(list(self), separators=(",", ":")).encode()
            object.__setattr__(self, "_encoded", cached)
        return cached


def send_vectors_whole(client: Any) -> Any:
    """Install the fast path on an s3vectors client (once per client); returns it."""
    for operation in ("QueryVectors", "PutVectors"):
        client.meta.events.register(
            f"before-parameter-build.s3vectors.{operation}",
            _set_aside,
            unique_id=f"{_VECTORS}-{operation}-in",
        )
        client.meta.events.register(
            f"before-sign.s3vectors.{operation}", _put_back, unique_id=f"{_VECTORS}-{operation}-out"
        )
    return client


class SemanticCache:
    """`client`: an s3vectors client or a TimedClients of them; `embedder`: the embedding alias's
    provider; `price_per_1k`: its input price (USD per 1,000 tokens), for the lookup's cost."""

    def __init__(
        self,
        client: Any,
        embedder: EmbeddingProvider,
        *,
        embedding_alias: str,
        index_arn: str,
        dimensions: int,
        ttl_seconds: int,
        aliases: Mapping[str, AliasPolicy],
        price_per_1k: float = 0.0,
        guardrail: Guardrail | None = None,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = SEMANTIC_TIMEOUT_SECONDS,
    ) -> None:
        self.clients = as_timed(client)
        self.embedder = embedder
        self.embedding_alias = embedding_alias
        self.index_arn = index_arn
        self.dimensions = dimensions
        self.ttl_seconds = ttl_seconds
        self.aliases = dict(aliases)
        self.price_per_1k = price_per_1k
        self.guardrail = guardrail
        self.clock = clock
        self.timeout_seconds = timeout_seconds

    def applies(self, request: ChatCompletionRequest) -> bool:
        return request.model in self.aliases and cacheable(request) and question_of(request) is not None

    def lookup(
        self,
        request: ChatCompletionRequest,
        *,
        tenant: str,
        guardrail_version: str | None,
        deadline: Deadline,
    ) -> Probe:
        """Embed the question and query its scope; a hit carries the stored answer. Call only when
        `applies(request)`."""
        policy = self.aliases[request.model]
        question = question_of(request) or ""
        scope = scope_of(request, tenant=tenant, guardrail_version=guardrail_version, shared=policy.shared)
        probe = Probe(
            alias=request.model,
            scope=scope,
            key=hashlib.sha256(f"{scope}\n{question}".encode()).hexdigest(),
            vector=None,
        )
        try:
            embedded = self.embedder.embed(
                [question], dimensions=self.dimensions, deadline=deadline.capped(self.timeout_seconds)
            )
            vector = Vector(embedded.vectors[0])
            if len(vector) != self.dimensions:
                raise ValueError(f"the embedding has {len(vector)} dimensions, the index {self.dimensions}")
        except (ProviderError, GatewayError, ValueError, IndexError, TypeError) as error:
            return _failed(probe, "embedding the question", error)
        probe = replace(
            probe,
            vector=vector,
            lookup_tokens=embedded.input_tokens,
            lookup_usd=embedded.input_tokens * self.price_per_1k / 1000,
        )
        try:
            client = send_vectors_whole(
                self.clients.within(deadline, "the semantic cache lookup", cap=self.timeout_seconds)
            )
            found = client.query_vectors(
                indexArn=self.index_arn,
                topK=1,
                queryVector={"float32": vector},
                filter={"$and": [{"scope": {"$eq": scope}}, {"expires_at": {"$gt": int(self.clock())}}]},
                returnMetadata=True,
                returnDistance=True,
                # The filter before the search, whatever the index's mode: a CLASSIC index (buckets made
                # before 30 September 2026) filters during the search, and "may return fewer than top K
                # results when the vector index contains very few matching results" (Amazon S3 user
                # guide, "Metadata filtering":
                # https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-metadata-filtering.html):
                # a scope is a tiny share of the index, so its entries would be missed.
                queryMode="ENHANCED",
            ).get("vectors", [])
            if not found:
                return probe
            nearest = found[0]
            similarity = 1.0 - float(nearest["distance"])
            metadata = nearest.get("metadata") or {}
            if (
                metadata.get("scope") != scope  # the filter's job; a store that ignored it is not trusted
                or float(metadata.get("expires_at", 0)) <= self.clock()
            ):
                return _failed(probe, "the query", ValueError("an entry outside the filter was returned"))
            if similarity < policy.min_similarity:
                return replace(probe, similarity=similarity)
            entry = json.loads(metadata[ENTRY_KEY])
            answer = entry["response"]
            if not isinstance(answer, dict) or not answer.get("choices"):
                raise ValueError("the entry holds no answer")
            hit = replace(
                probe,
                answer=answer,
                similarity=similarity,
                saved_tokens=int(entry.get("tokens", 0)),
                saved_usd=float(entry.get("usd", 0.0)),
            )
        except (
            ClientError,
            BotoCoreError,
            GatewayError,
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
        ) as error:
            return _failed(probe, "the query", error)
        return self._screened(hit, request, deadline)

    def _screened(self, hit: Probe, request: ChatCompletionRequest, deadline: Deadline) -> Probe:
        """With a guardrail, a stored answer goes only to a prompt the guardrail lets through: it was
        checked against the question that produced it, not this one. The prompt is checked as a
        guarded target checks it (every message but the assistant's, source INPUT). An intervention is
        a miss, so the model path applies the guardrail and answers with its intervention; a failed
        check is a miss too. The check costs what the model call's own input check would, and a hit
        saves the output check."""
        if self.guardrail is None:
            return hit
        prompt = "\n".join(m.text for m in request.messages if m.role != "assistant")
        try:
            blocked = self.guardrail.check("INPUT", prompt, deadline.capped(self.timeout_seconds))
        except (ProviderError, GatewayError) as error:
            return _failed(replace(hit, answer=None), "the guardrail check", error)
        if blocked is not None:
            return replace(hit, answer=None, saved_tokens=0, saved_usd=0.0)
        return hit

    def store(
        self,
        probe: Probe,
        response: dict[str, Any],
        *,
        tokens: int,
        usd: float,
        deadline: Deadline | None,
    ) -> int:
        """Write the answer under the probe's question (the same question in the same scope replaces
        its entry); returns the errors (0 or 1). Skipped when the lookup failed to embed, when the
        deadline is (nearly) gone, or when the entry is over S3 Vectors' metadata limit."""
        if probe.vector is None or (deadline is not None and deadline.remaining() < MIN_CALL_SECONDS):
            return 0
        entry = json.dumps({"response": response, "tokens": tokens, "usd": usd}, separators=(",", ":"))
        if len(json.dumps(entry).encode()) > MAX_ENTRY_BYTES:  # as it is sent: a JSON string, escaped
            return 0
        try:
            client = send_vectors_whole(
                self.clients.within(deadline, "the semantic cache write", cap=self.timeout_seconds)
            )
            client.put_vectors(
                indexArn=self.index_arn,
                vectors=[
                    {
                        "key": probe.key,
                        "data": {"float32": probe.vector},
                        "metadata": {
                            "scope": probe.scope,
                            "expires_at": int(self.clock()) + self.ttl_seconds,
                            ENTRY_KEY: entry,
                        },
                    }
                ],
            )
        except (ClientError, BotoCoreError, GatewayError) as error:
            _failed(probe, "the write", error)
            return 1
        return 0
