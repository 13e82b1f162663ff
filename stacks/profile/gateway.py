"""The profile's gateway section: the OpenAI-compatible model gateway."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from genai_stack.catalog import (
    bedrock_catalog,
)
from genai_stack.profile.bedrock import Bedrock
from genai_stack.profile.common import Slug, VpcEndpointId, _Strict, located
from genai_stack.profile.hosting import Hosting, Network
from genai_stack.profile.inference import Inference
from genai_stack.profile.training import Training

# --------------------------------------------------------------------------------------------------
# Lambda orchestration: the model gateway


class ImageEndpointAlias(_Strict):
    """An image alias on a SageMaker asynchronous endpoint of the inference section (container
    diffusers), with an optional Bedrock image model that answers while the endpoint starts from zero
    instances (docs/gateway.md, Images)."""

    sagemaker: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="an endpoint name")
    fallback: str | None = Field(
        default=None, description="a Bedrock image model listed under bedrock.models"
    )
    wait_seconds: float | None = Field(
        default=None,
        gt=0,
        le=60,
        description="how long a request waits for the endpoint's image before the fallback is asked "
        "after it is queued (default: the deadline less 12 s with a fallback, else less 5 s)",
    )


def image_models(value: str | ImageEndpointAlias) -> tuple[str, ...]:
    """The Bedrock image models an image alias invokes."""
    if isinstance(value, str):
        return (value,)
    return (value.fallback,) if value.fallback else ()


class GatewayTarget(_Strict):
    """One target of an alias: exactly one of `bedrock` (a model or inference profile listed under
    bedrock), `application_inference_profile` (a campaign profile of
    bedrock.application_inference_profiles), `sagemaker` (an endpoint name) or `self_hosted` (a host
    of the hosting section). Bedrock targets are invoked through an application inference profile
    (created per alias and model, or the named campaign one), so their spend carries the
    cost-allocation tag (docs/cost.md)."""

    bedrock: str | None = None
    application_inference_profile: str | None = Field(
        default=None, description="A name from bedrock.application_inference_profiles (a campaign profile)"
    )
    sagemaker: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    self_hosted: str | None = None
    custom_model: str | None = Field(
        default=None,
        description="A name of training.customizations whose serving is on_demand or provisioned: the "
        "model its pipeline trained last (docs/gateway.md, Custom models)",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Output tokens sent when a request sets no max_tokens, and the cap of a larger one "
        "(default: gateway.max_output_tokens); keep a generation inside the deadline (docs/gateway.md)",
    )
    system_prompt: Literal["keep", "merge"] = Field(
        default="keep",
        description="merge: system messages are prepended to the first user turn, for models whose chat "
        "template refuses a system role (Mistral 7B Instruct v0.1/v0.2)",
    )

    def bedrock_model(self, bedrock: Bedrock | None) -> str | None:
        """The model or system inference profile this target invokes (a campaign profile's source);
        None for a target that is not a Bedrock model."""
        if self.bedrock:
            return self.bedrock
        if self.application_inference_profile and bedrock is not None:
            sources = {a.name: a.source for a in bedrock.application_inference_profiles}
            return sources.get(self.application_inference_profile)
        return None

    @model_validator(mode="after")
    def _exactly_one(self) -> GatewayTarget:
        kinds = ("bedrock", "application_inference_profile", "sagemaker", "self_hosted", "custom_model")
        chosen = [name for name in kinds if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                "names exactly one of bedrock, application_inference_profile, sagemaker, self_hosted or "
                "custom_model"
            )
        return self


class GatewayTenant(_Strict):
    """An API key and usage plan (steady rate, burst and monthly request quota), and optionally a
    monthly spend allowance: once the tenant has spent it, requests get 429 insufficient_quota until
    the month (UTC) ends (lambdas/gateway/allowance.py; docs/gateway.md, Spend allowances)."""

    name: Slug
    rate_per_second: float = Field(default=5, gt=0, le=10_000)
    burst: int = Field(default=10, ge=1, le=5_000)
    monthly_quota: int | None = Field(default=None, ge=1)
    monthly_usd: float | None = Field(
        default=None,
        gt=0,
        le=10_000_000,
        description="USD the tenant may spend a month, at the gateway's EstimatedCost prices "
        "(targets without a price, such as hosts and endpoints, count 0 USD)",
    )
    monthly_tokens: int | None = Field(
        default=None, ge=1, description="input and output tokens the tenant may use a month"
    )

    @property
    def has_allowance(self) -> bool:
        return self.monthly_usd is not None or self.monthly_tokens is not None


class GatewayRoute(_Strict):
    """A name clients call that picks, per request, between a small (cheap, fast) alias and a large one
    by what the request measurably needs: the large one when any `large_when` condition holds, else
    the small one. Each alias keeps its own targets and fallbacks (docs/gateway.md, Routing)."""

    small: Slug = Field(description="The alias that answers by default")
    large: Slug = Field(description="The alias that answers when a large_when condition holds")
    prompt_tokens_over: int | None = Field(
        default=None, ge=1, description="large_when: the prompt's estimated tokens are above this"
    )
    tools: bool = Field(default=False, description="large_when: the request offers tools")
    images: bool = Field(default=False, description="large_when: a message carries an image")

    @model_validator(mode="after")
    def _some_condition(self) -> GatewayRoute:
        if self.prompt_tokens_over is None and not self.tools and not self.images:
            raise ValueError(
                "names no condition for the large alias: set prompt_tokens_over, tools or images"
            )
        if self.small == self.large:
            raise ValueError(f"small and large are both {self.small!r}: a route needs two aliases")
        return self


class GatewayFeedback(_Strict):
    """POST /v1/feedback: tenants rate their answers (score 0 to 1) by response id; the ratings are the
    Satisfaction metric by alias, target, tenant and prompt version (docs/gateway.md, User feedback)."""

    retention_days: int = Field(
        default=90, ge=1, le=365, description="Days an answer can be rated, and a rating is kept"
    )
    alarm_below: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Alarm when an alias's mean score over an hour falls below this",
    )
    min_ratings: int = Field(
        default=10, ge=1, description="... in an hour with at least this many ratings (fewer prove nothing)"
    )


class GatewayCache(_Strict):
    enabled: bool = True
    ttl_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)


class GatewaySemanticAlias(_Strict):
    shared: bool = Field(
        default=False,
        description="true: every tenant may get an answer another tenant's question produced (answers "
        "that depend on nothing tenant-specific); false: each tenant's entries are its own",
    )
    min_similarity: float | None = Field(
        default=None, ge=0.5, le=1, description="this alias's threshold, in place of semantic_cache's"
    )


# The semantic cache's index in the profile's vector bucket, beside the knowledge bases' (one index
# per knowledge base, named after it): no knowledge base may take this name.
SEMANTIC_CACHE_INDEX = "semantic-cache"


class GatewaySemanticCache(_Strict):
    """A request whose question means the same as one an alias already answered, in the same context
    (earlier messages, system prompt, parameters, guardrail version, tenant), gets that answer
    (lambdas/gateway/semantic_cache.py; docs/gateway.md, Semantic cache). Only requests with
    temperature 0 or cache: true."""

    embedding: Slug = Field(description="An alias of gateway.embeddings: it embeds the questions")
    dimensions: int = Field(
        default=512,
        ge=1,
        le=4096,
        description="The vectors' size: one the embedding model produces (the index is made for it; a "
        "change replaces the index and empties the cache)",
    )
    min_similarity: float = Field(
        default=0.95,
        ge=0.5,
        le=1,
        description="Cosine similarity a stored question must reach to answer (the SemanticCacheSimilarity "
        "metric shows what hits score)",
    )
    ttl_seconds: int = Field(
        default=86400, ge=60, le=30 * 24 * 3600, description="How long an answer is served"
    )
    aliases: dict[Slug, GatewaySemanticAlias] = Field(
        min_length=1, description="The chat aliases that use it (per alias opt-in)"
    )


class GatewayAlarms(_Strict):
    server_error_percent: float = Field(default=5, gt=0, le=100, description="5xx share over 5 minutes")
    latency_p90_ms: int = Field(default=15_000, ge=100)
    fallback_percent: float = Field(
        default=20,
        gt=0,
        le=100,
        description="share of an alias's requests answered by a later target (its first failed), 15 minutes",
    )


# API Gateway REST integrations time out after 29 s by default ("Quotas for configuring and running a
# REST API in API Gateway", maximum integration timeout:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html).
# The gateway function's timeout is its deadline + GATEWAY_TIMEOUT_HEADROOM_SECONDS (the deadline
# fires first and answers a clean 504), and stays GATEWAY_API_MARGIN_SECONDS under API Gateway's,
# so API Gateway never gives up on a function that is still running.
API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29
GATEWAY_TIMEOUT_HEADROOM_SECONDS = 3
GATEWAY_API_MARGIN_SECONDS = 1
GATEWAY_MAX_DEADLINE_SECONDS = (
    API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - GATEWAY_API_MARGIN_SECONDS - GATEWAY_TIMEOUT_HEADROOM_SECONDS
)


# Images of url responses (data bucket, gateway-images/) expire after this many days by default: a
# pre-signed URL is valid for an hour at most (lambdas/gateway/images.py MAX_URL_SECONDS), so a few
# days leave time to download and keep nothing for long.
GATEWAY_IMAGE_RETENTION_DAYS = 3


def gateway_function_timeout_seconds(deadline_seconds: float) -> int:
    """The gateway Lambda's timeout (whole seconds) for a deadline."""
    return math.ceil(deadline_seconds) + GATEWAY_TIMEOUT_HEADROOM_SECONDS


class Gateway(_Strict):
    """The OpenAI-compatible model gateway (API Gateway REST + Lambda)."""

    aliases: dict[Slug, Annotated[list[GatewayTarget], Field(min_length=1, max_length=5)]] = Field(
        min_length=1
    )
    embeddings: dict[Slug, str] = Field(default_factory=dict, description="alias -> Bedrock embedding model")
    images: dict[Slug, str | ImageEndpointAlias] = Field(
        default_factory=dict,
        description="alias -> Bedrock image model listed under bedrock.models, or {sagemaker: <an "
        "asynchronous diffusers endpoint>, fallback: <a Bedrock image model>} (POST "
        "/v1/images/generations; docs/gateway.md, Images)",
    )
    image_retention_days: int = Field(
        default=GATEWAY_IMAGE_RETENTION_DAYS,
        ge=1,
        le=365,
        description="Days the images of url responses stay in the data bucket (gateway-images/, a "
        "lifecycle rule) before they expire",
    )
    knowledge_bases: list[str] = Field(default_factory=list, description="knowledge bases requests may name")
    auth: Literal["api_key", "iam"] = "api_key"
    tenants: list[GatewayTenant] = Field(default_factory=list)
    cache: GatewayCache = Field(default_factory=GatewayCache)
    semantic_cache: GatewaySemanticCache | None = Field(
        default=None,
        description="Answers for paraphrases of questions already answered (S3 Vectors); off by default",
    )
    feedback: GatewayFeedback | None = Field(
        default=None, description="User feedback on answers (POST /v1/feedback); off by default"
    )
    routes: dict[Slug, GatewayRoute] = Field(
        default_factory=dict,
        description="Names that pick a small or a large chat alias per request (docs/gateway.md, Routing)",
    )
    deadline_seconds: float = Field(
        default=25,
        ge=1,
        description="Time a request may take from entry to answer; the function times out "
        f"{GATEWAY_TIMEOUT_HEADROOM_SECONDS} s later, under API Gateway's 29 s",
    )
    max_body_kb: int = Field(default=256, ge=1, le=6144)
    max_output_tokens: int = Field(default=4096, ge=1)
    log_prompts: bool = Field(default=False, description="Log request bodies (prompts) in CloudWatch Logs")
    # API Gateway writes access logs with one CloudWatch Logs role per account and region
    # (AWS::ApiGateway::Account; API Gateway developer guide, "Permissions for CloudWatch logging",
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html). Like Bedrock
    # invocation logging, one profile per account and region owns it; `genai-stack doctor` checks it.
    api_gateway_account_role: Literal["create", "existing"] = Field(
        default="create",
        description="API Gateway's CloudWatch Logs role, one setting per account and region: 'create' sets "
        "it to a role of this profile (kept when the stack is deleted); 'existing' relies on the one "
        "already set (every other profile in the same account and region)",
    )
    alarms: GatewayAlarms = Field(default_factory=GatewayAlarms)
    # Protection when deployed (stacks/components/gateway_protection.py, docs/gateway.md "Protection").
    endpoint: Literal["public", "private"] = Field(
        default="public",
        description="'public': a REGIONAL API behind an AWS WAF web ACL (AWS managed common and "
        "known-bad-inputs rules, a rate-based rule); 'private': a PRIVATE API reachable only through the "
        "execute-api interface VPC endpoints in private_vpc_endpoint_ids",
    )
    # Existing endpoints of the callers' network, not one created here: a private API is called from the
    # consumers' VPCs, whose network team owns the execute-api endpoint, and an endpoint with private DNS
    # cuts its VPC off from every public API's default hostname (API Gateway guide, "Private REST APIs in
    # API Gateway", best practices: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-apis.html).
    private_vpc_endpoint_ids: list[VpcEndpointId] = Field(
        default_factory=list,
        max_length=20,
        description="endpoint: private: the execute-api interface VPC endpoints (vpce-...) the callers "
        "use; the API is associated with each and its resource policy denies every other path",
    )
    # The function that carries prompts in a private network of its own (managed-api, custom-model): a VPC
    # with private subnets only, or an existing one. A gateway with self-hosted targets runs in the
    # hosts' VPC (hosting.network) instead.
    network: Network | None = Field(
        default=None,
        description="run the gateway function in a VPC of its own (private subnets, no internet route; "
        "Bedrock and SageMaker runtime through interface endpoints, DynamoDB and S3 through gateway "
        "endpoints) or in an existing one; with self-hosted targets it runs in the hosts' VPC",
    )
    waf_rate_limit: int = Field(
        default=3000,
        ge=10,
        le=2_000_000_000,
        description="endpoint: public: requests from one IP address in 5 minutes above which the web ACL "
        "blocks that address (AWS WAF rate-based rule; minimum 10)",
    )

    @property
    def uses_self_hosted(self) -> bool:
        return any(t.self_hosted for targets in self.aliases.values() for t in targets)

    @property
    def in_vpc(self) -> bool:
        """The function runs in a VPC: the hosts' (self-hosted targets) or its own (`network`)."""
        return self.uses_self_hosted or self.network is not None

    @property
    def vpc_endpoints(self) -> tuple[str, ...]:
        """The interface endpoints the function calls from its VPC, which has no route to the internet
        (stacks/components/model_network.py). Not CloudWatch Logs: Lambda delivers a function's logs
        itself, whatever the function's network. Not KMS: the function never calls it (the cache table,
        the image store and the environment are decrypted by DynamoDB, S3 and Lambda)."""
        if not self.in_vpc:
            return ()
        targets = [t for ts in self.aliases.values() for t in ts]
        wanted = {
            "BedrockRuntime": True,  # ApplyGuardrail, Bedrock targets, embeddings
            "BedrockAgentRuntime": bool(self.knowledge_bases),
            "SageMakerRuntime": any(t.sagemaker for t in targets),
            "S3Vectors": self.semantic_cache is not None,
        }
        return tuple(name for name, used in wanted.items() if used)

    @field_validator("deadline_seconds")
    @classmethod
    def _under_api_gateway(cls, seconds: float) -> float:
        timeout = gateway_function_timeout_seconds(seconds)
        if timeout > API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - GATEWAY_API_MARGIN_SECONDS:
            raise ValueError(
                f"the function would time out after {timeout} s "
                f"(deadline + {GATEWAY_TIMEOUT_HEADROOM_SECONDS} s), "
                f"not under API Gateway's {API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS} s integration timeout "
                f"with {GATEWAY_API_MARGIN_SECONDS} s to spare; allowed: 1 to {GATEWAY_MAX_DEADLINE_SECONDS}"
            )
        return seconds

    @model_validator(mode="after")
    def _target_max_tokens(self) -> Gateway:
        problems = [
            located(
                f"aliases.{alias}[{index}].max_tokens",
                f"{t.max_tokens} is above max_output_tokens ({self.max_output_tokens}); "
                f"allowed: 1 to {self.max_output_tokens}",
            )
            for alias, targets in self.aliases.items()
            for index, t in enumerate(targets)
            if t.max_tokens is not None and t.max_tokens > self.max_output_tokens
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _routes(self) -> Gateway:
        taken = {*self.aliases, *self.embeddings, *self.images}
        problems = []
        for name, route in self.routes.items():
            if name in taken:
                problems.append(
                    located(f"routes.{name}", "is also an alias: a route needs a name of its own")
                )
            for field in ("small", "large"):
                alias = getattr(route, field)
                if alias not in self.aliases:
                    known = ", ".join(sorted(self.aliases))
                    problems.append(
                        located(f"routes.{name}.{field}", f"{alias!r} is not a chat alias (aliases: {known})")
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _semantic_cache(self) -> Gateway:
        semantic = self.semantic_cache
        if semantic is None:
            return self
        problems = []
        if semantic.embedding not in self.embeddings:
            known = ", ".join(sorted(self.embeddings)) or "none: add one under gateway.embeddings"
            problems.append(
                located(
                    "semantic_cache.embedding",
                    f"{semantic.embedding!r} is not an alias of gateway.embeddings (aliases: {known})",
                )
            )
        for alias in semantic.aliases:
            if alias not in self.aliases:
                why = (
                    f"is a route: name the aliases it picks ({self.routes[alias].small}, "
                    f"{self.routes[alias].large})"
                    if alias in self.routes
                    else f"is not a chat alias (aliases: {', '.join(sorted(self.aliases))})"
                )
                problems.append(located(f"semantic_cache.aliases.{alias}", why))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _tenants(self) -> Gateway:
        if self.auth == "api_key" and not self.tenants:
            raise ValueError(
                located("tenants", "is empty: with auth api_key every caller needs a tenant (API key)")
            )
        names = [t.name for t in self.tenants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(located("tenants", f"names {', '.join(duplicates)} more than once"))
        if self.auth != "api_key" and self.feedback is not None:
            raise ValueError(
                located(
                    "feedback",
                    "needs auth api_key: with auth iam every caller is the same tenant to the gateway, so "
                    "it could not check that a rating comes from the tenant that got the answer",
                )
            )
        if self.auth != "api_key":
            for index, tenant in enumerate(self.tenants):
                if tenant.has_allowance:
                    raise ValueError(
                        located(
                            f"tenants[{index}]",
                            "has monthly_usd or monthly_tokens, but with auth iam the gateway knows no "
                            "tenant to count them against: use auth api_key, or remove them",
                        )
                    )
        return self

    @property
    def allowances(self) -> dict[str, dict[str, float | int]]:
        """Tenant -> its monthly allowance (the GATEWAY_CONFIG's spend.allowances)."""
        return {
            t.name: {
                k: v for k, v in (("monthly_usd", t.monthly_usd), ("monthly_tokens", t.monthly_tokens)) if v
            }
            for t in self.tenants
            if t.has_allowance
        }

    @model_validator(mode="after")
    def _network(self) -> Gateway:
        if self.network is not None and self.uses_self_hosted:
            raise ValueError(
                located(
                    "network",
                    "is set, but a gateway with self_hosted targets runs in the hosts' VPC: configure "
                    "hosting.network instead",
                )
            )
        return self

    @model_validator(mode="after")
    def _endpoint(self) -> Gateway:
        ids = self.private_vpc_endpoint_ids
        if self.endpoint == "private" and not ids:
            raise ValueError(
                located(
                    "private_vpc_endpoint_ids",
                    "is empty: endpoint private needs the execute-api interface VPC endpoint(s) the "
                    "callers use (vpce-...), or set endpoint: public",
                )
            )
        if self.endpoint == "public" and ids:
            raise ValueError(
                located(
                    "private_vpc_endpoint_ids",
                    f"{ids} is set with endpoint: public, where nothing uses it; allowed: endpoint: private",
                )
            )
        if self.endpoint == "private" and "waf_rate_limit" in self.model_fields_set:
            raise ValueError(
                located(
                    "waf_rate_limit",
                    "is set with endpoint: private, which has no web ACL; allowed only with endpoint: public",
                )
            )
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(
                located("private_vpc_endpoint_ids", f"names {', '.join(duplicates)} more than once")
            )
        return self


def gateway_problems(
    gateway: Gateway,
    bedrock: Bedrock | None,
    hosting: Hosting | None = None,
    training: Training | None = None,
    inference: Inference | None = None,
) -> list[str]:
    """Every Bedrock model a gateway alias uses must be allowed by the profile's bedrock section, and
    every custom model must be a customization the training section serves."""
    allowed = set(bedrock.models) | set(bedrock.inference_profiles) if bedrock else set()
    catalog = bedrock_catalog()
    problems = []
    if bedrock is None:
        return ["needs the bedrock section: the gateway's model access and guardrail come from it"]
    hosts = {h.name for h in hosting.hosts} if hosting else set()
    served = {c.name for c in training.customizations if c.serving != "none"} if training else set()
    for alias, targets in gateway.aliases.items():
        for index, target in enumerate(targets):
            if target.custom_model and target.custom_model not in served:
                known = ", ".join(sorted(served)) or "none: add a training customization with serving"
                problems.append(
                    located(
                        f"aliases.{alias}[{index}].custom_model",
                        f"{target.custom_model!r} is not a customization of the training section served "
                        f"on_demand or provisioned (served: {known})",
                    )
                )
            if target.self_hosted and target.self_hosted not in hosts:
                known = ", ".join(sorted(hosts)) or "none: add a hosting section"
                problems.append(
                    located(
                        f"aliases.{alias}[{index}].self_hosted",
                        f"{target.self_hosted!r} is not a host of the hosting section (hosts: {known})",
                    )
                )
            if target.bedrock and target.bedrock not in allowed:
                problems.append(
                    located(
                        f"aliases.{alias}[{index}].bedrock",
                        f"{target.bedrock!r} is not listed under "
                        "bedrock.models or bedrock.inference_profiles",
                    )
                )
            elif target.bedrock and catalog.model_of(target.bedrock).modality != "text":
                problems.append(
                    located(f"aliases.{alias}[{index}].bedrock", f"{target.bedrock!r} is not a text model")
                )
            if target.application_inference_profile:
                where = f"aliases.{alias}[{index}].application_inference_profile"
                campaigns = {a.name: a for a in bedrock.application_inference_profiles}
                app = campaigns.get(target.application_inference_profile)
                if app is None:
                    known = ", ".join(sorted(campaigns)) or "none: add bedrock.application_inference_profiles"
                    problems.append(
                        located(
                            where,
                            f"{target.application_inference_profile!r} is not a name of "
                            f"bedrock.application_inference_profiles (allowed: {known})",
                        )
                    )
                elif app.source in allowed and catalog.model_of(app.source).modality != "text":
                    problems.append(located(where, f"{app.name!r} copies {app.source!r}, not a text model"))
    semantic = gateway.semantic_cache
    if semantic is not None and semantic.embedding in gateway.embeddings:
        model_id = gateway.embeddings[semantic.embedding]
        sizes = catalog.models[model_id].dimensions if model_id in catalog.models else ()
        if sizes and semantic.dimensions not in sizes:
            problems.append(
                located(
                    "semantic_cache.dimensions",
                    f"{semantic.dimensions} is not a size {model_id} produces; allowed: "
                    f"{', '.join(str(d) for d in sizes)}",
                )
            )
    if semantic is not None and any(kb.name == SEMANTIC_CACHE_INDEX for kb in bedrock.knowledge_bases):
        problems.append(
            located(
                "semantic_cache",
                f"needs the vector index name {SEMANTIC_CACHE_INDEX!r}, which a knowledge base of "
                "bedrock.knowledge_bases has: rename that knowledge base",
            )
        )
    for alias, model in gateway.embeddings.items():
        known = bedrock_catalog().models.get(model)
        if model not in allowed or known is None or known.modality != "embeddings":
            problems.append(
                located(
                    f"embeddings.{alias}", f"{model!r} is not an embeddings model listed under bedrock.models"
                )
            )
    from genai_stack.lambdas.gateway.images import IMAGE_MODELS  # the request bodies the gateway can build

    image_models_listed = sorted(
        m for m in bedrock.models if m in catalog.models and catalog.models[m].modality == "image"
    )
    guardrail = bedrock.guardrail if bedrock else None
    if gateway.images and guardrail and not any("IMAGE" in f.modalities for f in guardrail.content_filters):
        # ApplyGuardrail evaluates images with content filters only, and only where the filter's
        # modalities include IMAGE ("Block harmful images with content filters", Bedrock user guide:
        # https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-mmfilter.html): without one
        # every generated image would pass unevaluated.
        problems.append(
            located(
                "images",
                "the guardrail evaluates generated images only with content filters whose modalities "
                "include IMAGE: add IMAGE to bedrock.guardrail.content_filters[].modalities (e.g. SEXUAL, "
                "VIOLENCE, HATE)",
            )
        )
    endpoints = {e.name: e for e in inference.endpoints} if inference else {}
    for alias, value in gateway.images.items():
        if isinstance(value, ImageEndpointAlias):
            problems += _image_endpoint_problems(alias, value, endpoints, gateway.deadline_seconds)
        for model in image_models(value):
            problems += _image_model_problems(
                f"images.{alias}" + ("" if isinstance(value, str) else ".fallback"),
                model,
                bedrock,
                catalog,
                image_models_listed,
                IMAGE_MODELS,
            )
    kb_names = {kb.name for kb in bedrock.knowledge_bases} if bedrock else set()
    for index, name in enumerate(gateway.knowledge_bases):
        if name not in kb_names:
            problems.append(
                located(
                    f"knowledge_bases[{index}]",
                    f"{name!r} is not a knowledge base of bedrock.knowledge_bases",
                )
            )
    return problems


def _image_model_problems(where, model, bedrock, catalog, image_models_listed, known_bodies) -> list[str]:
    known = catalog.models.get(model)
    if model not in bedrock.models:
        return [
            located(
                where,
                f"{model!r} is not listed under bedrock.models (image models listed: "
                f"{', '.join(image_models_listed) or 'none'})",
            )
        ]
    if known is None or known.modality != "image":
        return [
            located(
                where,
                f"{model!r} is not an image-generation model; allowed: an image model of "
                "stacks/data/bedrock_models.json "
                f"({', '.join(m for m in known_bodies if m in catalog.models)})",
            )
        ]
    if model not in known_bodies:
        return [
            located(
                where,
                f"{model!r}: the gateway has no request body for this model; allowed: "
                f"{', '.join(known_bodies)}",
            )
        ]
    return []


def _image_endpoint_problems(alias, value, endpoints, deadline_seconds) -> list[str]:
    """An image alias on an endpoint: an asynchronous diffusers endpoint of the inference section (the
    gateway queues the request and reads the answer: lambdas/gateway/images.py EndpointImages)."""
    where = f"images.{alias}.sagemaker"
    endpoint = endpoints.get(value.sagemaker)
    if endpoint is None:
        known = ", ".join(sorted(endpoints)) or "none: add an inference section"
        return [located(where, f"{value.sagemaker!r} is not an inference endpoint ({known})")]
    problems = []
    if endpoint.container != "diffusers" or endpoint.async_inference is None:
        problems.append(
            located(
                where,
                f"{value.sagemaker!r} is not an asynchronous diffusers endpoint (container: diffusers with "
                "async_inference): the gateway queues image requests on such endpoints only",
            )
        )
    if value.wait_seconds is not None and value.wait_seconds >= deadline_seconds:
        problems.append(
            located(
                f"images.{alias}.wait_seconds",
                f"{value.wait_seconds:g} is not below the gateway's deadline_seconds ({deadline_seconds:g})",
            )
        )
    return problems
