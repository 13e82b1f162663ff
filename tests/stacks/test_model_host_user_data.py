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
        "signal_by_minutes": 58,
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
    script = render_user_data(spec("vllm-neuron", signal_by_minutes=58))
    assert 'readonly STACK_NAME="self-hosted-hosting"' in script
    assert 'readonly GROUP_LOGICAL_ID="HostllamaGroupASG0123ABCD"' in script
    assert "aws cloudformation signal-resource --stack-name" in script
    tail = script.split("# 6. Wait for the health endpoint", 1)[1]
    # The wait ends by a deadline counted from boot, as CloudFormation's timeout runs from the launch.
    assert 'readonly SIGNAL_BY_MINUTES="58"' in script
    assert 'SIGNAL_DEADLINE=$(( $(date -d "$(uptime -s)" +%s) + SIGNAL_BY_MINUTES * 60 ))' in script
    assert "while (( $(date +%s) < SIGNAL_DEADLINE )); do" in tail
    healthy, unhealthy = tail.split("done", 1)
    assert healthy.index("signal SUCCESS") < healthy.index("exit 0")
    assert unhealthy.index("signal FAILURE") < unhealthy.index("exit 1")


def neuron_section(script: str) -> str:
    return script.split("  vllm-neuron)", 1)[1].split("\n    ;;", 1)[0]


def test_the_weights_sync_leaves_the_compiled_models_in_s3():
    script = render_user_data(spec("vllm-neuron"))
    assert (
        'aws s3 sync --only-show-errors --exclude "neuron-compiled/*" "${MODEL_S3_URI}" "${MODEL_DIR}"'
        in script
    )
    assert (
        'readonly COMPILED_S3_PREFIX="s3://artifacts-bucket/models/llama-3.1-8b-instruct/neuron-compiled/"'
        in script
    )
    assert f'readonly NEURON_RELEASE="{user_data.model_servers().neuron_last_inf2_release}"' in script


def compiled_key(tmp_path: Path, dtype: str = "bfloat16", **changes) -> str:
    """Run the script's key lines in bash, with a stand-in for the venv's python."""
    script = render_user_data(spec("vllm-neuron", **changes))
    section = neuron_section(script)
    key_lines = section[section.index("    if versions=") : section.index("    # The marker")]
    header = [line for line in script.splitlines() if re.match(r"^readonly [A-Z0-9_]+=\"[^$]*\"$", line)]
    python = tmp_path / "python"
    python.write_text('#!/bin/bash\necho "nxdi0.7.14366-cc2.21.18209.0+043b1bf7"\n')
    python.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"torch_dtype": dtype}))
    program = "\n".join(
        [
            "set -euo pipefail",
            *header,
            'log() { echo "$*" >&2; }',
            f"PYTHON={python}",
            f"MODEL_DIR={model}",
            "NEURON_VENV=/opt/aws_neuronx_venv_pytorch_inference_vllm_0_13",
            'SERVER_FLAGS="--num-gpu-blocks-override ${MAX_NUM_SEQS} --no-enable-prefix-caching"',
            'COMPILED_S3_URI=""',
            key_lines,
            'echo "${COMPILED_S3_URI}"',
        ]
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)  # noqa: S603, S607
    return result.stdout.strip()


def test_the_compiled_model_key_names_the_release_versions_and_settings(tmp_path):
    uri = compiled_key(tmp_path, tensor_parallel_size=2, max_model_len=8192, max_num_seqs=8)
    release = user_data.model_servers().neuron_last_inf2_release
    prefix = "s3://artifacts-bucket/models/llama-3.1-8b-instruct/neuron-compiled/"
    assert uri.startswith(
        f"{prefix}neuron{release}-tp2-len8192-seqs8-nxdi0.7.14366-cc2.21.18209.0_043b1bf7-config"
    )
    assert uri.endswith("/")
    # Every setting that shapes the compiled graph gives another key.
    others = {
        compiled_key(tmp_path, tensor_parallel_size=4),
        compiled_key(tmp_path, max_model_len=4096),
        compiled_key(tmp_path, max_num_seqs=4),
    }
    assert uri not in others
    assert len(others) == 3
    # Other weights' config.json (dtype, architecture) too.
    assert (
        compiled_key(tmp_path, dtype="float16", tensor_parallel_size=2, max_model_len=8192, max_num_seqs=8)
        != uri
    )
    assert compiled_key(tmp_path, tensor_parallel_size=2, max_model_len=8192, max_num_seqs=8) == uri


def test_neuron_hosts_load_compiled_models_from_s3_when_the_key_is_complete():
    """vLLM User Guide for NxD Inference (Neuron 2.28.1), "Loading pre-compiled models": vLLM loads
    a pre-compiled model from NEURON_COMPILED_ARTIFACTS, else compiles and stores it there."""
    script = render_user_data(spec("vllm-neuron"))
    section = neuron_section(script)
    assert 'DEVICE_ENV="Environment=NEURON_COMPILED_ARTIFACTS=${COMPILED_DIR}"' in section
    check = 'if [[ -n "${COMPILED_S3_URI}" ]] && aws s3 ls "${COMPILED_S3_URI}${COMPLETE_MARKER}" > /dev/null; then'
    load = (
        'aws s3 sync --only-show-errors --exclude "${COMPLETE_MARKER}" "${COMPILED_S3_URI}" "${COMPILED_DIR}"'
    )
    assert section.index(check) < section.index(load) < section.index("COMPILED_FROM_S3=1")
    # Loaded before the server's unit starts, and the unit points vLLM at the same directory.
    assert script.index(load) < script.index("systemctl enable --now genai-model-server.service")
    assert "${DEVICE_ENV}" in script.split("<<UNIT", 1)[1].split("\nUNIT\n", 1)[0]
    gpu = render_user_data(spec("vllm-gpu"))
    assert "NEURON_COMPILED_ARTIFACTS" not in gpu.split("vllm-neuron)", 1)[0]


def test_a_host_that_compiled_uploads_after_health_with_the_marker_last():
    script = render_user_data(spec("vllm-neuron"))
    upload = script.split("upload_compiled() {", 1)[1].split("\n}\n", 1)[0]
    assert '"${COMPILED_FROM_S3}" == 1' in upload  # a host that loaded the model uploads nothing
    sync = 'aws s3 sync --only-show-errors "${COMPILED_DIR}" "${COMPILED_S3_URI}"'
    marker = 'aws s3 cp - "${COMPILED_S3_URI}${COMPLETE_MARKER}"'
    assert upload.index(sync) < upload.index(marker)
    healthy = script.split("# 6. Wait for the health endpoint", 1)[1].split("done", 1)[0]
    assert healthy.index("curl -sf") < healthy.index("signal SUCCESS") < healthy.index("upload_compiled")
    assert healthy.index("upload_compiled") < healthy.index("exit 0")
    assert (
        "upload_compiled" not in script.split("# 6. Wait for the health endpoint", 1)[1].split("done", 1)[1]
    )


def test_a_failed_boot_step_signals_failure_at_once():
    """Under `set -e` a failing step (the weights' sync, a missing venv) would end the script without
    a signal, and CloudFormation would wait out the whole creation or update timeout."""
    script = render_user_data(spec("vllm-gpu"))
    assert script.startswith("#!/bin/bash")
    assert "set -Eeuo pipefail" in script  # the ERR trap also fires inside functions
    trap = script.index("trap 'failed ${LINENO}' ERR")
    assert script.index("signal() {") < trap < script.index("# 1. The CloudWatch agent")
    failed = script.split("failed() {", 1)[1].split("}", 1)[0]
    assert failed.index("trap - ERR") < failed.index("signal FAILURE") < failed.index("exit 1")


def test_the_package_lists_update_is_retried_while_another_apt_holds_its_lock():
    """DPkg::Lock::Timeout covers dpkg's lock only; `apt-get update` takes the lists' lock and gives up."""
    gpu = render_user_data(spec("vllm-gpu")).split("  vllm-gpu)", 1)[1]
    retry = 'for attempt in $(seq 1 40); do\n        "${APT_GET[@]}" update -q && break\n'
    assert retry in gpu
    assert gpu.count('"${APT_GET[@]}" update') == 1  # no update outside the retry
