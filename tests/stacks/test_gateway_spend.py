"""Spend that the budget sees (issue 20, deliverable 3): every Bedrock call of the gateway goes
through an application inference profile of its own profile, tagged with the profile's
cost-allocation tag (on-demand Bedrock calls carry cost-allocation tags only through application
inference profiles: Bedrock user guide, https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles.html),
and a budget on the Bedrock service and an alarm on the gateway's EstimatedCost stand beside the
tag budget."""

from __future__ import annotations

import json

import pytest
import yaml

from genai_stack.components.application_inference_profile import (
    NAME_MAX,
    NAME_PATTERN,
    gateway_routes,
    profile_name,
)
from genai_stack.components.cost_controls import (
    BEDROCK_SERVICE,
    GatewayCost,
    estimated_cost_metric,
    estimated_cost_query,
)
from genai_stack.config import PROFILES_DIR, Profile, ProfileError, load_profile
from lambdas.gateway.config import Settings
from tests.access.conftest import deployment_of

GATEWAY_PROFILES = ["managed-api", "custom-model", "self-hosted"]


def app_profiles(deployment) -> dict[str, dict]:
    """ARN -> resolved properties of every application inference profile the profile creates."""
    result = {}
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Bedrock::ApplicationInferenceProfile":
                arn = deployment.resolver.get_att(stack, logical_id, "InferenceProfileArn")
                result[arn] = deployment.resolver.resolve(stack, resource["Properties"])
    return result


@pytest.mark.parametrize("name", GATEWAY_PROFILES)
def test_every_bedrock_target_invokes_a_tagged_application_profile_of_its_own_profile(synthesized, name):
    deployment = deployment_of(synthesized, name)
    profile = synthesized.profiles[name].profile
    cost_key, cost_value = profile.cost_allocation.tag_key, profile.cost_allocation.tag_value
    created = app_profiles(deployment)
    (function,) = [f for f in deployment.functions if "GATEWAY_CONFIG" in f.environment]
    settings = Settings.model_validate_json(function.environment["GATEWAY_CONFIG"])
    targets = [t for ts in settings.chat.values() for t in ts if t.kind == "bedrock"]
    targets += list(settings.embeddings.values())
    assert targets, name
    for target in targets:
        assert target.invoke in created, (
            f"{name}: {target.model} invokes {target.invoke}, not a profile of ours"
        )
        props = created[target.invoke]
        tags = {t["Key"]: t["Value"] for t in props["Tags"]}
        assert tags[cost_key] == cost_value
        source = props["ModelSource"]["CopyFrom"]
        assert source.endswith(f"/{target.model}"), (source, target.model)
        assert f"bedrock:{target.model}" in settings.prices  # EstimatedCost is priced on the model


def test_each_gateway_alias_and_model_gets_its_own_profile_tagged_with_the_alias(synthesized):
    created = app_profiles(deployment_of(synthesized, "managed-api"))
    aliases = {
        p["InferenceProfileName"]: {t["Key"]: t["Value"] for t in p["Tags"]}.get("alias")
        for p in created.values()
    }
    assert aliases == {
        "managed-api-spring-savings": None,
        "managed-api-card-rewards": None,
        "managed-api-copywriter-us-anthropic-claude-haiku-4-5-20-cd9c16eb": "copywriter",
        "managed-api-copywriter-amazon-nova-lite-v1-0": "copywriter",
        "managed-api-drafts-amazon-nova-lite-v1-0": "drafts",
        "managed-api-emb-embedder-amazon-titan-embed-text-v2-0": "embedder",
    }


def test_profile_names_follow_bedrock_s_rules_and_stay_unique():
    long = profile_name(
        "a-very-long-profile-name", "copywriter", "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    )
    other = profile_name(
        "a-very-long-profile-name", "copywriter", "us.anthropic.claude-haiku-4-5-20251001-v2:0"
    )
    for name in (long, other, profile_name("p", "a", "amazon.nova-lite-v1:0")):
        assert len(name) <= NAME_MAX, name
        assert NAME_PATTERN.match(name), name
    assert long != other


def managed_api_with(target: dict) -> dict:
    data = yaml.safe_load((PROFILES_DIR / "managed-api.yaml").read_text())
    data["gateway"]["aliases"]["drafts"] = [target]
    data["bedrock"]["prompts"] = []  # no prompt files outside a profile directory
    data.pop("evaluation")  # nor evaluation sets (and one of its evaluations names a prompt)
    return data


def test_a_target_may_name_a_campaign_profile_and_is_routed_through_it():
    profile = Profile.model_validate(managed_api_with({"application_inference_profile": "spring-savings"}))
    routes = gateway_routes(profile.name, profile.gateway, profile.bedrock)
    (drafts,) = [r for r in routes if r.alias == "drafts"]
    assert (drafts.campaign, drafts.model) == (
        "spring-savings",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    )


def test_an_unknown_campaign_profile_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(managed_api_with({"application_inference_profile": "winter-sale"})))
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert "aliases.drafts[0].application_inference_profile" in message
    assert "'winter-sale'" in message
    assert "card-rewards, spring-savings" in message


@pytest.mark.parametrize("name", GATEWAY_PROFILES)
def test_a_bedrock_service_budget_and_an_estimated_cost_alarm_stand_beside_the_tag_budget(synthesized, name):
    profile = synthesized.profiles[name].profile
    budgets = synthesized.resources(name, "Observability", "AWS::Budgets::Budget").values()
    filters = [b["Properties"]["Budget"]["CostFilters"] for b in budgets]
    assert {"Service": [BEDROCK_SERVICE]} in filters
    tag = profile.cost_allocation
    assert {"TagKeyValue": [f"user:{tag.tag_key}${tag.tag_value}"]} in filters
    alarms = synthesized.resources(name, "Observability", "AWS::CloudWatch::Alarm").values()
    (alarm,) = [a["Properties"] for a in alarms if "EstimatedCost" in json.dumps(a)]
    assert alarm["Threshold"] == round(profile.budget.monthly_limit_usd / 30, 2)
    (total,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert {q["MetricStat"]["Period"] for q in alarm["Metrics"] if "MetricStat" in q} == {24 * 3600}
    read = {
        tuple((d["Name"], d["Value"]) for d in q["MetricStat"]["Metric"]["Dimensions"])
        for q in alarm["Metrics"]
        if "MetricStat" in q
    }
    aliases = [*profile.gateway.aliases, *profile.gateway.embeddings]
    assert read == {(("alias", a), ("service", f"{name}-gateway")) for a in aliases}
    assert total["Expression"] == f"SUM([{', '.join(f'alias{i}' for i in range(len(aliases)))}])"
    assert "PublishOutputRefAlarmsTopic" in json.dumps(alarm["AlarmActions"])


def test_beyond_ten_aliases_the_alarm_sums_a_metrics_insights_query():
    metric, window = estimated_cost_metric(GatewayCost("p-gateway", tuple(f"a{i}" for i in range(11))))
    assert window == "3 hours"
    assert metric.expression == (
        'SELECT SUM(EstimatedCost) FROM SCHEMA("GenAiStack/Gateway", alias, service) '
        "WHERE service = 'p-gateway'"
    )
    assert estimated_cost_query("p-gateway") == metric.expression
