"""OrchestrationStack: the model gateway. It only wires: the gateway construct, its configuration
from the profile, the Bedrock stack's policy, guardrail and knowledge bases, the cache table and,
for self-hosted targets, the hosts' load balancers and VPC."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.bedrock_stack import BedrockStack
from genai_stack.catalog import bedrock_catalog, bedrock_image_prices, bedrock_prices
from genai_stack.components.assistant_bot import AssistantBot
from genai_stack.components.cost_controls import GatewayCost
from genai_stack.components.endpoint_layout import async_prefix
from genai_stack.components.gateway_protection import GatewayProtection
from genai_stack.components.model_access import ApplicationProfileRef
from genai_stack.components.model_gateway import GatewayNetwork, ModelGateway, Tenant
from genai_stack.components.model_network import ModelNetwork
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.config import Assistant, Gateway, GatewayTarget, ImageEndpointAlias
from genai_stack.hosting_stack import HostingStack


def target_config(
    target: GatewayTarget,
    hosting: HostingStack | None,
    endpoints: Mapping[str, str] | None = None,
    profile: ApplicationProfileRef | None = None,
    custom_models: Mapping[str, tuple[str, str]] | None = None,
) -> dict:
    """`endpoints`: the profile's inference endpoints, short name -> SageMaker endpoint name; a
    SageMaker target naming one of them calls it, any other name is an endpoint outside the profile.
    `profile`: the application inference profile a Bedrock target invokes (`invoke`, its ARN: the
    call then carries the cost-allocation tag); `model` stays the model or system profile it copies
    (prices, metrics, logs). The target's limits (max_tokens, system_prompt) are written only when
    the profile sets them."""
    limits: dict = {}
    if target.max_tokens is not None:
        limits["max_tokens"] = target.max_tokens
    if target.system_prompt != "keep":
        limits["system_prompt"] = target.system_prompt
    if target.bedrock or target.application_inference_profile:
        if profile is None and target.application_inference_profile:
            raise ValueError(
                f"no ARN for application inference profile {target.application_inference_profile}"
            )
        invoke = {"invoke": profile.arn} if profile is not None else {}
        return {"kind": "bedrock", "model": profile.source if profile else target.bedrock, **invoke, **limits}
    if target.custom_model:
        serving, resource_name = (custom_models or {})[target.custom_model]
        return {"kind": "bedrock_custom", "resource_name": resource_name, "serving": serving, **limits}
    if target.sagemaker:
        endpoint = (endpoints or {}).get(target.sagemaker, target.sagemaker)
        return {"kind": "sagemaker", "endpoint": endpoint, **limits}
    fleet = hosting.fleets[target.self_hosted]
    # The private CA the gateway trusts for this host's HTTPS certificate (hosting.tls.private_ca_arn).
    trust = {"trust_ca": hosting.trusted_ca_arn} if hosting.trusted_ca_arn else {}
    return {"kind": "openai_http", "url": fleet.url, "model": fleet.host.model.name, **trust, **limits}


# With a fallback, an endpoint's image is waited for until this many seconds before the deadline: SD3.5
# Large on Bedrock answers within that, guardrail checks included.
FALLBACK_SECONDS = 12.0
# Without one, the guardrail check of the images and their storage still need this much.
AFTER_IMAGE_SECONDS = 5.0


def image_alias_config(
    value: str | ImageEndpointAlias,
    deadline_seconds: float,
    endpoints: Mapping[str, str],
    artifacts: Mapping[str, str],
    prices: Mapping[str, float],
) -> dict:
    """One alias of the gateway's `images` (lambdas/gateway/config.py ImageAlias)."""
    if isinstance(value, str):
        return {"model": value, "price_per_image": prices.get(value, 0.0)}
    name = endpoints.get(value.sagemaker, value.sagemaker)
    reserve = FALLBACK_SECONDS if value.fallback else AFTER_IMAGE_SECONDS
    wait = value.wait_seconds or max(1.0, deadline_seconds - reserve)
    config: dict = {
        "endpoint": {
            "endpoint": name,
            "bucket": artifacts["bucket"],
            "input_prefix": f"{async_prefix(name)}input/gateway/",
            "key_id": artifacts["key_id"],
            "wait_seconds": wait,
        }
    }
    if value.fallback:
        config |= {"fallback": value.fallback, "fallback_price_per_image": prices.get(value.fallback, 0.0)}
    return config


def gateway_config(
    settings: Gateway,
    bedrock: BedrockStack,
    cache_table: dynamodb.ITable | None,
    hosting: HostingStack | None = None,
    endpoints: Mapping[str, str] | None = None,
    image_store: Mapping[str, str] | None = None,
    spend_table: dynamodb.ITable | None = None,
    feedback_table: dynamodb.ITable | None = None,
    custom_models: Mapping[str, tuple[str, str]] | None = None,
    semantic_cache_index: str | None = None,
    artifacts: Mapping[str, str] | None = None,
) -> dict:
    """The GATEWAY_CONFIG document (lambdas/gateway/config.py validates it at cold start).
    `image_store`: bucket and key_id for the images of url responses (when there are image aliases);
    `artifacts`: bucket and key_id of the artifacts bucket (image aliases on asynchronous endpoints);
    `semantic_cache_index`: the ARN of the semantic cache's S3 Vectors index."""
    catalog, prices = bedrock_catalog(), bedrock_prices()
    image_prices = bedrock_image_prices()
    profiles = bedrock.gateway_profiles  # (kind, alias, model or campaign) -> application profile

    def through(alias: str, target: GatewayTarget) -> ApplicationProfileRef | None:
        named = target.application_inference_profile or target.bedrock
        return profiles[("chat", alias, named)] if named else None

    chat = {
        alias: [target_config(t, hosting, endpoints, through(alias, t), custom_models) for t in targets]
        for alias, targets in settings.aliases.items()
    }
    used = {t["model"] for targets in chat.values() for t in targets if t["kind"] == "bedrock"}
    used |= set(settings.embeddings.values())
    config: dict = {
        "chat": chat,
        "embeddings": {
            alias: {
                "kind": "bedrock",
                "model": model,
                "invoke": profiles[("embeddings", alias, model)].arn,
            }
            for alias, model in settings.embeddings.items()
        },
        "prices": {
            f"bedrock:{m}": list(prices[catalog.model_of(m).model_id])
            for m in sorted(used)
            if catalog.model_of(m).model_id in prices
        },
        "knowledge_bases": {name: bedrock.knowledge_bases[name].id for name in settings.knowledge_bases},
        "deadline_seconds": settings.deadline_seconds,
        "max_output_tokens": settings.max_output_tokens,
        "max_body_bytes": settings.max_body_kb * 1024,
        "log_prompts": settings.log_prompts,
    }
    if bedrock.guardrail is not None:
        # `config` is the guardrail configuration's digest, a literal: it makes this stack's template
        # change with every new guardrail version. The CDK CLI skips a stack whose template did not
        # change, and only a deployed template re-reads `version` through Fn::GetStackOutput, so
        # without it the gateway would keep sending the old version (stacks/components/guardrail.py).
        config["guardrail"] = {
            "identifier": bedrock.guardrail.arn,
            "version": bedrock.guardrail.version,
            "config": bedrock.guardrail.config_digest,
            "grounding": bedrock.guardrail.grounding,
        }
    if settings.images:
        # Image models are invoked by their foundation-model ARN: no application inference profile
        # (stacks/components/application_inference_profile.py makes them for chat and embeddings),
        # because AWS's table of the models inference profiles support, which
        # stacks/data/bedrock_models.json records, lists no image-generation model.
        config["images"] = {
            alias: image_alias_config(
                value, settings.deadline_seconds, endpoints or {}, artifacts or {}, image_prices
            )
            for alias, value in settings.images.items()
        }
        if image_store is not None:
            config["image_store"] = dict(image_store)
    if cache_table is not None:
        config["cache"] = {"table": cache_table.table_name, "ttl_seconds": settings.cache.ttl_seconds}
    if spend_table is not None:
        config["spend"] = {"table": spend_table.table_name, "allowances": settings.allowances}
    semantic = settings.semantic_cache
    if semantic is not None:
        if semantic_cache_index is None:
            raise ValueError("gateway.semantic_cache needs the foundation stack's semantic cache index")
        config["semantic_cache"] = {
            "index_arn": semantic_cache_index,
            "embedding": semantic.embedding,
            "dimensions": semantic.dimensions,
            "ttl_seconds": semantic.ttl_seconds,
            "aliases": {
                alias: {
                    "min_similarity": semantic.min_similarity
                    if policy.min_similarity is None
                    else policy.min_similarity,
                    "shared": policy.shared,
                }
                for alias, policy in semantic.aliases.items()
            },
        }
    if settings.routes:
        config["routes"] = {name: route.model_dump() for name, route in settings.routes.items()}
    if feedback_table is not None and settings.feedback is not None:
        config["feedback"] = {
            "table": feedback_table.table_name,
            "retention_days": settings.feedback.retention_days,
        }
    return config


def own_network(
    scope: Construct, settings: Gateway, encryption_key: kms.IKey, log_retention_days: int
) -> GatewayNetwork:
    """gateway.network: a private VPC for the function alone (no host endpoints), the interface
    endpoints it calls open to its security group only. The group's outbound rules stay open: the VPC
    has no route out but its endpoints (an existing VPC's routes are its owner's)."""
    network = ModelNetwork(
        scope,
        "Network",
        settings=settings.network,
        encryption_key=encryption_key,
        log_retention_days=log_retention_days,
        gateway_endpoints=settings.vpc_endpoints,
        hosts=False,
    )
    group = ec2.SecurityGroup(scope, "GatewaySecurityGroup", vpc=network.vpc, description="the model gateway")
    network.allow_from(group)
    return GatewayNetwork(network.vpc, network.private_subnets, group)


class OrchestrationStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Gateway,
        bedrock: BedrockStack,
        cache_table: dynamodb.ITable | None,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        key_table: dynamodb.ITable | None = None,
        spend_table: dynamodb.ITable | None = None,
        feedback_table: dynamodb.ITable | None = None,
        semantic_cache_index: str | None = None,
        custom_models: Mapping[str, tuple[str, str]] | None = None,
        profile_name: str | None = None,
        hosting: HostingStack | None = None,
        endpoints: Mapping[str, str] | None = None,
        data_bucket: s3.IBucket | None = None,
        artifacts_bucket: s3.IBucket | None = None,
        assistant: Assistant | None = None,
        assistant_records: dynamodb.ITable | None = None,
        **kwargs,
    ) -> None:
        """`data_bucket`: where the images of url responses go (gateway-images/), with image aliases;
        `assistant`: the Lex customer assistant in front of the gateway, over `assistant_records`."""
        super().__init__(scope, construct_id, **kwargs)
        endpoints = dict(endpoints or {})
        image_bucket = data_bucket if settings.images else None
        image_endpoints = sorted(
            {
                endpoints.get(v.sagemaker, v.sagemaker)
                for v in settings.images.values()
                if isinstance(v, ImageEndpointAlias)
            }
        )
        network = None
        if settings.uses_self_hosted:
            network = GatewayNetwork(
                hosting.vpc,
                hosting.subnets,
                hosting.client_security_group,
                trusted_ca_arn=hosting.trusted_ca_arn,
            )
        elif settings.network is not None:
            network = own_network(self, settings, encryption_key, log_retention_days)
        gateway = ModelGateway(
            self,
            "Gateway",
            config=gateway_config(
                settings,
                bedrock,
                cache_table,
                hosting,
                endpoints,
                {"bucket": image_bucket.bucket_name, "key_id": encryption_key.key_arn}
                if image_bucket
                else None,
                spend_table,
                feedback_table,
                custom_models,
                semantic_cache_index,
                {"bucket": artifacts_bucket.bucket_name, "key_id": encryption_key.key_arn}
                if artifacts_bucket and image_endpoints
                else None,
            ),
            access_policy=bedrock.model_access_policy,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            deadline_seconds=settings.deadline_seconds,
            auth=settings.auth,
            tenants=[Tenant(t.name, t.rate_per_second, t.burst, t.monthly_quota) for t in settings.tenants],
            cache_table=cache_table,
            key_table=key_table,
            spend_table=spend_table,
            feedback_table=feedback_table,
            semantic_cache_index=semantic_cache_index,
            custom_serving=sorted(
                {
                    (custom_models or {})[t.custom_model][0]
                    for targets in settings.aliases.values()
                    for t in targets
                    if t.custom_model
                }
            ),
            profile_name=profile_name,
            knowledge_base_arns=[bedrock.knowledge_bases[name].arn for name in settings.knowledge_bases],
            sagemaker_endpoints=sorted(
                {
                    endpoints.get(t.sagemaker, t.sagemaker)
                    for ts in settings.aliases.values()
                    for t in ts
                    if t.sagemaker
                }
            ),
            network=network,
            account_logging_role=settings.api_gateway_account_role,
            protection=GatewayProtection(
                endpoint=settings.endpoint,
                vpc_endpoint_ids=tuple(settings.private_vpc_endpoint_ids),
                waf_rate_limit=settings.waf_rate_limit,
            ),
            image_bucket=image_bucket,
            image_endpoints=image_endpoints,
            artifacts_bucket=artifacts_bucket if image_endpoints else None,
        )
        self.invoking_roles = [gateway.handler.role]  # what budget.stop_invocations denies
        self.assistant: AssistantBot | None = None
        if assistant is not None:
            if assistant_records is None:
                raise ValueError("the assistant needs its records table (FoundationStack assistant_records)")
            self.assistant = AssistantBot(
                self,
                "Assistant",
                name=f"{profile_name}-assistant",
                locales=assistant.locales,
                records=assistant_records,
                gateway_api=gateway.api,
                gateway_url=gateway.base_url,
                alias=assistant.alias,
                knowledge_base=assistant.knowledge_base,
                hotline=assistant.hotline,
                idle_session_seconds=assistant.idle_session_seconds,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                conversation_log_days=assistant.conversation_log_days,
            )
            self.assistant.monitor(hub)
            CfnOutput(self, "AssistantBotId", value=self.assistant.bot.attr_id)
            CfnOutput(self, "AssistantBotAliasId", value=self.assistant.alias.attr_bot_alias_id)
        # The gateway's EMF `service` and aliases: the cost alarm sums its per-alias EstimatedCost.
        self.gateway_cost = GatewayCost(
            gateway.handler.service_name, (*settings.aliases, *settings.embeddings, *settings.images)
        )
        gateway.monitor(
            hub,
            server_error_percent=settings.alarms.server_error_percent,
            latency_p90_ms=settings.alarms.latency_p90_ms,
            fallback_percent=settings.alarms.fallback_percent,
            aliases_with_fallbacks=[alias for alias, targets in settings.aliases.items() if len(targets) > 1],
            feedback=settings.feedback,
            chat_aliases=tuple(settings.aliases),
            routes=tuple(settings.routes),
            semantic_aliases=tuple(settings.semantic_cache.aliases) if settings.semantic_cache else (),
        )
