"""`genai-stack plan` shows each budget and cost alarm with the spend it can see, and the application
inference profile each gateway Bedrock target goes through (docs/cost.md)."""

from __future__ import annotations

import json

from tests.cli.test_commands import invoke


def test_plan_shows_what_spend_each_budget_sees_and_the_profiles_of_the_gateway_targets():
    result = invoke("plan", "managed-api", "--json")
    assert result.exit_code == 0, result.output
    spend = json.loads(result.stdout)["spend"]
    assert spend["tag"] == "genai-stack:cost-center=marketing-genai"
    by_filter = {next(iter(b["filters"])): b for b in spend["budgets"]}
    assert by_filter["TagKeyValue"]["filters"] == {
        "TagKeyValue": ["user:genai-stack:cost-center$marketing-genai"]
    }
    assert "application inference profiles" in by_filter["TagKeyValue"]["sees"]
    assert by_filter["Service"]["filters"] == {"Service": ["Amazon Bedrock"]}
    assert "knowledge-base embeddings" in by_filter["Service"]["sees"]
    assert {b["monthly_limit_usd"] for b in spend["budgets"]} == {500}
    (alarm,) = spend["alarms"]
    assert alarm["threshold_usd"] == 16.67  # 500 / 30
    assert alarm["window_hours"] == 24
    targets = {(t["kind"], t["alias"], t["model"]): t for t in spend["gateway_targets"]}
    assert set(targets) == {
        ("chat", "copywriter", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("chat", "copywriter", "amazon.nova-lite-v1:0"),
        ("chat", "drafts", "amazon.nova-lite-v1:0"),
        ("embeddings", "embedder", "amazon.titan-embed-text-v2:0"),
    }
    assert targets[("chat", "drafts", "amazon.nova-lite-v1:0")]["application_inference_profile"] == (
        "managed-api-drafts-amazon-nova-lite-v1-0"
    )

    text = invoke("plan", "managed-api").output
    assert "Budgets and cost alarms: what spend each can see" in text
    assert "Gateway Bedrock targets" in text
    assert "embedder" in text  # long cells wrap
