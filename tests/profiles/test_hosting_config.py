"""Profile validation of the hosting section (self-managed open models on EC2)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stacks.catalog import MODEL_MEMORY_OVERHEAD, accelerator_instances
from stacks.config import ProfileError, load_profile

BASE = {
    "name": "team-a",
    "description": "A test profile.",
    "region": "us-east-1",
    "cost_allocation": {"tag_value": "team-a"},
    "budget": {"monthly_limit_usd": 100},
}
NEURON_HOST = {
    "name": "llama",
    "instance_type": "inf2.xlarge",
    "server": "vllm-neuron",
    "model": {"name": "llama-3.1-8b", "parameters_billions": 8},
    "ami_ssm_parameter": "/team/ami/neuron-2.28",
}


def load(tmp_path: Path, hosting: dict, **top):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "hosting": hosting}))
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
        "hosting.hosts[0].server: 'vllm-gpu' does not run on inf2.xlarge (inferentia2); use vllm-neuron"
        in (message)
    )
    message = error(
        tmp_path,
        {"network": {"nat_gateways": 1}, "hosts": [host(instance_type="g6.xlarge", server="vllm-neuron")]},
    )
    assert "hosting.hosts[0].server: 'vllm-neuron' does not run on g6.xlarge (l4); use vllm-gpu" in message


def test_the_model_must_fit_the_accelerator_memory(tmp_path):
    memory = accelerator_instances()["g5.xlarge"].accelerator_memory_gb
    billions = 13
    message = error(
        tmp_path,
        {
            "network": {"nat_gateways": 1},
            "hosts": [
                host(
                    instance_type="g5.xlarge",
                    server="vllm-gpu",
                    model={"name": "big", "parameters_billions": billions},
                )
            ],
        },
    )
    needed = billions * 2 * MODEL_MEMORY_OVERHEAD
    assert f"hosting.hosts[0].model: big needs about {needed:.0f} GB of accelerator memory" in message
    assert f"g5.xlarge has {memory:g} GB" in message
    # 8-bit weights of the same model fit.
    small = host(
        instance_type="g5.xlarge",
        server="vllm-gpu",
        model={"name": "big", "parameters_billions": billions, "bytes_per_parameter": 1},
    )
    assert load(tmp_path, {"network": {"nat_gateways": 1}, "hosts": [small]}).hosting.hosts[0]


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


def test_gpu_hosts_need_egress_to_install_vllm(tmp_path):
    message = error(tmp_path, {"hosts": [host(instance_type="g6.xlarge", server="vllm-gpu")]})
    assert "hosting.hosts[0].server: 'vllm-gpu' installs vLLM from PyPI at boot" in message


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
    from stacks.catalog import ami_parameter

    for name, spec in accelerator_instances().items():
        assert name.split(".")[0] in {"inf2", "g5", "g6"}
        assert spec.accelerator_memory_gb > 0
        assert spec.accelerators >= 1
        assert ami_parameter(spec.accelerator).startswith("/aws/service/")


def test_inferentia2_hosts_must_name_their_own_pinned_ami_parameter(tmp_path):
    unpinned = host()
    del unpinned["ami_ssm_parameter"]
    message = error(tmp_path, {"hosts": [unpinned]})
    assert (
        "hosting.hosts[0].ami_ssm_parameter: is required for Inferentia2: Neuron SDK releases after 2.28"
        in (message)
    )
    message = error(tmp_path, {"hosts": [host(ami_ssm_parameter="ami-0123456789abcdef0")]})
    assert "hosting.hosts[0].ami_ssm_parameter" in message
    # GPU hosts default to the public GPU Deep Learning AMI parameter.
    gpu = host(instance_type="g6.xlarge", server="vllm-gpu")
    del gpu["ami_ssm_parameter"]
    loaded = load(tmp_path, {"network": {"nat_gateways": 1}, "hosts": [gpu]}).hosting.hosts[0]
    assert loaded.ami_ssm_parameter is None
