"""gateway.api_gateway_account_role: who sets API Gateway's CloudWatch Logs role (one per account and region)."""

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
    "bedrock": {"models": ["amazon.nova-lite-v1:0"]},
}
GATEWAY = {"aliases": {"chat": [{"bedrock": "amazon.nova-lite-v1:0"}]}, "tenants": [{"name": "app"}]}


def write(tmp_path: Path, **gateway) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, "gateway": {**GATEWAY, **gateway}}))
    return path


def test_a_new_profile_creates_the_role_so_it_deploys_in_a_fresh_account(tmp_path):
    assert load_profile(str(write(tmp_path))).gateway.api_gateway_account_role == "create"


def test_one_profile_per_account_and_region_creates_it_the_others_say_existing():
    assert load_profile("managed-api").gateway.api_gateway_account_role == "create"
    # Same account-agnostic region as managed-api: a second AWS::ApiGateway::Account would overwrite it.
    for name in ("custom-model", "self-hosted"):
        profile = load_profile(name)
        assert profile.region == "us-east-1"
        assert profile.gateway.api_gateway_account_role == "existing", name


def test_an_unknown_value_names_the_file_the_field_and_what_is_allowed(tmp_path):
    with pytest.raises(ProfileError) as caught:
        load_profile(str(write(tmp_path, api_gateway_account_role="shared")))
    message = str(caught.value)
    assert "profile.yaml: gateway.api_gateway_account_role: 'shared' is not allowed" in message
    assert "'create' or 'existing'" in message
