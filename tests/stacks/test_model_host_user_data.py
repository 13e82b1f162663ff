"""The model hosts' first-boot script: rendered per server kind, it passes shellcheck and carries the
host's values; the launch templates of the self-hosted profile hold it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.components import model_host_user_data as user_data
from stacks.components.model_host_user_data import ServerSpec, cloudwatch_agent_config, render_user_data

SHELLCHECK = Path(sys.executable).with_name("shellcheck")


def spec(kind: str, **changes) -> ServerSpec:
    values = {
        "host_name": "llama",
        "kind": kind,
        "model_name": "llama-3.1-8b-instruct",
        "model_s3_uri": "s3://artifacts-bucket/models/llama-3.1-8b-instruct/",
        "region": "us-east-1",
        "port": 8000,
        "health_path": "/health",
        "tensor_parallel_size": 2,
        "max_model_len": 8192,
        "max_num_seqs": 8,
        "log_group_name": "genai-model-host-logs",
        "metrics_namespace": "GenAiStack/ModelHosts",
        "health_wait_minutes": 55,
        "stack_name": "self-hosted-hosting",
        "group_logical_id": "HostllamaGroupASG0123ABCD",
    }
    return ServerSpec(**{**values, **changes})


@pytest.mark.parametrize("kind", ["vllm-gpu", "vllm-neuron"])
def test_the_rendered_script_passes_shellcheck(kind, tmp_path):
    script = tmp_path / "user-data.sh"
    script.write_text(render_user_data(spec(kind)))
    result = subprocess.run(  # noqa: S603 - the pinned shellcheck on a file this test wrote
        [str(SHELLCHECK), "--severity=style", "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_is_real_and_would_fail_on_a_broken_script(tmp_path):
    script = tmp_path / "broken.sh"
    script.write_text("#!/bin/bash\nrm -rf $1/*\nif [ $x = y ]\n")
    result = subprocess.run(  # noqa: S603 - the pinned shellcheck on a file this test wrote
        [str(SHELLCHECK), str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "SC" in result.stdout


@pytest.mark.parametrize("kind", ["vllm-gpu", "vllm-neuron"])
def test_every_placeholder_is_filled_with_the_hosts_values(kind):
    script = render_user_data(spec(kind))
    assert "{{" not in script
    assert "}}" not in script
    assert script.startswith("#!/bin/bash\n")
    assert f'readonly SERVER_KIND="{kind}"' in script
    assert 'readonly MODEL_S3_URI="s3://artifacts-bucket/models/llama-3.1-8b-instruct/"' in script
    assert 'readonly TENSOR_PARALLEL_SIZE="2"' in script
    assert "https://amazoncloudwatch-agent-us-east-1.s3.us-east-1.amazonaws.com/" in script
    # IMDSv2: every metadata read carries a session token.
    assert "X-aws-ec2-metadata-token-ttl-seconds" in script
    assert "User=${SERVICE_USER}" in script
    assert "readonly SERVICE_USER=genai" in script


def test_the_agent_config_in_the_script_is_the_json_the_module_builds():
    script = render_user_data(spec("vllm-gpu"))
    embedded = re.search(r"<<'AGENT_CONFIG'\n(.*?)\nAGENT_CONFIG\n", script, re.S).group(1)
    assert json.loads(embedded) == cloudwatch_agent_config(spec("vllm-gpu"))


def test_gpu_hosts_collect_nvidia_metrics_and_both_ship_their_logs():
    gpu = cloudwatch_agent_config(spec("vllm-gpu"))
    neuron = cloudwatch_agent_config(spec("vllm-neuron"))
    assert "utilization_gpu" in gpu["metrics"]["metrics_collected"]["nvidia_gpu"]["measurement"]
    assert "nvidia_gpu" not in neuron["metrics"]["metrics_collected"]
    for config in (gpu, neuron):
        assert config["metrics"]["namespace"] == "GenAiStack/ModelHosts"
        assert config["metrics"]["aggregation_dimensions"] == [["ModelHost"]]
        files = config["logs"]["logs_collected"]["files"]["collect_list"]
        assert {f["log_group_name"] for f in files} == {"genai-model-host-logs"}
        assert {f["file_path"] for f in files} == {
            "/var/log/genai-model-host.log",
            "/var/log/genai-model-server.log",
        }


def test_cdk_tokens_are_allowed_but_shell_syntax_in_a_value_is_refused():
    token = "${Token[TOKEN.123]}"
    assert token in render_user_data(spec("vllm-gpu", log_group_name=token))
    with pytest.raises(ValueError, match=r"model host llama: model_name .* is not safe in a shell string"):
        render_user_data(spec("vllm-gpu", model_name='x"; rm -rf / #'))
    with pytest.raises(ValueError, match="is not safe"):
        render_user_data(spec("vllm-gpu", model_s3_uri="s3://b/$(id)"))


def test_a_value_without_a_placeholder_is_an_error(monkeypatch):
    original = user_data.template_values
    monkeypatch.setattr(user_data, "template_values", lambda s: {**original(s), "extra": "x"})
    with pytest.raises(KeyError, match=r"no placeholder for \['extra'\]"):
        render_user_data(spec("vllm-gpu"))
    monkeypatch.setattr(
        user_data, "template_values", lambda s: {k: v for k, v in original(s).items() if k != "port"}
    )
    with pytest.raises(KeyError, match=r"no value for \['port'\]"):
        render_user_data(spec("vllm-gpu"))


def test_the_launch_templates_carry_the_rendered_script(synthesized):
    resources = synthesized.template("self-hosted", "Hosting")["Resources"]
    scripts = [
        json.dumps(r["Properties"]["LaunchTemplateData"]["UserData"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    assert len(scripts) == 2
    assert sum('readonly SERVER_KIND=\\"vllm-neuron\\"' in s for s in scripts) == 1
    assert sum('readonly SERVER_KIND=\\"vllm-gpu\\"' in s for s in scripts) == 1
    for script in scripts:
        assert "Fn::Base64" in script
        assert "models/" in script


@pytest.mark.parametrize("kind", ["vllm-gpu", "vllm-neuron"])
def test_the_script_fits_the_16_kb_user_data_limit(kind):
    # EC2 refuses user data above 16 KB (before base64); a long bucket name must still fit.
    long = spec(kind, model_s3_uri="s3://" + "b" * 63 + "/models/" + "m" * 64 + "/")
    assert len(render_user_data(long).encode()) < 16 * 1024


def exec_start(script: str) -> str:
    (line,) = [line for line in script.splitlines() if line.startswith("ExecStart=${PYTHON}")]
    return line


def test_neuron_hosts_pass_the_kv_cache_flags_the_pinned_neuron_vllm_requires():
    """vLLM User Guide for NxD Inference (Neuron 2.28.1), Known Issues: num_gpu_blocks_override
    exactly max_num_seqs without prefix caching or chunked prefill; its server quickstart passes
    --no-enable-prefix-caching (vLLM V1 turns prefix caching on by default)."""
    script = render_user_data(spec("vllm-neuron", max_num_seqs=4))
    assert 'SERVER_FLAGS="--num-gpu-blocks-override ${MAX_NUM_SEQS} --no-enable-prefix-caching"' in script
    assert 'readonly MAX_NUM_SEQS="4"' in script
    assert exec_start(script).endswith("--max-num-seqs ${MAX_NUM_SEQS} ${SERVER_FLAGS}")
    gpu = render_user_data(spec("vllm-gpu"))
    assert "--num-gpu-blocks-override" not in gpu.split("vllm-neuron)", 1)[0].split("vllm-gpu)", 1)[1]


def test_the_server_unit_puts_the_venv_bin_first_on_path():
    """neuronx-cc (the Neuron compiler vLLM runs) lives in the venv's bin, which systemd's PATH lacks."""
    for kind in ("vllm-gpu", "vllm-neuron"):
        script = render_user_data(spec(kind))
        unit = script.split("<<UNIT", 1)[1].split("\nUNIT\n", 1)[0]
        assert 'Environment=PATH=$(dirname "${PYTHON}"):/usr/local/sbin:' in unit


def test_package_installs_wait_for_the_dpkg_lock_and_dpkg_is_not_called_directly():
    script = render_user_data(spec("vllm-gpu"))
    assert "readonly APT_GET=(apt-get -o DPkg::Lock::Timeout=600)" in script
    commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert not [c for c in commands if re.match(r"^(dpkg|apt-get|apt) ", c)]
    assert sum('"${APT_GET[@]}"' in c for c in commands) == 3


def test_the_host_signals_cloudformation_after_health_passes_or_fails():
    script = render_user_data(spec("vllm-neuron", health_wait_minutes=55))
    assert 'readonly STACK_NAME="self-hosted-hosting"' in script
    assert 'readonly GROUP_LOGICAL_ID="HostllamaGroupASG0123ABCD"' in script
    assert "aws cloudformation signal-resource --stack-name" in script
    tail = script.split("# 7.", 1)[1]
    assert "$((HEALTH_WAIT_MINUTES * 4))" in tail
    assert 'readonly HEALTH_WAIT_MINUTES="55"' in script
    healthy, unhealthy = tail.split("done", 1)
    assert healthy.index("signal SUCCESS") < healthy.index("exit 0")
    assert unhealthy.index("signal FAILURE") < unhealthy.index("exit 1")
