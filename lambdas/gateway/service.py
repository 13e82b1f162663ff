"""The gateway's logic: aliases, validation limits, cache, routing with fallback, guardrails,
retrieval and metrics. It takes every AWS client and clock as arguments (tests inject stubs)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from . import sse
from .allowance import UNCOUNTED, WARNING_HEADER, Admission, SpendLedger
from .cache import ResponseCache, cache_key, cacheable
from .deadline import Deadline
from .errors import GatewayError, ProviderError, bad_request, unknown_model
from .feedback import NO_PROMPT_VERSION, FeedbackStore
from .feedback import Answered as Rated
from .images import ImageService
from .providers.base import ChatProvider, EmbeddingProvider
from .providers.bedrock import unsupported as bedrock_unsupported
from .retrieval import Retriever, grounding_check, grounding_prompt
from .router import RetryPolicy, Routed, route
from .routing import CHARS_PER_TOKEN, ROUTE_HEADER, Route, estimated_tokens
from .schema import (
    ChatCompletionRequest,
    EmbeddingRequest,
    FeedbackRequest,
    ImageRequest,
    Message,
    chat_response,
    embedding_response,
    new_response_id,
)
from .semantic_cache import Probe, SemanticCache


@dataclass(frozen=True)
class Usage:
    """What one request did, for metrics."""

    alias: str
    target: str
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    fallbacks: int = 0
    guardrail_intervened: bool = False
    # A hash of the request's `user` (OpenAI's end-user id): a property of the request's log and EMF
    # document, never a dimension (one custom metric series per end user) and never the raw id.
    user: str | None = None
    time_to_first_token_ms: float | None = None  # streamed answers: entry to the first content sent


# The target of a semantic cache hit, in x-genai-target and the metrics' `target` dimension; the
# similarity of the stored question it answered, in SIMILARITY_HEADER.
SEMANTIC_TARGET = "semantic-cache"
SIMILARITY_HEADER = "x-genai-cache-similarity"


def hashed_user(user: str | None) -> str | None:
    return hashlib.sha256(user.encode()).hexdigest()[:16] if user else None


class MetricsSink(Protocol):
    def record(self, usage: Usage, *, tenant: str) -> None: ...

    def record_rating(self, rated: Rated, score: float) -> None: ...

    def record_route(self, route: str, *, large: bool) -> None: ...

    def record_semantic(self, probe: Probe) -> None: ...


@dataclass(frozen=True)
class Price:
    input_per_1k: float
    output_per_1k: float


@dataclass
class Limits:
    max_input_tokens: int = 32_000
    max_output_tokens: int = 4_096


@dataclass
class Gateway:
    chat_routes: Mapping[str, Sequence[ChatProvider]]
    embedding_routes: Mapping[str, EmbeddingProvider]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limits: Limits = field(default_factory=Limits)
    prices: Mapping[str, Price] = field(default_factory=dict)
    cache: ResponseCache | None = None
    semantic: SemanticCache | None = None  # per-alias semantic cache (lambdas/gateway/semantic_cache.py)
    guardrail: tuple[str, str] | None = None  # (identifier, version)
    guardrail_client: Any = None
    knowledge_bases: Mapping[str, str] = field(default_factory=dict)  # name -> knowledge base id
    retriever: Retriever | None = None
    images: ImageService | None = None  # POST /v1/images/generations (lambdas/gateway/images.py)
    ledger: SpendLedger | None = None  # tenants' monthly allowances (lambdas/gateway/allowance.py)
    feedback: FeedbackStore | None = None  # POST /v1/feedback (lambdas/gateway/feedback.py)
    routes: Mapping[str, Route] = field(default_factory=dict)  # names that pick an alias (routing.py)
    clock: Callable[[], float] = time.monotonic

    # ---------------------------------------------------------------------------------------------
    def list_models(self) -> dict[str, Any]:
        aliases = sorted({*self.chat_routes, *self.embedding_routes, *self._image_routes, *self.routes})
        return {"object": "list", "data": [_model_object(a) for a in aliases]}

    def get_model(self, alias: str) -> dict[str, Any]:
        """GET /v1/models/{id}: one alias, as the list gives it; 404 for any other id."""
        if (
            alias not in self.chat_routes
            and alias not in self.embedding_routes
            and alias not in self._image_routes
            and alias not in self.routes
        ):
            raise unknown_model(alias, param=None)
        return _model_object(alias)

    def _deadline(self, deadline: Deadline | None) -> Deadline:
        """The request's deadline (started at entry by the handler), else policy.deadline_seconds."""
        return (
            deadline
            if deadline is not None
            else Deadline.start(self.policy.deadline_seconds, clock=self.clock)
        )

    def chat(
        self, body: Any, *, tenant: str, metrics: MetricsSink, deadline: Deadline | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Cache lookup, retrieval, model calls (with retries and fallback), grounding check and cache
        write all run within one deadline: each AWS call checks it and gets only the time left."""
        deadline = self._deadline(deadline)
        request, routed = self._route(parse(ChatCompletionRequest, body), metrics)
        if request.stream:
            request = request.model_copy(update={"stream": False, "stream_options": None})
        targets = self._targets(request)
        admission = self._admit(tenant, *self._chat_reservation(request, targets), deadline)
        billed: list[Usage] = []  # what the model answered, once it has (a later step may still fail)
        response_id = new_response_id()  # a cached answer gets its own: ratings follow the tenant
        try:
            started = self.clock()
            key = cache_key(request.model, request, self.guardrail[1] if self.guardrail else None)
            use_cache = self.cache is not None and cacheable(request)

            def stored(answer: dict[str, Any], target: str, headers: dict[str, str]):
                """A stored answer: a cache hit of `target` in the metrics, the tenant's record for its
                rating, its own response id."""
                usage = Usage(
                    alias=request.model,
                    target=target,
                    latency_ms=self._ms(started),
                    cache_hit=True,
                    user=hashed_user(request.user),
                )
                metrics.record(usage, tenant=tenant)
                self._remember(response_id, tenant, request, target, deadline)
                headers = {"x-genai-target": target, **headers, **routed}
                return {**answer, "id": response_id}, _warned(headers, admission)

            if use_cache:
                hit = self.cache.get(key, deadline)
                if hit is not None:
                    return stored(hit, "cache", {"x-genai-cache": "hit"})
            probe = self._probe(request, tenant, metrics, deadline, billed)
            if probe is not None and probe.hit:
                metrics.record_semantic(probe)
                similarity = {"x-genai-cache": "semantic-hit", SIMILARITY_HEADER: f"{probe.similarity:.4f}"}
                return stored(probe.answer, SEMANTIC_TARGET, similarity)
            response, headers = self._answer(
                request,
                targets,
                key if use_cache else None,
                tenant,
                metrics,
                deadline,
                started,
                billed,
                response_id,
                probe,
            )
            self._remember(response_id, tenant, request, headers["x-genai-target"], deadline)
            return response, _warned({**headers, **routed}, admission)
        finally:
            self._settle(admission, *billed)

    def _targets(self, request: ChatCompletionRequest) -> Sequence[ChatProvider]:
        """The alias's targets, after every check that refuses the request before a model is called."""
        targets = self.chat_routes.get(request.model)
        if not targets:
            raise unknown_model(request.model)
        if request.temperature > 1 and any(t.name.startswith("bedrock:") for t in targets):
            # Converse takes 0 to 1 (Bedrock API reference, InferenceConfiguration, temperature:
            # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InferenceConfiguration.html);
            # OpenAI's 0 to 2 is refused rather than clamped without a word.
            raise bad_request(
                f"temperature {request.temperature:g}: alias {request.model!r} routes to Bedrock models, "
                "which take 0 to 1",
                param="temperature",
                code="invalid_value",
            )
        self._check_features(request, targets)
        self._check_limits(request)
        return targets

    def _answer(
        self,
        request: ChatCompletionRequest,
        targets: Sequence[ChatProvider],
        key: str | None,
        tenant: str,
        metrics: MetricsSink,
        deadline: Deadline,
        started: float,
        billed: list[Usage],
        response_id: str,
        probe: Probe | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """`billed` gets the model's usage as soon as it has answered: a grounding check that fails
        afterwards does not make that spend free. `probe`: the semantic cache's miss, whose question
        gets this answer."""
        use_cache = key is not None
        passages = []
        if request.knowledge_base is not None:
            request, passages = self._ground(request, deadline)
        routed = route(targets, request, policy=self.policy, clock=self.clock, deadline=deadline)
        result = routed.result
        billed.append(
            self._usage(request, routed, started, result.input_tokens, result.output_tokens, intervened=False)
        )
        text, finish, intervened = result.text, result.finish_reason, result.guardrail_intervened
        tool_calls, choices = result.tool_calls, result.choices
        # A tool call alone is not an answer to ground (the grounding check takes the answer's text).
        answered = bool(text) or not tool_calls
        if passages and answered and not intervened and self.guardrail and self.guardrail_client is not None:
            try:
                blocked = grounding_check(
                    self.guardrail_client,
                    guardrail=self.guardrail,
                    passages=passages,
                    query=_question(request),
                    answer=text,
                    deadline=deadline,
                )
            except ProviderError as error:  # an unchecked answer is not returned
                raise GatewayError(
                    504 if error.timeout else 502,
                    f"the grounding check failed ({error})",
                    type="timeout" if error.timeout else "upstream_error",
                    code="upstream_timeout" if error.timeout else None,
                ) from None
            if blocked is not None:
                text, finish, intervened = blocked, "content_filter", True
                tool_calls, choices = (), ()
        extra = (
            {"citations": [{"index": i, "source": p.source} for i, p in enumerate(passages, start=1)]}
            if passages
            else None
        )
        response = chat_response(
            model=request.model,
            text=text,
            finish_reason=finish,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            extra=extra,
            tool_calls=tool_calls,
            reasoning_content=None if intervened else result.reasoning_content,
            cached_tokens=result.cached_tokens,
            logprobs=None if intervened else result.logprobs,
            choices=choices,
            response_id=response_id,
        )
        if use_cache and not intervened:
            self.cache.put(key, response, deadline)
        usage = self._usage(
            request, routed, started, result.input_tokens, result.output_tokens, intervened=intervened
        )
        if probe is not None:  # a guardrail's intervention is not an answer to reuse
            errors = (
                0
                if intervened
                else self.semantic.store(
                    probe,
                    response,
                    tokens=usage.input_tokens + usage.output_tokens,
                    usd=usage.cost_usd,
                    deadline=deadline,
                )
            )
            metrics.record_semantic(replace(probe, errors=probe.errors + errors))
        metrics.record(usage, tenant=tenant)
        headers = {"x-genai-target": routed.target, "x-genai-fallbacks": str(routed.fallbacks)}
        if use_cache or probe is not None:
            headers["x-genai-cache"] = "miss"
        return response, headers

    def chat_stream(
        self, body: Any, *, tenant: str, metrics: MetricsSink, deadline: Deadline | None = None
    ) -> tuple[Iterator[bytes], dict[str, str]]:
        """`stream: true`: the answer as server-sent events (OpenAI's chat.completion.chunk objects,
        then `data: [DONE]`), each sent as the model produces it. Everything that can refuse the
        request does so before the first byte, with a status and an error object as for `chat`: the
        checks, and every target failing before its first delta (retries and fallback as usual). A
        target failing after it has begun ends the stream with an `error` event (OpenAI clients raise
        it). Answers that must be whole before anything is sent (a cached one, and grounded ones,
        checked against their passages) are produced by `chat` and sent as one chunk."""
        deadline = self._deadline(deadline)
        request, routed_headers = self._route(parse(ChatCompletionRequest, body), metrics)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        streamed = request.model_copy(update={"stream": False, "stream_options": None})
        for name, why, asked in (
            ("n", "a stream carries one choice", request.n > 1),
            ("logprobs", "streamed answers carry no log probabilities here", request.wants_logprobs),
        ):
            if asked:
                raise bad_request(
                    f"{name} with stream: not supported for model {request.model!r} ({why}); send it "
                    "without stream",
                    param=name,
                    code="unsupported_parameter",
                )
        if (
            request.knowledge_base is not None
            or (self.cache is not None and cacheable(streamed))
            or (self.semantic is not None and self.semantic.applies(streamed))
        ):
            # Already routed: the body names the chosen alias, so chat() does not route (or count) again.
            response, headers = self.chat(
                streamed.model_dump(exclude_none=True), tenant=tenant, metrics=metrics, deadline=deadline
            )
            return sse.whole(response, include_usage=include_usage), {**headers, **routed_headers}
        targets = self._targets(streamed)
        admission = self._admit(tenant, *self._chat_reservation(streamed, targets), deadline)
        started = self.clock()
        try:
            routed = route(
                targets,
                streamed,
                policy=self.policy,
                clock=self.clock,
                deadline=deadline,
                call=lambda target: sse.Opened.of(target.stream(streamed, deadline=deadline)),
            )
        except BaseException:
            self._settle(admission)
            raise
        headers = _warned(
            {"x-genai-target": routed.target, "x-genai-fallbacks": str(routed.fallbacks), **routed_headers},
            admission,
        )

        def record(answer: sse.Answered) -> None:
            usage = self._usage(
                request,
                routed,
                started,
                answer.input_tokens,
                answer.output_tokens,
                intervened=answer.guardrail_intervened,
            )
            first = (answer.first_at - started) * 1000 if answer.first_at else None
            self._settle(admission, usage)
            self._remember(response_id, tenant, request, routed.target, None)
            metrics.record(replace(usage, time_to_first_token_ms=first), tenant=tenant)

        response_id = new_response_id()
        chunks = sse.chunks(
            routed.result,
            model=request.model,
            include_usage=include_usage,
            clock=self.clock,
            on_end=record,
            ident=response_id,
        )
        return chunks, headers

    def embeddings(
        self, body: Any, *, tenant: str, metrics: MetricsSink, deadline: Deadline | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        deadline = self._deadline(deadline)
        request = parse(EmbeddingRequest, body)
        target = self.embedding_routes.get(request.model)
        if target is None:
            raise unknown_model(request.model, "embedding ")
        total_chars = sum(len(text) for text in request.inputs)
        if total_chars // CHARS_PER_TOKEN > self.limits.max_input_tokens:
            raise bad_request(
                f"input is too long: about {total_chars // CHARS_PER_TOKEN} tokens, the limit is "
                f"{self.limits.max_input_tokens}",
                param="input",
                code="context_length_exceeded",
            )
        price = self.prices.get(target.name)
        estimate = estimated_tokens(*request.inputs)
        admission = self._admit(
            tenant, estimate * price.input_per_1k / 1000 if price else 0.0, estimate, deadline
        )
        started = self.clock()
        try:
            result = target.embed(request.inputs, dimensions=request.dimensions, deadline=deadline)
        except ProviderError as error:
            self._settle(admission)
            if error.client_message is not None:  # the model refused the input (too long, ...)
                raise GatewayError(
                    400,
                    f"the embedding model refused the request: {error.client_message}",
                    code="model_rejected_request",
                ) from None
            status = 503 if error.throttled else 504 if error.timeout else 502
            raise GatewayError(status, f"embedding model failed ({error})", type="upstream_error") from None
        except BaseException:
            self._settle(admission)
            raise
        cost = result.input_tokens * price.input_per_1k / 1000 if price else 0.0
        usage = Usage(
            alias=request.model,
            target=target.name,
            latency_ms=self._ms(started),
            input_tokens=result.input_tokens,
            cost_usd=cost,
            user=hashed_user(request.user),
        )
        self._settle(admission, usage)
        metrics.record(usage, tenant=tenant)
        response = embedding_response(
            model=request.model,
            vectors=result.vectors,
            input_tokens=result.input_tokens,
            encoding_format=request.encoding_format,
        )
        return response, _warned({"x-genai-target": target.name}, admission)

    def rate(
        self, body: Any, *, tenant: str, metrics: MetricsSink, deadline: Deadline | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """POST /v1/feedback: the tenant's rating of one of its answers, stored once and published as
        the Satisfaction metric by alias, target, tenant and prompt version (lambdas/gateway/feedback.py)."""
        deadline = self._deadline(deadline)
        if self.feedback is None:
            raise GatewayError(
                404, "feedback is not enabled for this gateway (gateway.feedback)", code="not_found"
            )
        request = parse(FeedbackRequest, body)
        rated = self.feedback.rate(request, tenant=tenant, deadline=deadline)
        metrics.record_rating(rated, request.score)
        return (
            {"object": "feedback", "response_id": request.response_id, "score": request.score},
            {"x-genai-target": rated.target},
        )

    def _route(
        self, request: ChatCompletionRequest, metrics: MetricsSink
    ) -> tuple[ChatCompletionRequest, dict[str, str]]:
        """A request to a route, as a request to the alias the route picks (routing.py), with the
        header that says which and why; any other request as it is. Counted once the chosen alias
        has accepted it: a request refused by its checks was not routed anywhere."""
        route = self.routes.get(request.model)
        if route is None:
            return request, {}
        alias, why = route.choose(request)
        chosen = request.model_copy(update={"model": alias})
        self._targets(chosen)
        metrics.record_route(request.model, large=alias == route.large)
        return chosen, {ROUTE_HEADER: f"{request.model} -> {alias}: {why}"}

    def _remember(
        self,
        response_id: str,
        tenant: str,
        request: ChatCompletionRequest,
        target: str,
        deadline: Deadline | None,
    ) -> None:
        """Who got answer `response_id`, for its rating (with feedback enabled)."""
        if self.feedback is None:
            return
        version = (request.metadata or {}).get("prompt_version") or NO_PROMPT_VERSION
        self.feedback.remember(response_id, Rated(tenant, request.model, target, version), deadline)

    @property
    def _image_routes(self) -> Mapping[str, Any]:
        return self.images.routes if self.images is not None else {}

    def generate_images(
        self, body: Any, *, tenant: str, metrics: MetricsSink, deadline: Deadline | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """POST /v1/images/generations; the cost is the model's price per image times the images."""
        deadline = self._deadline(deadline)
        request = parse(ImageRequest, body)
        if self.images is None or request.model not in self.images.routes:
            raise unknown_model(request.model, "image ")
        # Held against the tenant's allowance: the dearest target's price (a fallback may answer).
        price = max(t.price_per_image for t in self.images.routes[request.model])
        admission = self._admit(tenant, price * request.n, 0, deadline)
        started = self.clock()
        try:
            response, generated, size, _quality = self.images.generate(
                request, tenant=tenant, deadline=deadline
            )
        except BaseException:
            self._settle(admission)
            raise
        usage = Usage(
            alias=request.model,
            target=generated.target,
            latency_ms=self._ms(started),
            cost_usd=generated.price_per_image * len(generated.images),
            user=hashed_user(request.user),
        )
        self._settle(admission, usage)
        metrics.record(usage, tenant=tenant)
        headers = {
            "x-genai-target": generated.target,
            "x-genai-images": str(len(generated.images)),
            "x-genai-size": size,
        }
        return response, _warned(headers, admission)

    # ---------------------------------------------------------------------------------------------
    def _chat_reservation(
        self, request: ChatCompletionRequest, targets: Sequence[ChatProvider]
    ) -> tuple[float, int]:
        """An estimate of the most a chat request can cost, before it is answered: its prompt's tokens
        (routing.estimated_tokens: text and tool definitions) and its output limit for each of its `n` choices
        (every target is held to max_output_tokens or less: shaping.py), at the alias's dearest input
        and output prices. Targets without a price (hosts, endpoints) add 0 USD. Not counted: images
        and retrieved passages (lambdas/gateway/allowance.py says what that means)."""
        prompt = estimated_tokens(
            *(m.text for m in request.messages),
            *(json.dumps(tool.model_dump(), separators=(",", ":")) for tool in request.tools or ()),
        )
        output = (request.token_limit or self.limits.max_output_tokens) * request.n
        prices = [self.prices[t.name] for t in targets if t.name in self.prices]
        usd = (
            (prompt * max(p.input_per_1k for p in prices) + output * max(p.output_per_1k for p in prices))
            / 1000
            if prices
            else 0.0
        )
        return usd, prompt + output

    def _admit(self, tenant: str, usd: float, tokens: int, deadline: Deadline) -> Admission:
        if self.ledger is None:
            return UNCOUNTED
        return self.ledger.admit(tenant, usd=usd, tokens=tokens, deadline=deadline)

    def _settle(self, admission: Admission, *usages: Usage) -> None:
        """What the request cost (its model answer, its semantic cache lookup) replaces its
        reservation; none: it failed and costs nothing."""
        if self.ledger is not None:
            self.ledger.settle(
                admission,
                usd=sum(u.cost_usd for u in usages),
                tokens=sum(u.input_tokens + u.output_tokens for u in usages),
            )

    def _probe(
        self,
        request: ChatCompletionRequest,
        tenant: str,
        metrics: MetricsSink,
        deadline: Deadline,
        billed: list[Usage],
    ) -> Probe | None:
        """The semantic cache's lookup, for a request it applies to. Its embedding is a request of the
        embedding alias (metrics and the tenant's allowance count it) whatever the lookup finds."""
        if self.semantic is None or not self.semantic.applies(request):
            return None
        started = self.clock()
        probe = self.semantic.lookup(
            request,
            tenant=tenant,
            guardrail_version=self.guardrail[1] if self.guardrail else None,
            deadline=deadline,
        )
        if probe.lookup_tokens:
            lookup = Usage(
                alias=self.semantic.embedding_alias,
                target=self.semantic.embedder.name,
                latency_ms=self._ms(started),
                input_tokens=probe.lookup_tokens,
                cost_usd=probe.lookup_usd,
                user=hashed_user(request.user),
            )
            billed.append(lookup)
            metrics.record(lookup, tenant=tenant)
        return probe

    def _check_features(self, request: ChatCompletionRequest, targets: Sequence[ChatProvider]) -> None:
        """Every target of the alias must honour what the request asks for: one that cannot (a fallback
        included) would answer as if the parameter were not there, so the request is refused by name."""
        refused: list[tuple[str, str, str]] = []  # (parameter, target, reason)
        for target in targets:
            if target.name.startswith("bedrock:"):
                model_id = target.name.removeprefix("bedrock:")
                refused += [
                    (param, target.name, why) for param, why in bedrock_unsupported(model_id, request)
                ]
            elif request.n > 1 and self.guardrail is not None:
                # ApplyGuardrail wraps these targets and checks the one answer it is given.
                refused.append(("n", target.name, "the guardrail checks one answer per request"))
        if not refused:
            return
        params = sorted({param for param, _, _ in refused})
        reasons = "; ".join(dict.fromkeys(f"{target}: {why}" for _, target, why in refused))
        raise bad_request(
            f"{', '.join(params)}: not supported for model {request.model!r} ({reasons}); remove "
            f"{'it' if len(params) == 1 else 'them'} or use an alias whose targets all take "
            f"{'it' if len(params) == 1 else 'them'} (docs/gateway.md, compatibility table)",
            param=refused[0][0],
            code="unsupported_parameter",
        )

    def _check_limits(self, request: ChatCompletionRequest) -> None:
        prompt_tokens = sum(len(m.text) for m in request.messages) // CHARS_PER_TOKEN
        if prompt_tokens > self.limits.max_input_tokens:
            raise bad_request(
                f"messages are too long: about {prompt_tokens} tokens, the limit is "
                f"{self.limits.max_input_tokens}",
                param="messages",
                code="context_length_exceeded",
            )
        if request.token_limit and request.token_limit > self.limits.max_output_tokens:
            raise bad_request(
                f"max_tokens {request.token_limit} is above the limit of {self.limits.max_output_tokens}",
                param="max_tokens",
                code="max_tokens_exceeded",
            )

    def _ground(
        self, request: ChatCompletionRequest, deadline: Deadline
    ) -> tuple[ChatCompletionRequest, list]:
        knowledge_base_id = self.knowledge_bases.get(request.knowledge_base or "")
        if knowledge_base_id is None or self.retriever is None:
            known = ", ".join(sorted(self.knowledge_bases)) or "none"
            raise bad_request(
                f"unknown knowledge_base {request.knowledge_base!r} (known: {known})",
                param="knowledge_base",
                code="knowledge_base_not_found",
            )
        try:
            passages = self.retriever.retrieve(knowledge_base_id, _question(request), deadline)
        except ProviderError as error:
            if error.timeout:
                raise GatewayError(
                    504,
                    f"knowledge base retrieval timed out ({error})",
                    type="timeout",
                    code="upstream_timeout",
                ) from None
            raise GatewayError(
                502, f"knowledge base retrieval failed ({error})", type="upstream_error"
            ) from None
        system = Message(role="system", content=grounding_prompt(passages))
        grounded = request.model_copy(update={"messages": [system, *request.messages]})
        return grounded, passages

    def _usage(
        self,
        request: ChatCompletionRequest,
        routed: Routed,
        started: float,
        input_tokens: int,
        output_tokens: int,
        *,
        intervened: bool,
    ) -> Usage:
        """A chat answer's metrics: tokens and their cost at the target's price."""
        price = self.prices.get(routed.target)
        cost = (
            (input_tokens * price.input_per_1k + output_tokens * price.output_per_1k) / 1000 if price else 0.0
        )
        return Usage(
            alias=request.model,
            target=routed.target,
            latency_ms=self._ms(started),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            fallbacks=routed.fallbacks,
            guardrail_intervened=intervened,
            user=hashed_user(request.user),
        )

    def _ms(self, started: float) -> float:
        return (self.clock() - started) * 1000


# What a request may carry without being answered differently: null, false, 0 and empty values are
# the OpenAI API's own defaults for the parameters the gateway does not implement, so clients that
# send them explicitly (LangChain sends its defaults) are served; anything else is refused below.
_NEUTRAL: tuple[Any, ...] = (None, False, 0, "", [], {})


def unsupported_parameters(model: type, body: dict[str, Any]) -> list[str]:
    """The body's parameters that `model` does not implement, with a value that would change the
    answer: the gateway refuses them rather than answer as if they were not there (a tool call
    coming back as empty content, a json_schema ignored)."""
    known = set(model.model_fields)
    return sorted(
        key for key, value in body.items() if key not in known and not any(value == n for n in _NEUTRAL)
    )


def _warned(headers: dict[str, str], admission: Admission) -> dict[str, str]:
    """The response's headers, with the allowance warning once most of it is spent."""
    return {**headers, WARNING_HEADER: admission.warning} if admission.warning else headers


def _question(request: ChatCompletionRequest) -> str:
    """The last user message's text: what retrieval searches for (in a tool conversation the last
    message is a tool result)."""
    return next(m.text for m in reversed(request.messages) if m.role == "user")


def _model_object(alias: str) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": 0, "owned_by": "genai-stack"}


def parse(model: type, body: Any):
    """Validate a request body; every problem becomes a 400 naming the field. A parameter the gateway
    does not implement is refused by name (docs/gateway.md lists what is supported), never dropped."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    if unsupported := unsupported_parameters(model, body):
        alias = body.get("model")
        raise bad_request(
            f"{', '.join(unsupported)}: not supported by this gateway for model {alias!r}; remove "
            f"{'it' if len(unsupported) == 1 else 'them'} or see the supported parameters in docs/gateway.md",
            param=unsupported[0],
            code="unsupported_parameter",
        )
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        message = f"{where}: {first['msg']}" if where else first["msg"]
        raise bad_request(
            message, param=where, code="invalid_value" if first["type"] != "missing" else "missing_field"
        ) from None
