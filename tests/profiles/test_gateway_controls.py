"""Profile validation of the gateway's cost and quality controls: tenants' monthly allowances
(gateway.tenants[]), the Budgets action that stops invocation (budget.stop_invocations), routes,
feedback, and custom-model targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_stack.config import ProfileError, load_profile
from tests.profiles.test_gateway_config import BASE

GATEWAY = {"aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]}}


def load(tmp_path: Path, **changes):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return load_profile(str(path))


def error(tmp_path: Path, **changes) -> str:
    with pytest.raises(ProfileError) as caught:
        load(tmp_path, **changes)
    return str(caught.value)


def test_allowances_reach_the_gateway_configuration(tmp_path):
    tenants = [
        {"name": "app", "monthly_usd": 50},
        {"name": "batch", "monthly_tokens": 1_000_000},
        {"name": "free"},
    ]
    profile = load(tmp_path, gateway={**GATEWAY, "tenants": tenants})
    assert profile.gateway.allowances == {"app": {"monthly_usd": 50}, "batch": {"monthly_tokens": 1_000_000}}


def test_an_allowance_must_be_positive(tmp_path):
    message = error(tmp_path, gateway={**GATEWAY, "tenants": [{"name": "app", "monthly_usd": 0}]})
    assert "gateway.tenants[0].monthly_usd" in message
    assert "greater than 0" in message


def test_allowances_need_the_tenants_that_api_keys_give(tmp_path):
    message = error(
        tmp_path, gateway={**GATEWAY, "auth": "iam", "tenants": [{"name": "app", "monthly_usd": 5}]}
    )
    assert "gateway.tenants[0]: has monthly_usd or monthly_tokens, but with auth iam" in message


def test_stop_invocations_defaults_to_automatic_at_the_limit(tmp_path):
    profile = load(
        tmp_path,
        budget={"monthly_limit_usd": 100, "stop_invocations": {}},
        gateway={**GATEWAY, "tenants": [{"name": "app"}]},
    )
    stop = profile.budget.stop_invocations
    assert (stop.at_percent, stop.approval) == (100, "automatic")


def test_stop_invocations_needs_a_role_to_stop(tmp_path):
    message = error(tmp_path, budget={"monthly_limit_usd": 100, "stop_invocations": {"approval": "manual"}})
    assert "budget.stop_invocations: has no role to stop" in message


def test_stop_invocations_is_refused_where_the_budgets_live_in_another_region(tmp_path, monkeypatch):
    """No region that lacks AWS Budgets offers the Bedrock models a gateway needs today
    (stacks/data/regions.json, bedrock_models.json), so this region is made one."""
    from genai_stack.profile import document

    monkeypatch.setattr(document, "cost_region", lambda region: "us-west-2")
    message = error(
        tmp_path,
        budget={"monthly_limit_usd": 100, "stop_invocations": {}},
        gateway={**GATEWAY, "tenants": [{"name": "app"}]},
    )
    assert (
        "budget.stop_invocations: is not available in us-east-1: the budgets live in a us-west-2" in message
    )


def test_a_route_picks_between_two_chat_aliases_by_a_condition(tmp_path):
    aliases = {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}], "big": [{"bedrock": "amazon.nova-lite-v1:0"}]}
    tenants = [{"name": "app"}]
    route = {"small": "chat", "large": "big", "prompt_tokens_over": 2000}
    profile = load(tmp_path, gateway={"aliases": aliases, "tenants": tenants, "routes": {"assistant": route}})
    assert profile.gateway.routes["assistant"].large == "big"
    problems = [
        error(tmp_path, gateway={"aliases": aliases, "tenants": tenants, "routes": {"rt": changed}})
        for changed in (
            {**route, "large": "missing"},
            {"small": "chat", "large": "big"},
            {**route, "large": "chat"},
        )
    ]
    assert "gateway.routes.rt.large: 'missing' is not a chat alias (aliases: big, chat)" in problems[0]
    assert "names no condition for the large alias" in problems[1]
    assert "small and large are both 'chat'" in problems[2]
    clash = error(tmp_path, gateway={"aliases": aliases, "tenants": tenants, "routes": {"chat": route}})
    assert "gateway.routes.chat: is also an alias" in clash


def test_feedback_needs_the_tenants_that_api_keys_give(tmp_path):
    message = error(tmp_path, gateway={**GATEWAY, "auth": "iam", "feedback": {}})
    assert "gateway.feedback: needs auth api_key" in message


def test_a_custom_model_target_names_a_customization_that_is_served(tmp_path):
    customization = {
        "name": "tuned",
        "base_model": "amazon.nova-micro-v1:0:128k",
        "data_prefix": "customization/tuned/",
    }
    aliases = {"tuned": [{"custom_model": "tuned"}, {"bedrock": "amazon.nova-lite-v1:0"}]}
    gateway = {"aliases": aliases, "tenants": [{"name": "app"}]}
    served = {"customizations": [{**customization, "serving": "on_demand"}]}
    assert (
        load(tmp_path, training=served, gateway=gateway).gateway.aliases["tuned"][0].custom_model == "tuned"
    )
    unserved = error(tmp_path, training={"customizations": [customization]}, gateway=gateway)
    assert (
        "gateway.aliases.tuned[0].custom_model: 'tuned' is not a customization of the training section "
        "served on_demand or provisioned (served: none: add a training customization with serving)"
    ) in unserved
    both = error(
        tmp_path,
        training=served,
        gateway={
            **gateway,
            "aliases": {"tuned": [{"custom_model": "tuned", "bedrock": "amazon.nova-lite-v1:0"}]},
        },
    )
    assert (
        "names exactly one of bedrock, application_inference_profile, sagemaker, self_hosted or custom_model"
        in both
    )


SEMANTIC = {"embedding": "embedder", "aliases": {"chat": {}}}
WITH_EMBEDDER = {
    **GATEWAY,
    "embeddings": {"embedder": "amazon.titan-embed-text-v2:0"},
    "tenants": [{"name": "app"}],
}


def test_the_semantic_cache_takes_an_embedding_alias_and_chat_aliases(tmp_path):
    profile = load(tmp_path, gateway={**WITH_EMBEDDER, "semantic_cache": SEMANTIC})
    semantic = profile.gateway.semantic_cache
    assert (semantic.dimensions, semantic.min_similarity, semantic.ttl_seconds) == (512, 0.95, 86400)
    assert profile.gateway.vpc_endpoints == ()  # outside a VPC nothing to add
    message = error(tmp_path, gateway={**WITH_EMBEDDER, "semantic_cache": {**SEMANTIC, "embedding": "titan"}})
    assert (
        "gateway.semantic_cache.embedding: 'titan' is not an alias of gateway.embeddings (aliases: embedder)"
        in message
    )
    routes = {"pick": {"small": "chat", "large": "chat2", "tools": True}}
    aliases = {**GATEWAY["aliases"], "chat2": [{"bedrock": "amazon.nova-lite-v1:0"}]}
    message = error(
        tmp_path,
        gateway={**WITH_EMBEDDER, "aliases": aliases, "routes": routes,
                 "semantic_cache": {**SEMANTIC, "aliases": {"pick": {}, "nope": {}}}},
    )  # fmt: skip
    assert (
        "gateway.semantic_cache.aliases.pick: is a route: name the aliases it picks (chat, chat2)" in message
    )
    assert "gateway.semantic_cache.aliases.nope: is not a chat alias (aliases: chat, chat2)" in message


def test_the_semantic_cache_s_dimensions_are_one_the_model_produces(tmp_path):
    message = error(tmp_path, gateway={**WITH_EMBEDDER, "semantic_cache": {**SEMANTIC, "dimensions": 768}})
    assert (
        "gateway.semantic_cache.dimensions: 768 is not a size amazon.titan-embed-text-v2:0 produces; allowed: 256, 512, 1024"
        in message
    )


def test_a_threshold_below_half_is_refused(tmp_path):
    message = error(
        tmp_path, gateway={**WITH_EMBEDDER, "semantic_cache": {**SEMANTIC, "min_similarity": 0.3}}
    )
    assert "gateway.semantic_cache.min_similarity" in message
    assert "greater than or equal to 0.5" in message
