"""The gateway's configuration (environment variable GATEWAY_CONFIG, JSON), validated at cold start,
and how it becomes a Gateway with its providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .allowance import Allowance, SpendLedger
from .cache import ResponseCache
from .deadline import CONNECT_TIMEOUT_SECONDS, as_timed
from .feedback import FeedbackStore
from .guardrail import Guarded, Guardrail
from .images import (
    IMAGE_MODELS,
    MAX_URL_SECONDS,
    BedrockImages,
    EndpointImages,
    EndpointTarget,
    ImageBackend,
    ImageService,
    ImageStore,
    ImageTarget,
)
from .providers.bedrock import BedrockChat, BedrockEmbeddings, CustomModelChat
from .providers.http_pool import PrivateCaTrust, shared_pool
from .providers.openai_format import OpenAIHttpChat, SageMakerChat
from .retrieval import Retriever
from .router import RetryPolicy
from .routing import Route
from .semantic_cache import AliasPolicy, SemanticCache
from .service import Gateway, Limits, Price
from .shaping import Shaped, SystemPrompt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    kind: Literal["bedrock", "bedrock_custom", "sagemaker", "openai_http"]
    model: str | None = None  # bedrock: model / inference profile id or ARN; openai_http: model name
    # bedrock: the application inference profile ARN the call names as modelId, so the spend carries
    # the profile's cost-allocation tag; `model` (what it copies) still names the target in metrics,
    # prices and logs. Without it the call names `model` itself.
    invoke: str | None = None
    endpoint: str | None = None  # sagemaker
    inference_component: str | None = None  # sagemaker, optional
    url: str | None = None  # openai_http base URL
    # openai_http over HTTPS with a certificate of this AWS Private CA, the only CA trusted for it.
    trust_ca: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:acm-pca:")
    # The target's output limit: sent when a request sets no max_tokens, and caps a larger one
    # (lambdas/gateway/shaping.py); without it, the gateway's max_output_tokens.
    max_tokens: int | None = Field(default=None, ge=1)
    system_prompt: SystemPrompt = "keep"  # merge: into the first user turn (templates without system)
    # bedrock_custom: the training approach's serving resource of a customization, by the name its
    # pipeline gives it (providers/bedrock.py CustomModelChat looks the ARN up).
    resource_name: str | None = None
    serving: Literal["on_demand", "provisioned"] | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Target:
        needed = {
            "bedrock": ["model"],
            "bedrock_custom": ["resource_name", "serving"],
            "sagemaker": ["endpoint"],
            "openai_http": ["url", "model"],
        }[self.kind]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} target needs {', '.join(missing)}")
        if self.invoke and self.kind != "bedrock":
            raise ValueError(f"a {self.kind} target has no application inference profile (invoke)")
        if self.trust_ca and not (self.kind == "openai_http" and self.url.startswith("https://")):
            raise ValueError("trust_ca is for openai_http targets with an https:// url")
        return self


class GuardrailSettings(_Strict):
    identifier: str
    version: str
    config: str | None = None  # the configuration's digest: unused here, it makes the template change
    # The guardrail has a contextual grounding policy: grounded answers get ApplyGuardrail with their
    # sources. Without one that call would check nothing the model call's guardrail has not.
    grounding: bool = True


class ImageEndpoint(_Strict):
    """A SageMaker asynchronous endpoint of an image model (lambdas/gateway/images.py EndpointImages)."""

    endpoint: str = Field(min_length=1, max_length=63)
    bucket: str = Field(min_length=3)  # the endpoint's input goes to <bucket>/<input_prefix>
    input_prefix: str = Field(pattern=r"^async/[A-Za-z0-9-]+/input/gateway/$")
    key_id: str | None = None
    wait_seconds: float = Field(gt=0, le=60)


class ImageAlias(_Strict):
    """One image alias: a Bedrock image model (`model`), or an endpoint with an optional Bedrock
    `fallback` model tried when the endpoint gives no image in time."""

    model: str | None = None  # a Bedrock image model id of lambdas/gateway/images.py IMAGE_MODELS
    price_per_image: float = Field(default=0.0, ge=0)  # USD, for EstimatedCost
    endpoint: ImageEndpoint | None = None
    fallback: str | None = None
    fallback_price_per_image: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _known(self) -> ImageAlias:
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("names exactly one of model or endpoint")
        if self.fallback is not None and self.endpoint is None:
            raise ValueError("a fallback follows an endpoint only")
        for model in (self.model, self.fallback):
            if model is not None and model not in IMAGE_MODELS:
                raise ValueError(
                    f"{model!r} is not an image model the gateway maps ({', '.join(IMAGE_MODELS)})"
                )
        return self


class ImageStoreSettings(_Strict):
    bucket: str
    key_id: str | None = None  # the platform key (the data bucket requires SSE-KMS with it)
    url_seconds: int = Field(default=MAX_URL_SECONDS, ge=60, le=MAX_URL_SECONDS)


class CacheSettings(_Strict):
    table: str
    ttl_seconds: int = Field(default=3600, ge=60)


class SemanticAliasSettings(_Strict):
    min_similarity: float = Field(ge=0, le=1)
    shared: bool = False


class SemanticCacheSettings(_Strict):
    index_arn: str = Field(min_length=1)  # the foundation stack's index (a cross-stack import)
    embedding: str  # an embedding alias: its provider embeds the questions
    dimensions: int = Field(ge=1, le=4096)
    ttl_seconds: int = Field(ge=60)
    aliases: dict[str, SemanticAliasSettings] = Field(min_length=1)


class AllowanceSettings(_Strict):
    monthly_usd: float | None = Field(default=None, gt=0)
    monthly_tokens: int | None = Field(default=None, ge=1)


class SpendSettings(_Strict):
    table: str
    allowances: dict[str, AllowanceSettings] = Field(min_length=1)  # tenant -> allowance


class RouteSettings(_Strict):
    small: str
    large: str
    prompt_tokens_over: int | None = Field(default=None, ge=1)
    tools: bool = False
    images: bool = False


class FeedbackSettings(_Strict):
    table: str
    retention_days: int = Field(default=90, ge=1, le=365)


class Settings(_Strict):
    chat: dict[str, list[Target]] = Field(default_factory=dict)
    embeddings: dict[str, Target] = Field(default_factory=dict)
    images: dict[str, ImageAlias] = Field(default_factory=dict)
    image_store: ImageStoreSettings | None = None  # url responses; without it, b64_json only
    guardrail: GuardrailSettings | None = None
    cache: CacheSettings | None = None
    semantic_cache: SemanticCacheSettings | None = None  # lambdas/gateway/semantic_cache.py
    spend: SpendSettings | None = None  # tenants' monthly allowances (lambdas/gateway/allowance.py)
    feedback: FeedbackSettings | None = None  # POST /v1/feedback (lambdas/gateway/feedback.py)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)  # lambdas/gateway/routing.py
    knowledge_bases: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict
    )  # target name -> (in, out) USD per 1k
    # The profile allows at most 25 s, so the function (deadline + 3 s) times out under API
    # Gateway's 29 s (stacks/config.py, GATEWAY_MAX_DEADLINE_SECONDS).
    deadline_seconds: float = Field(default=25.0, gt=0, le=25)
    attempts_per_target: int = Field(default=2, ge=1, le=5)
    max_input_tokens: int = Field(default=32_000, ge=1)
    max_output_tokens: int = Field(default=4_096, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    log_prompts: bool = False

    @model_validator(mode="after")
    def _some_alias(self) -> Settings:
        if not self.chat and not self.embeddings and not self.images:
            raise ValueError("no model alias is configured")
        if any(not targets for targets in self.chat.values()):
            raise ValueError("every chat alias needs at least one target")
        unknown = sorted(
            f"{name}.{field}"
            for name, route in self.routes.items()
            for field in ("small", "large")
            if getattr(route, field) not in self.chat
        )
        if unknown:
            raise ValueError(f"routes name aliases that are not chat aliases: {', '.join(unknown)}")
        semantic = self.semantic_cache
        if semantic is not None and semantic.embedding not in self.embeddings:
            raise ValueError(f"semantic_cache.embedding {semantic.embedding!r} is not an embedding alias")
        if semantic is not None and (unknown := sorted(set(semantic.aliases) - set(self.chat))):
            raise ValueError(f"semantic_cache.aliases names aliases that are not chat aliases: {unknown}")
        if any(t.kind != "bedrock" for t in self.embeddings.values()):
            raise ValueError("embedding aliases are served by Bedrock targets")
        over = [
            f"{alias}[{index}]"
            for alias, targets in self.chat.items()
            for index, t in enumerate(targets)
            if t.max_tokens and t.max_tokens > self.max_output_tokens
        ]
        if over:
            raise ValueError(
                f"max_tokens of {', '.join(over)} is above max_output_tokens ({self.max_output_tokens})"
            )
        return self


def build_gateway(settings: Settings, client: Callable[[str], Any]) -> Gateway:
    """`client(service)` returns the TimedClients of a service (the handler: clients whose timeouts
    fit in each request's deadline) or one client (tests pass stubs); created on first use only."""
    guardrail = (settings.guardrail.identifier, settings.guardrail.version) if settings.guardrail else None

    def checks() -> Guardrail:
        """ApplyGuardrail with the profile's guardrail (guarded targets, images, semantic cache hits)."""
        return Guardrail(client("bedrock-runtime"), identifier=guardrail[0], version=guardrail[1])

    def trust_client():
        """acm-pca, for a connection being opened: its calls wait no longer than a connect does."""
        return as_timed(client("acm-pca")).within(None, "acm-pca", cap=CONNECT_TIMEOUT_SECONDS)

    def shaped(target: Target, provider):
        """Every target gets a bounded max_tokens: its own, else the gateway's max_output_tokens."""
        return Shaped(
            provider,
            max_tokens=target.max_tokens or settings.max_output_tokens,
            system_prompt=target.system_prompt,
        )

    def chat_target(target: Target):
        if target.kind == "bedrock_custom":
            return shaped(
                target,
                CustomModelChat(
                    client("bedrock-runtime"),
                    client("bedrock"),
                    resource_name=target.resource_name,
                    serving=target.serving,
                    guardrail=guardrail,
                ),
            )
        if target.kind == "bedrock":
            return shaped(
                target,
                BedrockChat(
                    client("bedrock-runtime"),
                    model_id=target.model,
                    invoke_id=target.invoke,
                    guardrail=guardrail,
                ),
            )
        inner = shaped(
            target,
            SageMakerChat(
                client("sagemaker-runtime"),
                endpoint=target.endpoint,
                inference_component=target.inference_component,
            )
            if target.kind == "sagemaker"
            else OpenAIHttpChat(
                base_url=target.url,
                model=target.model,
                pool=(
                    shared_pool(PrivateCaTrust(trust_client, target.trust_ca)) if target.trust_ca else None
                ),
            ),
        )
        if guardrail is None:
            return inner
        return Guarded(inner, checks())

    embedding_routes = {
        alias: BedrockEmbeddings(client("bedrock-runtime"), model_id=t.model, invoke_id=t.invoke)
        for alias, t in settings.embeddings.items()
    }
    semantic = settings.semantic_cache
    return Gateway(
        chat_routes={alias: [chat_target(t) for t in targets] for alias, targets in settings.chat.items()},
        embedding_routes=embedding_routes,
        policy=RetryPolicy(
            attempts_per_target=settings.attempts_per_target, deadline_seconds=settings.deadline_seconds
        ),
        limits=Limits(
            max_input_tokens=settings.max_input_tokens, max_output_tokens=settings.max_output_tokens
        ),
        prices={name: Price(*price) for name, price in settings.prices.items()},
        cache=ResponseCache(
            client("dynamodb"), table=settings.cache.table, ttl_seconds=settings.cache.ttl_seconds
        )
        if settings.cache
        else None,
        semantic=SemanticCache(
            client("s3vectors"),
            embedding_routes[semantic.embedding],
            embedding_alias=semantic.embedding,
            index_arn=semantic.index_arn,
            dimensions=semantic.dimensions,
            ttl_seconds=semantic.ttl_seconds,
            aliases={alias: AliasPolicy(a.min_similarity, a.shared) for alias, a in semantic.aliases.items()},
            price_per_1k=settings.prices.get(embedding_routes[semantic.embedding].name, (0.0, 0.0))[0],
            guardrail=checks() if guardrail else None,
        )
        if semantic
        else None,
        ledger=SpendLedger(
            client("dynamodb"),
            table=settings.spend.table,
            allowances={
                tenant: Allowance(a.monthly_usd, a.monthly_tokens)
                for tenant, a in settings.spend.allowances.items()
            },
        )
        if settings.spend
        else None,
        feedback=FeedbackStore(
            client("dynamodb"), table=settings.feedback.table, retention_days=settings.feedback.retention_days
        )
        if settings.feedback
        else None,
        routes={name: Route(**route.model_dump()) for name, route in settings.routes.items()},
        guardrail=guardrail,
        guardrail_client=client("bedrock-runtime") if guardrail and settings.guardrail.grounding else None,
        knowledge_bases=settings.knowledge_bases,
        retriever=Retriever(client("bedrock-agent-runtime")) if settings.knowledge_bases else None,
        images=ImageService(
            routes={alias: image_targets(a, client) for alias, a in settings.images.items()},
            guardrail=checks() if guardrail else None,
            store=ImageStore(
                client("s3"),
                bucket=settings.image_store.bucket,
                key_id=settings.image_store.key_id,
                url_seconds=settings.image_store.url_seconds,
            )
            if settings.image_store
            else None,
            policy=RetryPolicy(
                attempts_per_target=settings.attempts_per_target, deadline_seconds=settings.deadline_seconds
            ),
        )
        if settings.images
        else None,
    )


def image_targets(alias: ImageAlias, client: Callable[[str], Any]) -> tuple[ImageBackend, ...]:
    """An image alias's targets, in the order they are tried."""
    if alias.endpoint is None:
        assert alias.model is not None  # ImageAlias._known
        return (BedrockImages(client("bedrock-runtime"), ImageTarget(alias.model, alias.price_per_image)),)
    first = EndpointImages(
        client("s3"),
        client("sagemaker-runtime"),
        EndpointTarget(**alias.endpoint.model_dump()),
    )
    if alias.fallback is None:
        return (first,)
    fallback = BedrockImages(
        client("bedrock-runtime"), ImageTarget(alias.fallback, alias.fallback_price_per_image)
    )
    return (first, fallback)
