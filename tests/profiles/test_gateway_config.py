"""Profile validation of the gateway section."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_stack.config import ProfileError, load_profile

BASE = {
    "name": "team-a",
    "description": "A test profile.",
    "region": "us-east-1",
    "cost_allocation": {"tag_value": "team-a"},
    "budget": {"monthly_limit_usd": 100},
    "bedrock": {"models": ["amazon.nova-lite-v1:0", "amazon.titan-embed-text-v2:0"]},
}
TENANTS = [{"name": "app"}]


def error(tmp_path: Path, gateway: dict, **top) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "gateway": gateway}))
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    return str(caught.value)


def test_a_valid_gateway_loads(tmp_path):
    path = tmp_path / "profile.yaml"
    gateway = {
        "aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}, {"sagemaker": "my-endpoint"}]},
        "tenants": TENANTS,
    }
    path.write_text(yaml.safe_dump({**BASE, "gateway": gateway}))
    loaded = load_profile(str(path)).gateway
    assert loaded.auth == "api_key"
    assert loaded.cache.enabled is True
    assert [t.sagemaker for t in loaded.aliases["chat"]] == [None, "my-endpoint"]


def test_a_bedrock_target_must_be_allowed_by_the_bedrock_section(tmp_path):
    message = error(
        tmp_path, {"aliases": {"chat": [{"bedrock": "amazon.nova-pro-v1:0"}]}, "tenants": TENANTS}
    )
    assert (
        "gateway.aliases.chat[0].bedrock: 'amazon.nova-pro-v1:0' is not listed under bedrock.models"
        in message
    )


def test_a_chat_alias_cannot_point_at_an_embedding_model(tmp_path):
    message = error(
        tmp_path, {"aliases": {"chat": [{"bedrock": "amazon.titan-embed-text-v2:0"}]}, "tenants": TENANTS}
    )
    assert "is not a text model" in message


def test_a_target_names_exactly_one_backend(tmp_path):
    message = error(
        tmp_path,
        {"aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0", "sagemaker": "x"}]}, "tenants": TENANTS},
    )
    assert (
        "gateway.aliases.chat[0]: names exactly one of bedrock, application_inference_profile, sagemaker, "
        "self_hosted or custom_model" in message
    )


def test_self_hosted_targets_must_name_a_host_of_the_hosting_section(tmp_path):
    message = error(tmp_path, {"aliases": {"chat": [{"self_hosted": "llama"}]}, "tenants": TENANTS})
    assert (
        "gateway.aliases.chat[0].self_hosted: 'llama' is not a host of the hosting section "
        "(hosts: none: add a hosting section)" in message
    )


def test_embedding_aliases_need_an_embeddings_model(tmp_path):
    message = error(
        tmp_path,
        {
            "aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]},
            "embeddings": {"emb": "amazon.nova-lite-v1:0"},
            "tenants": TENANTS,
        },
    )
    assert "gateway.embeddings.emb: 'amazon.nova-lite-v1:0' is not an embeddings model" in message


def test_api_key_auth_needs_tenants_and_knowledge_bases_must_exist(tmp_path):
    message = error(tmp_path, {"aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]}})
    assert "gateway.tenants: is empty: with auth api_key every caller needs a tenant" in message
    message = error(
        tmp_path,
        {
            "aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]},
            "tenants": TENANTS,
            "knowledge_bases": ["faq"],
        },
    )
    assert "gateway.knowledge_bases[0]: 'faq' is not a knowledge base of bedrock.knowledge_bases" in message


def test_the_gateway_needs_the_bedrock_section(tmp_path):
    base = {k: v for k, v in BASE.items() if k != "bedrock"}
    path = tmp_path / "profile.yaml"
    path.write_text(
        yaml.safe_dump({**base, "gateway": {"aliases": {"chat": [{"sagemaker": "x"}]}, "tenants": TENANTS}})
    )
    with pytest.raises(ProfileError, match="gateway: needs the bedrock section"):
        load_profile(str(path))


def test_the_deadline_stays_under_api_gateway_s_timeout(tmp_path):
    message = error(
        tmp_path,
        {
            "aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]},
            "tenants": TENANTS,
            "deadline_seconds": 40,
        },
    )
    assert "gateway.deadline_seconds: 40 is not allowed" in message


def test_the_function_timeout_stays_under_api_gateway_s_29_seconds_with_a_margin(tmp_path):
    """The function times out at deadline + 3 s (whole seconds); API Gateway's REST integration gives
    up at 29 s. 25.5 s would make it 29 s: refused, naming the field, the value and what is allowed."""
    from genai_stack.config import gateway_function_timeout_seconds

    gateway = {"aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]}, "tenants": TENANTS}
    message = error(tmp_path, {**gateway, "deadline_seconds": 25.5})
    assert "gateway.deadline_seconds: 25.5 is not allowed" in message
    assert "API Gateway's 29 s integration timeout" in message
    assert "allowed: 1 to 25" in message
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({**BASE, "gateway": {**gateway, "deadline_seconds": 25}}))
    assert gateway_function_timeout_seconds(load_profile(str(path)).gateway.deadline_seconds) == 28


def test_a_target_s_max_tokens_stays_within_the_gateway_s_max_output_tokens(tmp_path):
    gateway = {
        "aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}, {"sagemaker": "llm", "max_tokens": 3000}]},
        "tenants": TENANTS,
        "max_output_tokens": 2048,
    }
    message = error(tmp_path, gateway)
    assert "gateway.aliases.chat[1].max_tokens: 3000 is above max_output_tokens (2048)" in message
    assert "allowed: 1 to 2048" in message


def test_system_prompt_is_keep_or_merge(tmp_path):
    gateway = {"aliases": {"chat": [{"sagemaker": "llm", "system_prompt": "drop"}]}, "tenants": TENANTS}
    message = error(tmp_path, gateway)
    assert "gateway.aliases.chat[0].system_prompt" in message
    assert "'keep'" in message
    assert "'merge'" in message


def test_the_self_hosted_mistral_target_merges_the_system_prompt_and_every_model_server_is_bounded():
    """Mistral 7B Instruct v0.1/v0.2's chat template raises on a system role (Mistral docs,
    "Tokenization": https://docs.mistral.ai/cookbook/concept-deep-dive-tokenization-templates)."""
    for name in ("self-hosted", "custom-model"):
        gateway = load_profile(name).gateway
        servers = [t for ts in gateway.aliases.values() for t in ts if t.sagemaker or t.self_hosted]
        assert servers
        assert all(t.max_tokens and t.max_tokens <= gateway.max_output_tokens for t in servers)
    targets = load_profile("self-hosted").gateway.aliases["mistral"]
    assert [(t.self_hosted, t.system_prompt) for t in targets] == [("mistral-gpu", "merge"), (None, "keep")]
