"""Profile validation of the hosting section (self-managed open models on EC2)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from genai_stack.catalog import accelerator_instances, sizing_rules, startup_budget
from genai_stack.config import ProfileError, load_profile

BASE = {
    "name": "team-a",
    "description": "A test profile.",
    "region": "us-east-1",
    "cost_allocation": {"tag_value": "team-a"},
    "budget": {"monthly_limit_usd": 100},
}
NEURON_HOST = {
    "name": "llama",
    "instance_type": "inf2.8xlarge",
    "server": "vllm-neuron",
    "model": {"name": "llama-3.1-8b", "parameters_billions": 8},
    "ami_ssm_parameter": "/team/ami/neuron-2.28",
}


CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PRIVATE_CA = (
    "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)
TLS = {"domain": "models.team-a.example.com", "certificate_arn": CERTIFICATE}


def load(tmp_path: Path, hosting: dict, **top):
    """`hosting` with HTTPS to the hosts (TLS) unless it says otherwise."""
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "hosting": {"tls": TLS, **hosting}}))
    return load_profile(str(path))


def error(tmp_path: Path, hosting: dict, **top) -> str:
    with pytest.raises(ProfileError) as caught:
        load(tmp_path, hosting, **top)
    return str(caught.value)


def host(**changes) -> dict:
    return {**copy.deepcopy(NEURON_HOST), **changes}


def test_a_neuron_host_without_nat_loads_with_the_defaults(tmp_path):
    hosting = load(tmp_path, {"hosts": [host()]}).hosting
    assert hosting.network.nat_gateways == 0
    assert hosting.network.existing_vpc_id is None
    (loaded,) = hosting.hosts
    assert (loaded.min_instances, loaded.max_instances) == (1, 2)
    assert loaded.model.prefix == "models/llama-3.1-8b/"


def test_an_unknown_instance_type_lists_the_known_ones(tmp_path):
    message = error(tmp_path, {"hosts": [host(instance_type="p5.48xlarge")]})
    assert (
        "hosting.hosts[0].instance_type: 'p5.48xlarge' is not a known inf2, g5 or g6 instance type" in message
    )
    assert "inf2.xlarge" in message
    assert "g6.xlarge" in message


def test_the_server_must_match_the_accelerator(tmp_path):
    message = error(tmp_path, {"hosts": [host(server="vllm-gpu")]})
    assert (
        "hosting.hosts[0].server: 'vllm-gpu' does not run on inf2.8xlarge (inferentia2); use vllm-neuron"
        in (message)
    )
    message = error(
        tmp_path,
        {"network": {"nat_gateways": 1}, "hosts": [host(instance_type="g6.xlarge", server="vllm-neuron")]},
    )
    assert "hosting.hosts[0].server: 'vllm-neuron' does not run on g6.xlarge (l4); use vllm-gpu" in message


def test_the_model_must_fit_the_accelerator_memory(tmp_path):
    memory = accelerator_instances()["g5.xlarge"].accelerator_memory_gb
    overhead = sizing_rules().unknown_architecture_kv_overhead
    billions = 13
    gpu = {"instance_type": "g5.xlarge", "server": "vllm-gpu"}
    message = error(
        tmp_path,
        {
            "network": {"nat_gateways": 1},
            "hosts": [host(**gpu, model={"name": "big", "parameters_billions": billions})],
        },
    )
    needed = billions * 2 * overhead
    assert f"hosting.hosts[0].model: big needs about {needed:.0f} GB of accelerator memory" in message
    assert f"g5.xlarge has {memory:g} GB" in message
    # 8-bit weights of the same model fit.
    small = host(**gpu, model={"name": "big", "parameters_billions": billions, "bytes_per_parameter": 1})
    assert load(tmp_path, {"network": {"nat_gateways": 1}, "hosts": [small]}).hosting.hosts[0]


LLAMA = {"name": "llama-3.1-8b-instruct", "architecture": "llama-3.1-8b"}


def test_neuron_needs_twice_the_weights_in_host_memory(tmp_path):
    # Llama 3.1 8B in bf16 (16 GB) on inf2.xlarge (16 GiB): compile and load run out of host memory.
    message = error(tmp_path, {"hosts": [host(instance_type="inf2.xlarge", model=LLAMA)]})
    assert (
        "hosting.hosts[0].instance_type: 'inf2.xlarge' has 16 GiB of host memory; Neuron compiles and "
        "loads llama-3.1-8b-instruct (16.1 GB of weights) through host memory and needs about 2x the "
        "weights, 32 GB" in message
    )
    assert "aws-neuron-sdk#1222): use inf2.8xlarge (128 GiB) or larger" in message
    assert load(tmp_path, {"hosts": [host(model=LLAMA)]}).hosting.hosts[0].model.billions == 8.03


def test_neuron_kv_cache_is_max_model_len_times_the_compiled_batch(tmp_path):
    # 128 kB per token (2 x 32 layers x 8 KV heads x 128 x 2 bytes); 32,768 x 8 = 34 GB of KV cache.
    message = error(tmp_path, {"hosts": [host(model=LLAMA, max_model_len=32768, max_num_seqs=8)]})
    assert (
        "hosting.hosts[0].max_model_len: 32768 x max_num_seqs 8 needs 34.4 GB of KV cache (131 kB per "
        "token for llama-3.1-8b) on top of 16.1 GB of weights; inf2.8xlarge has 28.8 GB usable" in message
    )
    assert "at most 12149 tokens fit per sequence" in message
    hosts = load(tmp_path, {"hosts": [host(model=LLAMA, max_model_len=8192, max_num_seqs=4)]}).hosting.hosts
    assert hosts[0].max_model_len == 8192


def test_gpu_kv_cache_needs_one_sequence_of_max_model_len(tmp_path):
    gpu = {"instance_type": "g6.xlarge", "server": "vllm-gpu", "max_num_seqs": 64}
    mistral = {"name": "mistral", "architecture": "mistral-7b-v0.3"}
    hosting = {"network": {"nat_gateways": 1}, "hosts": [host(**gpu, model=mistral, max_model_len=32768)]}
    assert load(tmp_path, hosting).hosting.hosts[0].max_num_seqs == 64  # vLLM pages the cache
    message = error(tmp_path, {**hosting, "hosts": [host(**gpu, model=mistral, max_model_len=65536)]})
    assert "hosting.hosts[0].max_model_len: 65536 is above the 32768 positions of mistral-7b-v0.3" in message
    llama = host(**gpu, model=LLAMA, max_model_len=131072)
    message = error(tmp_path, {**hosting, "hosts": [llama]})
    assert "hosting.hosts[0].max_model_len: 131072 needs 17.2 GB of KV cache" in message
    assert "at most 42266 tokens fit" in message


def test_the_volume_holds_weights_compiled_artifacts_and_the_ami(tmp_path):
    message = error(tmp_path, {"hosts": [host(model=LLAMA, volume_gb=80)]})
    assert (
        "hosting.hosts[0].volume_gb: 80 is too small: 16 GB of weights, 16 GB of compiled artifacts and "
        "60 GB for the AMI need at least 93 GB" in message
    )
    assert load(tmp_path, {"hosts": [host(model=LLAMA, volume_gb=100)]}).hosting.hosts[0].volume_gb == 100


def test_the_model_size_comes_from_a_known_architecture_or_a_parameter_count(tmp_path):
    message = error(tmp_path, {"hosts": [host(model={"name": "x", "architecture": "gpt-9"})]})
    assert "hosting.hosts[0].model.architecture: 'gpt-9' is not a known architecture" in message
    assert "llama-3.1-8b" in message
    message = error(tmp_path, {"hosts": [host(model={"name": "x"})]})
    assert "hosting.hosts[0].model.parameters_billions: is required when no architecture is given" in message


def test_min_must_not_exceed_max_and_off_hours_need_a_host_in_working_hours(tmp_path):
    message = error(tmp_path, {"hosts": [host(min_instances=3, max_instances=2)]})
    assert "hosting.hosts[0].min_instances: 3 is above max_instances (2)" in message
    off_hours = {"stop": "0 20 * * MON-FRI", "start": "0 7 * * MON-FRI"}
    message = error(tmp_path, {"hosts": [host(min_instances=0, off_hours=off_hours)]})
    assert "hosting.hosts[0].min_instances: is 0 with off_hours" in message


def test_off_hours_take_five_field_cron_expressions(tmp_path):
    message = error(
        tmp_path, {"hosts": [host(off_hours={"stop": "cron(0 20 * * ? *)", "start": "0 7 * * *"})]}
    )
    assert "hosting.hosts[0].off_hours.stop" in message


def test_gpu_hosts_need_no_egress(tmp_path):
    """vLLM comes from the wheelhouse in S3 (genai-stack wheelhouse), not from PyPI through a NAT."""
    mistral = {"name": "mistral", "architecture": "mistral-7b-v0.3"}
    gpu = host(instance_type="g6.xlarge", server="vllm-gpu", model=mistral, max_model_len=8192)
    hosting = load(tmp_path, {"hosts": [gpu]}).hosting
    assert hosting.network.nat_gateways == 0


def test_the_start_up_budget_adds_download_compile_and_start_with_a_margin():
    """data/models.json "startup": the Neuron guide's ~15 minutes to compile a 15 GB model, the rest
    labelled assumptions; 8B bf16 (16.1 GB) on Neuron, 7B (14.5 GB) on a GPU."""
    neuron = startup_budget(16.06, neuron=True)
    assert neuron.describe() == (
        "(boot 5 + weights download 5 + Neuron compile 16 + server start 5) x 1.5 = 48 minutes"
    )
    assert startup_budget(14.5, neuron=False).minutes == 38
    assert neuron.limit_minutes == 60


def test_a_model_that_cannot_compile_within_a_rolling_updates_pause_is_refused(tmp_path):
    big = {"name": "llama-70b", "parameters_billions": 70.6}
    message = error(tmp_path, {"hosts": [host(instance_type="inf2.48xlarge", model=big)]})
    assert (
        "hosting.hosts[0].model: llama-70b needs about 298 minutes from launch to a healthy server" in message
    )
    assert "Neuron compile 141" in message
    assert "UpdatePolicy PauseTime" in message


def test_host_names_are_unique(tmp_path):
    message = error(tmp_path, {"hosts": [host(), host()]})
    assert "hosting.hosts: names 'llama' more than once" in message


def test_an_existing_vpc_needs_a_subnet_per_zone(tmp_path):
    network = {"existing_vpc_id": "vpc-0123456789abcdef0", "existing_private_subnet_ids": ["subnet-01234567"]}
    message = error(tmp_path, {"network": network, "hosts": [host()]})
    assert (
        "hosting.network.existing_private_subnet_ids: needs one private subnet per availability zone"
        in message
    )
    network = {
        "existing_vpc_id": "vpc-0123456789abcdef0",
        "existing_private_subnet_ids": ["subnet-01234567", "subnet-89abcdef"],
        "existing_availability_zones": ["us-east-1a", "us-east-1b"],
    }
    assert load(tmp_path, {"network": network, "hosts": [host()]}).hosting.network.existing_vpc_id


def test_every_instance_in_the_table_has_a_positive_memory_and_an_ami(tmp_path):
    from genai_stack.catalog import ami_parameter

    for name, spec in accelerator_instances().items():
        assert name.split(".")[0] in {"inf2", "g5", "g6"}
        assert spec.accelerator_memory_gb > 0
        assert spec.accelerators >= 1
        assert ami_parameter(spec.accelerator).startswith("/aws/service/")


def test_inferentia2_hosts_must_name_their_own_pinned_ami_parameter(tmp_path):
    unpinned = host()
    del unpinned["ami_ssm_parameter"]
    message = error(tmp_path, {"hosts": [unpinned]})
    assert "hosting.hosts[0].ami_ssm_parameter: is required (or ami_id): Neuron SDK releases after 2.28" in (
        message
    )
    message = error(tmp_path, {"hosts": [host(ami_ssm_parameter="ami-0123456789abcdef0")]})
    assert "hosting.hosts[0].ami_ssm_parameter" in message


def test_every_host_pins_its_ami_and_public_latest_parameters_are_refused(tmp_path):
    """CloudFormation re-reads an SSM parameter on every deploy: the public DLAMI parameters follow
    AWS's releases and would replace the fleet in an unrelated deploy."""
    gpu = host(instance_type="g6.xlarge", server="vllm-gpu")
    del gpu["ami_ssm_parameter"]
    network = {"nat_gateways": 1}
    message = error(tmp_path, {"network": network, "hosts": [gpu]})
    assert "hosting.hosts[0].ami_ssm_parameter: is required (or ami_id): the public GPU Deep" in message
    public = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
    message = error(tmp_path, {"network": network, "hosts": [{**gpu, "ami_ssm_parameter": public}]})
    assert f"hosting.hosts[0].ami_ssm_parameter: {public!r} is a public parameter that follows" in message
    both = {**gpu, "ami_id": "ami-0123456789abcdef0", "ami_ssm_parameter": "/team/ami/gpu"}
    message = error(tmp_path, {"network": network, "hosts": [both]})
    assert "hosting.hosts[0].ami_id: and ami_ssm_parameter are both set" in message
    loaded = load(tmp_path, {"network": network, "hosts": [{**gpu, "ami_id": "ami-0123456789abcdef0"}]})
    assert loaded.hosting.hosts[0].ami_id == "ami-0123456789abcdef0"


# -- hosting.tls: HTTPS from the gateway to the hosts ------------------------------------------------


def test_tls_takes_exactly_one_certificate_source(tmp_path):
    for source in (
        {"certificate_arn": CERTIFICATE},
        {"public_zone_id": "Z0123456789ABCDEFGHIJ"},
        {"private_ca_arn": PRIVATE_CA},
    ):
        tls = load(
            tmp_path, {"hosts": [host()], "tls": {"domain": "models.example.com", **source}}
        ).hosting.tls
        assert not tls.allow_plaintext
        assert tls.domain == "models.example.com"
    message = error(
        tmp_path,
        {
            "hosts": [host()],
            "tls": {
                "domain": "models.example.com",
                "certificate_arn": CERTIFICATE,
                "private_ca_arn": PRIVATE_CA,
            },
        },
    )
    assert (
        "hosting.tls.private_ca_arn: give exactly one of certificate_arn, public_zone_id, private_ca_arn "
        "(both certificate_arn and private_ca_arn are set)" in message
    )
    message = error(tmp_path, {"hosts": [host()], "tls": {"domain": "models.example.com"}})
    assert "hosting.tls.certificate_arn: give exactly one of" in message
    assert "(none is set)" in message


def test_tls_is_required_and_plain_http_needs_a_reason(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, "hosting": {"hosts": [host()]}}))
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    assert "hosting.tls" in str(caught.value)
    message = error(tmp_path, {"hosts": [host()], "tls": {"domain": "models.example.com"} | {"x": 1}})
    assert "hosting.tls.x" in message
    message = error(tmp_path, {"hosts": [host()], "tls": {"allow_plaintext": True}})
    assert "hosting.tls.reason: is required with allow_plaintext" in message
    message = error(
        tmp_path,
        {
            "hosts": [host()],
            "tls": {"allow_plaintext": True, "reason": "a lab account", "domain": "a.example.com"},
        },
    )
    assert "hosting.tls.domain: is set with allow_plaintext: true" in message
    message = error(tmp_path, {"hosts": [host()], "tls": {**TLS, "reason": "no reason needed here"}})
    assert "hosting.tls.reason: is set without allow_plaintext: true" in message
    message = error(tmp_path, {"hosts": [host()], "tls": {"certificate_arn": CERTIFICATE}})
    assert "hosting.tls.domain: is required" in message
    plain = {"allow_plaintext": True, "reason": "lab account without a domain"}
    tls = load(tmp_path, {"hosts": [host()], "tls": plain}).hosting.tls
    assert tls.allow_plaintext
    assert tls.reason == "lab account without a domain"


def test_each_hosts_name_fits_a_certificate_and_the_certificate_is_of_the_region(tmp_path):
    long_domain = "a" * 46 + ".example.com"  # llama.<domain>: 64 characters, ACM's limit for a first name
    assert load(tmp_path, {"hosts": [host()], "tls": {**TLS, "domain": long_domain}}).hosting.tls
    message = error(tmp_path, {"hosts": [host()], "tls": {**TLS, "domain": "b" + long_domain}})
    assert (
        f"hosting.hosts[0].name: makes the host's name 'llama.b{long_domain}' 65 characters long" in message
    )
    message = error(tmp_path, {"hosts": [host()], "tls": {**TLS, "domain": "Models.Example.com"}})
    assert "hosting.tls.domain" in message
    message = error(
        tmp_path,
        {
            "hosts": [host()],
            "tls": {
                "domain": "m.example.com",
                "private_ca_arn": PRIVATE_CA.replace("us-east-1", "eu-west-1"),
            },
        },
    )
    assert "hosting.tls.private_ca_arn: is a CA of eu-west-1, not of us-east-1" in message
    message = error(tmp_path, {"hosts": [host()], "tls": {**TLS, "private_key_algorithm": "EC_prime256v1"}})
    assert "hosting.tls.private_key_algorithm: is set without private_ca_arn" in message
    elsewhere = CERTIFICATE.replace("us-east-1", "eu-west-1")
    message = error(tmp_path, {"hosts": [host()], "tls": {**TLS, "certificate_arn": elsewhere}})
    assert (
        "hosting.tls.certificate_arn: is a certificate of eu-west-1, not of us-east-1: the load balancers "
        "there take certificates of us-east-1 only; use one of us-east-1" in message
    )


def test_a_new_vpc_may_name_its_zones_but_not_also_count_them(tmp_path):
    network = load(
        tmp_path, {"hosts": [host()], "network": {"availability_zones": ["us-east-1b", "us-east-1d"]}}
    )
    assert network.hosting.network.availability_zones == ["us-east-1b", "us-east-1d"]
    both = {"availability_zones": ["us-east-1b", "us-east-1d"], "max_azs": 2}
    assert "hosting.network.max_azs: and availability_zones are both set" in error(
        tmp_path, {"hosts": [host()], "network": both}
    )
    one = {"availability_zones": ["us-east-1b"]}
    assert "hosting.network.availability_zones: needs at least two different zones" in error(
        tmp_path, {"hosts": [host()], "network": one}
    )
    elsewhere = {"availability_zones": ["us-east-1a", "eu-west-1b"]}
    assert "hosting.network.availability_zones: 'eu-west-1b' is not a zone of us-east-1" in error(
        tmp_path, {"hosts": [host()], "network": elsewhere}
    )


def test_named_zones_are_the_subnets_zones():
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Template

    from genai_stack.components.model_network import ModelNetwork
    from genai_stack.config import Network

    stack = Stack(App(), "Zones", env={"account": "123456789012", "region": "us-east-1"})
    ModelNetwork(
        stack,
        "Network",
        settings=Network(availability_zones=["us-east-1b", "us-east-1d"]),
        encryption_key=kms.Key(stack, "Key"),
        log_retention_days=30,
        hosts=False,
    )
    subnets = Template.from_stack(stack).find_resources("AWS::EC2::Subnet")
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets.values()) == [
        "us-east-1b",
        "us-east-1d",
    ]
