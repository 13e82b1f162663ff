"""marketing-copy-apac: the Hong Kong bank's copy from Tokyo. What its docs page promises, checked on the
profile, the data tables it rests on and its synthesized templates."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from genai_stack import PROFILES_DIR
from genai_stack.catalog import bedrock_catalog, guardrail_profile, missing_types
from genai_stack.components.application_inference_profile import gateway_routes
from genai_stack.config import ProfileError, load_profile

NAME = "marketing-copy-apac"
JP_HAIKU = "jp.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(scope="module")
def profile():
    return load_profile(NAME)


def test_every_segment_has_a_prompt_in_both_languages_with_the_same_variables(profile):
    by_segment: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for prompt in profile.bedrock.prompts:
        segment, language = re.fullmatch(r"(.+)-(en|zh-hant)", prompt.name).groups()
        by_segment[segment][language] = prompt.variables
    assert sorted(by_segment) == ["everyday", "premier", "young-professionals"]
    for segment, languages in by_segment.items():
        assert set(languages) == {"en", "zh-hant"}, segment
        assert languages["en"] == languages["zh-hant"] == ["campaign", "channel", "disclosure", "facts"]
    chinese = [p for p in profile.bedrock.prompts if p.name.endswith("zh-hant")]
    assert all(re.search(r"[\u4e00-\u9fff]", p.text) for p in chinese)  # written in Chinese, not about it


def test_the_reasons_for_tokyo_hold_in_the_data_tables():
    """docs/profiles/marketing-copy-apac.md, "Why Tokyo": its table, from the recorded tables."""
    catalog = bedrock_catalog()

    def claude(region: str) -> set[str]:
        return {
            pid.split(".")[0]
            for pid, p in catalog.inference_profiles.items()
            if p.model_id == "anthropic.claude-haiku-4-5-20251001-v1:0" and region in p.routes
        }

    def in_region(region: str) -> set[str]:
        return {m for m, model in catalog.models.items() if region in model.regions}

    assert "AWS::Bedrock::Guardrail" in missing_types("ap-east-1")
    assert guardrail_profile("ap-east-1") is None
    assert claude("ap-northeast-1") == {"jp", "global"}
    assert {"anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-lite-v1:0"} <= in_region(
        "ap-northeast-1"
    )
    assert "amazon.titan-embed-text-v2:0" in in_region("ap-northeast-1")
    assert claude("ap-southeast-1") == {"global"}
    assert not {"amazon.nova-lite-v1:0", "amazon.titan-embed-text-v2:0"} & in_region("ap-southeast-1")
    assert claude("ap-southeast-2") == {"au", "global"}
    assert catalog.inference_profiles[JP_HAIKU].destinations("ap-northeast-1") == (
        "ap-northeast-1",
        "ap-northeast-3",
    )
    for region in ("ap-northeast-1", "ap-southeast-1", "ap-southeast-2"):
        assert guardrail_profile(region).profile_id == "apac.guardrail.v1:0"
    assert guardrail_profile("ap-northeast-1").destinations == (
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
    )


def test_every_token_a_campaign_alias_spends_carries_its_campaign(profile):
    campaigns = {app.name: app.tags.get("campaign") for app in profile.bedrock.application_inference_profiles}
    aliases = {alias for alias in profile.gateway.aliases if alias in set(campaigns.values())}
    assert aliases == {"lunar-new-year", "premier-wealth", "card-rewards"}
    for alias in aliases:
        for target in profile.gateway.aliases[alias]:
            assert campaigns[target.application_inference_profile] == alias, (alias, target)
    routes = [r for r in gateway_routes(NAME, profile.gateway, profile.bedrock) if r.alias in aliases]
    assert routes
    assert all(r.campaign is not None for r in routes)  # no per-alias profile without the campaign tag


def test_the_guardrail_is_standard_through_the_apac_profile_with_bilingual_probes(synthesized):
    (guardrail,) = [
        r["Properties"] for r in synthesized.resources(NAME, "Bedrock", "AWS::Bedrock::Guardrail").values()
    ]
    assert json.dumps(guardrail["CrossRegionConfig"]).endswith(':guardrail-profile/apac.guardrail.v1:0"]]}}')
    assert "arn:aws:bedrock:ap-northeast-1:" in json.dumps(guardrail["CrossRegionConfig"])
    assert guardrail["ContentPolicyConfig"]["ContentFiltersTierConfig"] == {"TierName": "STANDARD"}
    assert guardrail["TopicPolicyConfig"]["TopicsTierConfig"] == {"TierName": "STANDARD"}
    examples = [e for t in guardrail["TopicPolicyConfig"]["TopicsConfig"] for e in t.get("Examples", [])]
    assert any(re.search(r"[\u4e00-\u9fff]", e) for e in examples)
    words = [w["Text"] for w in guardrail["WordPolicyConfig"]["WordsConfig"]]
    assert not any(
        re.search(r"[\u4e00-\u9fff]", w) for w in words
    )  # the word filter's languages lack Chinese
    regexes = {
        r["Name"]: r["Pattern"] for r in guardrail["SensitiveInformationPolicyConfig"]["RegexesConfig"]
    }
    assert re.fullmatch(regexes["hk-identity-card"], "A123456(7)")
    assert re.fullmatch(regexes["hk-identity-card"], "AB987654(A)")
    for code in ("CNY2026888", "FA1234567", "HK$12,000,000"):  # promo codes, licences, amounts: not IDs
        assert not re.search(regexes["hk-identity-card"], code), code
    assert re.search(regexes["zh-promised-returns"], "這個計劃保證回報而且零風險")
    assert not re.search(regexes["zh-promised-returns"], "投資涉及風險及過往表現不代表將來表現")
    # No grounding check: its CLASSIC tier (the only one CloudFormation sets) cannot read Chinese.
    assert "ContextualGroundingPolicyConfig" not in guardrail


def test_a_bedrock_section_in_hong_kong_is_refused_with_where_to_go(tmp_path):
    source = (PROFILES_DIR / f"{NAME}.yaml").read_text(encoding="utf-8")
    path = tmp_path / "hk.yaml"
    path.write_text(source.replace("region: ap-northeast-1", "region: ap-east-1"), encoding="utf-8")
    for folder in ("prompts", "evaluation"):  # the prompt and evaluation files, relative to the profile
        (tmp_path / folder).symlink_to(PROFILES_DIR / folder)
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    message = " ".join(str(raised.value).split())
    assert "bedrock: needs Amazon Bedrock, which is not offered in ap-east-1" in message
    assert "ap-northeast-1" in message.split("STANDARD-tier guardrail:")[1]
    assert "not offered on demand" not in message  # one reason, not one per model


def test_the_judge_is_invoked_by_the_evaluation_jobs_only(synthesized, profile):
    """Nova Pro judges the evaluations and nothing else: it is not listed under bedrock, so the model-access
    policy the gateway and the teams attach does not grant it; the evaluation jobs' role does."""
    assert profile.evaluation.judge == "apac.amazon.nova-pro-v1:0"
    assert profile.evaluation.judge not in profile.bedrock.inference_profiles
    policies = synthesized.resources(NAME, "Bedrock", "AWS::IAM::ManagedPolicy")
    granting = {
        logical_id
        for logical_id, policy in policies.items()
        if "amazon.nova-pro-v1:0" in json.dumps(policy["Properties"]["PolicyDocument"])
    }
    assert granting
    assert all("Evaluation" in logical_id for logical_id in granting), granting
