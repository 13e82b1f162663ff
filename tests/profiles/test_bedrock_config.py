"""Profile validation of the managed-API section: one test per rule, each naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_stack.catalog import bedrock_catalog, guardrail_languages, topic_definition_limit
from genai_stack.config import ProfileError, load_profile

BASE = {
    "name": "team-a",
    "description": "A test profile.",
    "region": "us-east-1",
    "cost_allocation": {"tag_value": "team-a"},
    "budget": {"monthly_limit_usd": 100},
}
GUARDRAIL = {"blocked_input_message": "No.", "blocked_output_message": "No."}


def load(tmp_path: Path, bedrock: dict, **top) -> object:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "bedrock": bedrock}, sort_keys=False))
    return load_profile(str(path))


def error(tmp_path: Path, bedrock: dict, **top) -> str:
    with pytest.raises(ProfileError) as caught:
        load(tmp_path, bedrock, **top)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "profile.yaml") + ": ")
    assert "Traceback" not in message
    return message


def test_a_valid_section_loads_with_defaults(tmp_path):
    profile = load(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": GUARDRAIL})
    guardrail = profile.bedrock.guardrail
    assert guardrail.tier == "STANDARD"
    assert guardrail.mandatory is True
    assert {f.type for f in guardrail.content_filters} >= {"PROMPT_ATTACK", "HATE"}
    assert profile.bedrock.invocation_logging.enabled is True


def test_an_unknown_model_lists_the_known_ones(tmp_path):
    message = error(tmp_path, {"models": ["amazon.nova-giant-v9:0"]})
    assert "bedrock.models[0]: 'amazon.nova-giant-v9:0' is not a known Bedrock model (known: " in message
    assert "amazon.nova-lite-v1:0" in message


def test_a_model_not_offered_in_the_region_points_at_an_inference_profile(tmp_path):
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"]}, region="eu-central-1")
    assert "bedrock.models[0]: 'amazon.nova-lite-v1:0' is not offered on demand in eu-central-1" in message
    assert "call it through eu.amazon.nova-lite-v1:0 under inference_profiles" in message


def test_an_inference_profile_listed_as_a_model_is_redirected(tmp_path):
    message = error(tmp_path, {"models": ["us.amazon.nova-lite-v1:0"]})
    assert "list it under inference_profiles" in message


def test_an_inference_profile_must_be_callable_from_the_region(tmp_path):
    message = error(tmp_path, {"inference_profiles": ["eu.amazon.nova-lite-v1:0"]})
    assert (
        "bedrock.inference_profiles[0]: 'eu.amazon.nova-lite-v1:0' cannot be called from us-east-1" in message
    )


def test_an_empty_model_list_is_refused(tmp_path):
    assert "bedrock.models: is empty: list at least one model or inference profile" in error(tmp_path, {})


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "grounding_threshold",
            1.5,
            "bedrock.guardrail.contextual_grounding.grounding_threshold: 1.5 is not allowed",
        ),
        (
            "relevance_threshold",
            -0.1,
            "bedrock.guardrail.contextual_grounding.relevance_threshold: -0.1 is not allowed",
        ),
    ],
)
def test_grounding_thresholds_are_in_range(tmp_path, field, value, expected):
    guardrail = {**GUARDRAIL, "contextual_grounding": {field: value}}
    assert expected in error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})


def test_topic_definitions_are_limited_by_tier(tmp_path):
    classic_max = topic_definition_limit("CLASSIC")
    topic = {"name": "x", "definition": "d" * (classic_max + 1)}
    classic = {**GUARDRAIL, "tier": "CLASSIC", "denied_topics": [topic]}
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": classic})
    assert (
        f"bedrock.guardrail.denied_topics[0].definition: is {classic_max + 1} characters; the CLASSIC tier allows {classic_max}"
        in message
    )
    standard = {**GUARDRAIL, "tier": "STANDARD", "denied_topics": [topic]}
    assert load(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": standard}).bedrock.guardrail


def test_a_language_classic_does_not_support_asks_for_standard(tmp_path):
    assert "zh-Hant" not in guardrail_languages("CLASSIC")
    guardrail = {**GUARDRAIL, "tier": "CLASSIC", "languages": ["en", "zh-Hant"]}
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert (
        "bedrock.guardrail.languages[1]: 'zh-Hant' is not supported by the CLASSIC tier (it supports en, fr, es); use tier: STANDARD"
        in message
    )


def test_an_unknown_language_is_refused(tmp_path):
    guardrail = {**GUARDRAIL, "languages": ["klingon"]}
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert "bedrock.guardrail.languages[0]: 'klingon' is not a language Bedrock guardrails support" in message


def test_standard_tier_needs_a_known_guardrail_profile_in_the_region(tmp_path):
    guardrail = {**GUARDRAIL, "tier": "STANDARD"}
    message = error(
        tmp_path, {"models": ["amazon.titan-embed-text-v2:0"], "guardrail": guardrail}, region="sa-east-1"
    )
    assert (
        "bedrock.guardrail.tier: 'STANDARD' needs a cross-region guardrail profile, and none is known for sa-east-1"
        in message
    )


def test_prompt_attack_is_an_input_filter(tmp_path):
    guardrail = {
        **GUARDRAIL,
        "content_filters": [{"type": "PROMPT_ATTACK", "input_strength": "HIGH", "output_strength": "HIGH"}],
    }
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert (
        "bedrock.guardrail.content_filters[0].output_strength: 'HIGH' is not allowed for PROMPT_ATTACK"
        in message
    )


def test_a_content_filter_type_appears_once(tmp_path):
    guardrail = {**GUARDRAIL, "content_filters": [{"type": "HATE"}, {"type": "HATE"}]}
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert "bedrock.guardrail.content_filters: lists HATE more than once" in message


def test_a_regex_must_compile(tmp_path):
    guardrail = {**GUARDRAIL, "regexes": [{"name": "bad", "pattern": "([", "action": "BLOCK"}]}
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert "bedrock.guardrail.regexes[0].pattern: '([' is not a valid regular expression" in message


def kb(**changes) -> dict:
    return {
        "name": "faq",
        "description": "FAQ",
        "embedding_model": "amazon.titan-embed-text-v2:0",
        "dimensions": 1024,
        **changes,
    }


def test_embedding_dimensions_must_match_the_model(tmp_path):
    sizes = bedrock_catalog().models["amazon.titan-embed-text-v2:0"].dimensions
    message = error(
        tmp_path, {"models": ["amazon.titan-embed-text-v2:0"], "knowledge_bases": [kb(dimensions=768)]}
    )
    assert (
        "bedrock.knowledge_bases[0].dimensions: 768 does not match amazon.titan-embed-text-v2:0 "
        f"(it produces vectors of {', '.join(str(s) for s in sizes)})"
    ) in message


def test_the_embedding_model_must_be_listed_and_be_an_embeddings_model(tmp_path):
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "knowledge_bases": [kb()]})
    assert (
        "bedrock.knowledge_bases[0].embedding_model: 'amazon.titan-embed-text-v2:0' is not listed under bedrock.models"
        in message
    )
    message = error(
        tmp_path,
        {
            "models": ["amazon.nova-lite-v1:0"],
            "knowledge_bases": [kb(embedding_model="amazon.nova-lite-v1:0")],
        },
    )
    assert "'amazon.nova-lite-v1:0' is a text model, not an embeddings model" in message


def test_chunking_settings_are_checked_per_strategy(tmp_path):
    chunking = {"strategy": "hierarchical", "parent_max_tokens": 300, "child_max_tokens": 300}
    message = error(
        tmp_path, {"models": ["amazon.titan-embed-text-v2:0"], "knowledge_bases": [kb(chunking=chunking)]}
    )
    assert (
        "bedrock.knowledge_bases[0].chunking.hierarchical.child_max_tokens: 300 must be smaller than parent_max_tokens"
        in message
    )
    message = error(
        tmp_path,
        {"models": ["amazon.titan-embed-text-v2:0"], "knowledge_bases": [kb(chunking={"strategy": "magic"})]},
    )
    assert "bedrock.knowledge_bases[0].chunking: " in message
    assert "does not match any of the expected tags: 'fixed', 'semantic', 'hierarchical'" in message


def test_an_ingestion_schedule_is_an_eventbridge_expression(tmp_path):
    message = error(
        tmp_path,
        {"models": ["amazon.titan-embed-text-v2:0"], "knowledge_bases": [kb(ingestion_schedule="daily")]},
    )
    assert "bedrock.knowledge_bases[0].ingestion_schedule: 'daily' is not allowed" in message


def test_application_profiles_and_prompts_use_listed_models(tmp_path):
    bedrock = {
        "models": ["amazon.nova-lite-v1:0"],
        "application_inference_profiles": [{"name": "c1", "source": "amazon.nova-pro-v1:0"}],
    }
    message = error(tmp_path, bedrock)
    assert (
        "bedrock.application_inference_profiles[0].source: 'amazon.nova-pro-v1:0' is not listed under bedrock.models"
        in message
    )


def test_prompt_files_are_read_next_to_the_profile(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "hello.txt").write_text("Say hello to {{name}} in {{ language }}.")
    bedrock = {
        "models": ["amazon.nova-lite-v1:0"],
        "prompts": [{"name": "hello", "file": "prompts/hello.txt", "model": "amazon.nova-lite-v1:0"}],
    }
    prompt = load(tmp_path, bedrock).bedrock.prompts[0]
    assert prompt.text.startswith("Say hello")
    assert prompt.variables == ["language", "name"]


def test_a_missing_prompt_file_is_named(tmp_path):
    bedrock = {
        "models": ["amazon.nova-lite-v1:0"],
        "prompts": [{"name": "hello", "file": "prompts/missing.txt", "model": "amazon.nova-lite-v1:0"}],
    }
    message = error(tmp_path, bedrock)
    assert "bedrock.prompts[0].file: 'prompts/missing.txt' cannot be read" in message


def test_names_are_unique_within_a_list(tmp_path):
    message = error(tmp_path, {"models": ["amazon.titan-embed-text-v2:0"], "knowledge_bases": [kb(), kb()]})
    assert "bedrock.knowledge_bases: names 'faq' more than once" in message


def test_the_builtin_profile_uses_standard_tier_for_traditional_chinese():
    guardrail = load_profile("managed-api").bedrock.guardrail
    assert guardrail.tier == "STANDARD"
    assert "zh-Hant" in guardrail.languages


def test_every_catalog_entry_is_consistent():
    catalog = bedrock_catalog()
    for profile in catalog.inference_profiles.values():
        assert profile.model_id in catalog.models, profile.profile_id
        assert profile.routes, profile.profile_id
        if not profile.is_global:
            assert all(profile.routes.values()), profile.profile_id
    for model in catalog.models.values():
        assert (model.modality == "embeddings") == bool(model.dimensions), model.model_id


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("postgres", "is a default or commonly guessed admin name"),
        ("admin", "is a default or commonly guessed admin name"),
        ("pg_owner", "reserved by PostgreSQL and RDS"),
        ("rdsadmin", "reserved by PostgreSQL and RDS"),
        ("bedrock_user_clone", "is the name of the Bedrock login"),
    ],
)
def test_the_aurora_admin_is_not_a_default_reserved_or_login_name(tmp_path, name, why):
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": {"admin_username": name}})
    assert f"bedrock.aurora.admin_username: '{name}' " in message
    assert why in message


def test_a_cluster_deployed_by_0_1_keeps_postgres_only_when_the_profile_says_why(tmp_path):
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": {"admin_username": "postgres"}})
    assert "say so with legacy_admin_reason" in message
    aurora = {"admin_username": "postgres", "legacy_admin_reason": "the cluster 0.1 deployed in 2026-03"}
    assert (
        load(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": aurora}).bedrock.aurora.admin_username
        == "postgres"
    )
    aurora = {"admin_username": "admin", "legacy_admin_reason": "because"}
    assert "bedrock.aurora.admin_username: 'admin' is a default" in error(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": aurora}
    )
    aurora = {"admin_username": "vectors_admin", "legacy_admin_reason": "because"}
    assert "bedrock.aurora.legacy_admin_reason: is only for admin_username 'postgres'" in error(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": aurora}
    )


def test_the_aurora_admin_name_must_be_a_lower_case_identifier(tmp_path):
    message = error(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": {"admin_username": "Vectors-Admin"}}
    )
    assert "bedrock.aurora.admin_username: " in message
    assert "^[a-z][a-z0-9_]{0,62}$" in message


def test_logins_rotate_on_a_schedule_secrets_manager_accepts(tmp_path):
    rotation = load(tmp_path, {"models": ["amazon.nova-lite-v1:0"]}).bedrock.aurora.rotation
    assert (rotation.every_days, rotation.bedrock_login) == (30, "alternating_users")
    message = error(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": {"rotation": {"every_days": 0}}}
    )
    assert "bedrock.aurora.rotation.every_days: " in message
    assert "greater than or equal to 1" in message
    message = error(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "aurora": {"rotation": {"bedrock_login": "nobody"}}}
    )
    assert "bedrock.aurora.rotation.bedrock_login: " in message
    assert "alternating_users" in message


def test_a_grounding_check_is_refused_for_languages_its_tier_cannot_read(tmp_path):
    grounding = {"grounding_threshold": 0.75, "relevance_threshold": 0.5}
    guardrail = {
        **GUARDRAIL,
        "tier": "STANDARD",
        "languages": ["en", "zh-Hant"],
        "contextual_grounding": grounding,
    }
    message = error(tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": guardrail})
    assert (
        "bedrock.guardrail.contextual_grounding: runs on the CLASSIC tier (CloudFormation sets no other), "
        "which cannot read zh-Hant" in " ".join(message.split())
    )
    english = {**guardrail, "languages": ["en", "fr"]}
    assert load(
        tmp_path, {"models": ["amazon.nova-lite-v1:0"], "guardrail": english}
    ).bedrock.guardrail.contextual_grounding
