"""The model hosts' first-boot script: rendered per server kind, it passes shellcheck and carries the
host's values; the launch templates of the self-hosted profile hold it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genai_stack.components import model_host_user_data as user_data
from genai_stack.components.model_host_user_data import ServerSpec, cloudwatch_agent_config, render_user_data

SHELLCHECK = Path(sys.executable).with_name("shellcheck")


def spec(kind: str, **changes) -> ServerSpec:
    values = {
        "host_name": "llama",
        "kind": kind,
        "model_name": "llama-3.1-8b-instruct",
        "model_s3_uri": "s3://artifacts-bucket/models/llama-3.1-8b-instruct/",
        "wheelhouse_s3_uri": "s3://artifacts-bucket/wheels/vllm-0.31.0/",
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
    # EC2 refuses user data above 16 KB (before base64); long bucket and log group names must still
    # fit, with room to grow (the template's comments are not shipped).
    long = spec(
        kind,
        model_s3_uri="s3://" + "b" * 63 + "/models/" + "m" * 64 + "/",
        wheelhouse_s3_uri="s3://" + "b" * 63 + "/wheels/vllm-0.31.0/",
        log_group_name="l" * 512,
    )
    assert len(render_user_data(long).encode()) < 14 * 1024


def test_comments_stay_in_the_template_and_the_step_headings_in_the_script():
    script = render_user_data(spec("vllm-gpu"))
    comments = [line.strip() for line in script.splitlines() if line.strip().startswith("#")]
    assert comments[0] == "#!/bin/bash"
    assert (
        "# 6. Wait for the health endpoint. The load balancer's health check decides when traffic arrives."
        in comments
    )
    assert all(c.startswith(("#!", "# shellcheck")) or c[2:3].isdigit() for c in comments), comments


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
    # One install: the CloudWatch agent's package, a local file (no package lists, no repository).
    assert [c for c in commands if '"${APT_GET[@]}"' in c] == [
        'DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" install -y -q /tmp/amazon-cloudwatch-agent.deb'
    ]


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
    key_lines = section[
        section.index("    if versions=") : section.index('    if [[ -n "${COMPILED_S3_URI}" ]]')
    ]
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


def test_nothing_is_installed_from_the_internet_at_boot():
    """No package index (PyPI), no apt repository, no model hub: the hosts' subnets may have no NAT."""
    for kind in ("vllm-gpu", "vllm-neuron"):
        script = render_user_data(spec(kind))
        commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
        assert not [c for c in commands if " update" in c and "APT_GET" in c]
        pips = [c for c in commands if " install " in c and "pip" in c]
        assert all("--no-index" in c for c in pips), pips
        assert "huggingface" not in script.lower()
        assert "pypi.org" not in script


def gpu_install(tmp_path: Path, wheels: list[str], venv_exists: bool = False) -> subprocess.CompletedProcess:
    """Run the GPU section in bash with stand-ins for aws (the wheelhouse sync), python3 and die."""
    script = render_user_data(spec("vllm-gpu"))
    section = script.split("  vllm-gpu)\n", 1)[1].split("    PYTHON=/opt/genai/venv/bin/python", 1)[0]
    header = [line for line in script.splitlines() if re.match(r"^readonly [A-Z0-9_]+=\"[^$]*\"$", line)]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    stub = f'#!/bin/bash\necho "$(basename "$0") $*" >> {calls}\n'
    (bin_dir / "aws").write_text(stub + 'mkdir -p "$5"\n' + "".join(f'touch "$5/{w}"\n' for w in wheels))
    (bin_dir / "python3").write_text(
        stub + 'if [[ "$1" == -c ]]; then echo cp310; fi\n'
        'if [[ "$1" == -m ]]; then mkdir -p "$4/bin"; printf "#!/bin/bash\\n'
        f'echo \\"venv-python \\$*\\" >> {calls}\\n" > "$4/bin/python"; '
        'chmod +x "$4/bin/python"; fi\n'
    )
    for tool in ("aws", "python3"):
        (bin_dir / tool).chmod(0o755)
    root = tmp_path / "root"
    section = section.replace("/opt/genai/", f"{root}/")
    (root).mkdir()
    if venv_exists:
        (root / "venv" / "bin").mkdir(parents=True)
        (root / "venv" / "bin" / "python").write_text("#!/bin/bash\n")
        (root / "venv" / "bin" / "python").chmod(0o755)
    program = "\n".join(
        [
            "set -Eeuo pipefail",
            f"export PATH={bin_dir}:$PATH",
            *header,
            'log() { echo "$*"; }',
            'die() { echo "DIE $*"; exit 3; }',
            section,
            "echo INSTALLED",
        ]
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)  # noqa: S603, S607
    result.calls = calls.read_text().splitlines() if calls.exists() else []
    return result


def test_gpu_hosts_install_vllm_from_the_wheelhouse_in_s3(tmp_path):
    result = gpu_install(
        tmp_path, ["vllm-0.31.0-cp38-abi3-manylinux_2_31_x86_64.whl", "pip-26.3-py3-none-any.whl"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INSTALLED" in result.stdout
    sync, *_rest = [c for c in result.calls if c.startswith("aws ")]
    assert sync.startswith("aws s3 sync --only-show-errors s3://artifacts-bucket/wheels/vllm-0.31.0/cp310/ ")
    assert any(c.startswith("python3 -m venv --without-pip ") for c in result.calls)
    (install,) = [c for c in result.calls if c.startswith("venv-python ")]
    assert "/pip-26.3-py3-none-any.whl/pip install --quiet --no-index --find-links" in install
    assert install.endswith(" pip vllm==0.31.0")


def test_a_missing_wheelhouse_stops_the_boot_with_the_command_to_stage_it(tmp_path):
    result = gpu_install(tmp_path, ["pip-26.3-py3-none-any.whl"])  # no vllm wheel
    assert result.returncode == 3
    assert (
        "DIE no vLLM 0.31.0 wheelhouse for cp310 at s3://artifacts-bucket/wheels/vllm-0.31.0/cp310/"
        in result.stdout
    )
    assert "genai-stack wheelhouse" in result.stdout
    assert not [c for c in result.calls if c.startswith("venv-python ")]


def test_an_ami_with_the_venv_installs_nothing(tmp_path):
    result = gpu_install(tmp_path, [], venv_exists=True)
    assert result.returncode == 0
    assert "INSTALLED" in result.stdout
    assert result.calls == []


def test_every_stop_after_the_trap_signals_failure():
    """`exit` does not fire the ERR trap: a step that stops the boot goes through die (or failed)."""
    for kind in ("vllm-gpu", "vllm-neuron"):
        script = render_user_data(spec(kind))
        body = script.split("trap 'failed ${LINENO}' ERR", 1)[1]
        functions = body.split("\n}\n", 1)[0]  # die() itself
        rest = body.split("\n}\n", 1)[1]
        assert 'failed "${BASH_LINENO[0]}"' in functions
        # Only the last line exits with a failure, right after its own FAILURE signal.
        assert rest.count("exit 1") == 1
        assert rest.rstrip().endswith("signal FAILURE\nexit 1")


def test_die_logs_the_reason_and_signals_failure(tmp_path):
    script = render_user_data(spec("vllm-gpu"))
    signal = script[script.index("signal() {") : script.index("trap 'failed ${LINENO}' ERR")]
    die = script[script.index("die() {") : script.index("\n}\n", script.index("die() {")) + 3]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/bash\necho "aws $*" >> {tmp_path}/calls\n')
    (bin_dir / "aws").chmod(0o755)
    program = "\n".join(
        [
            "set -Eeuo pipefail",
            f"export PATH={bin_dir}:$PATH",
            'STACK_NAME=s; GROUP_LOGICAL_ID=g; log() { echo "$*"; }; imds() { echo i-1; }',
            signal,
            "trap 'failed ${LINENO}' ERR",
            die,
            'die "no config.json"',
            "echo NOT-REACHED",
        ]
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)  # noqa: S603, S607
    assert result.returncode == 1
    assert "no config.json" in result.stdout
    assert "NOT-REACHED" not in result.stdout
    assert "--status FAILURE" in (tmp_path / "calls").read_text()


def test_the_agent_publishes_only_the_fleet_rollups_that_the_dashboard_and_alarms_read():
    """Per-instance series (dimension `host` and the plugins' own) are dropped, only [ModelHost] stays;
    GPU memory (a constant under vLLM's preallocation) and memory bandwidth are not collected."""
    for kind in ("vllm-gpu", "vllm-neuron"):
        config = cloudwatch_agent_config(spec(kind))["metrics"]
        for name, plugin in config["metrics_collected"].items():
            prefix = {"mem": "mem_", "disk": "disk_", "nvidia_gpu": "nvidia_smi_"}[name]
            assert plugin["append_dimensions"] == {"ModelHost": "llama"}
            assert plugin["drop_original_metrics"] == [prefix + m for m in plugin["measurement"]]
    gpu = cloudwatch_agent_config(spec("vllm-gpu"))["metrics"]["metrics_collected"]
    assert gpu["nvidia_gpu"]["measurement"] == ["utilization_gpu"]
    assert gpu["mem"]["measurement"] == gpu["disk"]["measurement"] == ["used_percent"]


# One neuron-monitor report, shaped as the Neuron Monitor User Guide shows it ("neuroncore_counters":
# https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html).
NEURON_REPORT = {
    "neuron_runtime_data": [
        {
            "pid": 1234,
            "report": {
                "neuroncore_counters": {
                    "period": 1.0,
                    "neuroncores_in_use": {
                        "0": {"neuroncore_utilization": 40.0, "flops": 1},
                        "1": {"neuroncore_utilization": 60.0, "flops": 1},
                    },
                    "error": "",
                }
            },
        }
    ],
    "system_data": {},
}


def run_neuron_metrics(tmp_path: Path, lines: list[str]) -> list[list[str]]:
    """The script as the host gets it (from the rendered user data), with a fake `aws` that records
    its arguments."""
    script = render_user_data(spec("vllm-neuron"))
    body = re.search(r"<<'NEURON_METRICS'\n(.*?)\nNEURON_METRICS\n", script, re.S).group(1)
    (tmp_path / "neuron_metrics.py").write_text(body)
    calls = tmp_path / "calls"
    fake = tmp_path / "aws"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {calls}\necho --- >> {calls}\n')
    fake.chmod(0o755)
    subprocess.run(  # noqa: S603 - the script this test wrote, with the Python running the tests
        [sys.executable, str(tmp_path / "neuron_metrics.py"), "GenAiStack/ModelHosts", "llama"],
        input="".join(line + "\n" for line in lines),
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        check=True,
        text=True,
    )
    text = calls.read_text() if calls.exists() else ""
    return [call.strip("\n").split("\n") for call in text.split("---\n") if call.strip()]


def test_neuron_hosts_publish_neuroncore_utilisation_per_fleet(tmp_path):
    script = render_user_data(spec("vllm-neuron"))
    assert "neuron-monitor-cloudwatch.py" not in script  # its metric names are documented nowhere
    assert "neuron-monitor | python3 /opt/genai/neuron_metrics.py ${METRICS_NAMESPACE} ${HOST_NAME}" in script
    idle = {"neuron_runtime_data": []}
    (call,) = run_neuron_metrics(tmp_path, [json.dumps(NEURON_REPORT), "not json", json.dumps(idle)])
    assert call[:2] == ["cloudwatch", "put-metric-data"]
    arguments = dict(zip(call[2::2], call[3::2], strict=True))
    assert arguments["--namespace"] == "GenAiStack/ModelHosts"
    assert arguments["--metric-name"] == user_data.NEURON_CORE_METRIC == "NeuronCoreUtilization"
    assert arguments["--dimensions"] == "ModelHost=llama"
    assert arguments["--unit"] == "Percent"
    assert float(arguments["--value"]) == 25.0  # (50 + 0) / 2: the busy report and the idle one


def test_gpu_hosts_check_for_the_compiler_and_headers_vllm_builds_against_before_starting():
    """Triton (vLLM's kernels) compiles a C module at first start: without gcc or Python.h the server
    fails after loading the weights (vllm-project/vllm#27890); the boot stops first, with the reason."""
    gpu = render_user_data(spec("vllm-gpu"))
    section = gpu.split("  vllm-gpu)", 1)[1].split("\n    ;;", 1)[0]
    check = section.split("PYTHON=/opt/genai/venv/bin/python", 1)[1]
    assert "command -v gcc" in check
    assert 'sysconfig.get_paths()["include"]+"/Python.h"' in check
    assert 'die "the AMI lacks gcc or the Python headers' in check
    assert "Python.h" not in neuron_section(render_user_data(spec("vllm-neuron")))  # the DLAMI's venv
