"""Profile validation of gateway.endpoint (public | private), its VPC endpoint ids and the WAF rate limit."""

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
VPCE = "vpce-0a1b2c3d4e5f60718"


def load(tmp_path: Path, **gateway):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, "gateway": {**GATEWAY, **gateway}}))
    return load_profile(str(path)).gateway


def error(tmp_path: Path, **gateway) -> str:
    with pytest.raises(ProfileError) as caught:
        load(tmp_path, **gateway)
    return str(caught.value)


def test_the_default_is_a_public_endpoint_with_a_rate_limit(tmp_path):
    gateway = load(tmp_path)
    assert gateway.endpoint == "public"
    assert gateway.private_vpc_endpoint_ids == []
    assert gateway.waf_rate_limit == 3000


def test_a_private_endpoint_with_its_vpc_endpoints_loads(tmp_path):
    gateway = load(tmp_path, endpoint="private", private_vpc_endpoint_ids=[VPCE, "vpce-0123abcd"])
    assert gateway.endpoint == "private"
    assert gateway.private_vpc_endpoint_ids == [VPCE, "vpce-0123abcd"]


def test_an_unknown_endpoint_kind_is_refused_with_the_allowed_ones(tmp_path):
    message = error(tmp_path, endpoint="internal")
    assert (
        "profile.yaml: gateway.endpoint: 'internal' is not allowed: input should be 'public' or 'private'"
        in message
    )


def test_a_private_endpoint_needs_vpc_endpoint_ids(tmp_path):
    message = error(tmp_path, endpoint="private")
    assert "gateway.private_vpc_endpoint_ids: is empty: endpoint private needs the execute-api" in message


@pytest.mark.parametrize("bad", ["vpc-0a1b2c3d", "vpce-XYZ12345", "vpce-123", "0a1b2c3d4e5f60718"])
def test_a_vpc_endpoint_id_must_look_like_one(tmp_path, bad):
    message = error(tmp_path, endpoint="private", private_vpc_endpoint_ids=[bad])
    assert (
        f"gateway.private_vpc_endpoint_ids[0]: '{bad}' is not allowed: string should match pattern" in message
    )


def test_vpc_endpoint_ids_on_a_public_endpoint_are_refused_not_ignored(tmp_path):
    message = error(tmp_path, private_vpc_endpoint_ids=[VPCE])
    assert f"gateway.private_vpc_endpoint_ids: ['{VPCE}'] is set with endpoint: public" in message


def test_a_vpc_endpoint_given_twice_is_refused(tmp_path):
    message = error(tmp_path, endpoint="private", private_vpc_endpoint_ids=[VPCE, VPCE])
    assert f"gateway.private_vpc_endpoint_ids: names {VPCE} more than once" in message


def test_a_waf_rate_limit_on_a_private_endpoint_is_refused_not_ignored(tmp_path):
    message = error(tmp_path, endpoint="private", private_vpc_endpoint_ids=[VPCE], waf_rate_limit=500)
    assert "gateway.waf_rate_limit: is set with endpoint: private, which has no web ACL" in message


def test_the_waf_rate_limit_has_aws_s_minimum(tmp_path):
    # AWS WAF rate-based rules take a limit of at least 10 requests per evaluation window.
    message = error(tmp_path, waf_rate_limit=5)
    assert "gateway.waf_rate_limit: 5 is not allowed: input should be greater than or equal to 10" in message


def test_the_bank_profile_is_private():
    gateway = load_profile("managed-api").gateway
    assert gateway.endpoint == "private"
    assert gateway.private_vpc_endpoint_ids


def test_the_gateway_runs_in_a_vpc_of_its_own_when_the_profile_says_so(tmp_path):
    assert load(tmp_path).network is None  # default: outside any VPC, as before
    network = load(tmp_path, network={"cidr": "10.60.0.0/16"}).network
    assert (network.cidr, network.max_azs, network.nat_gateways) == ("10.60.0.0/16", 2, 0)
    existing = load(
        tmp_path,
        network={
            "existing_vpc_id": "vpc-0123456789abcdef0",
            "existing_private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
            "existing_availability_zones": ["us-east-1a", "us-east-1b"],
        },
    ).network
    assert existing.existing_vpc_id == "vpc-0123456789abcdef0"
    message = error(tmp_path, network={"existing_vpc_id": "vpc-0123456789abcdef0"})
    assert (
        "gateway.network.existing_private_subnet_ids: needs one private subnet per availability zone"
        in message
    )


def test_a_gateway_with_self_hosted_targets_takes_the_hosts_network_not_its_own(tmp_path):
    from tests.profiles.test_hosting_config import NEURON_HOST, TLS

    path = tmp_path / "profile.yaml"
    gateway = {
        "aliases": {"chat": [{"self_hosted": "llama"}, {"bedrock": "amazon.nova-lite-v1:0"}]},
        "tenants": [{"name": "app"}],
        "network": {"cidr": "10.60.0.0/16"},
    }
    path.write_text(
        yaml.safe_dump({**BASE, "hosting": {"hosts": [NEURON_HOST], "tls": TLS}, "gateway": gateway})
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    assert (
        "gateway.network: is set, but a gateway with self_hosted targets runs in the hosts' VPC: configure "
        "hosting.network instead" in str(caught.value)
    )


def test_the_bank_profile_s_gateway_runs_in_its_own_vpc():
    network = load_profile("managed-api").gateway.network
    assert network is not None
    assert network.nat_gateways == 0
    assert network.existing_vpc_id is None
