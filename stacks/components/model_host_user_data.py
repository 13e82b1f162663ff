"""The model host's first-boot script: stacks/templates/model_host.sh.tmpl with the host's values.

The template holds bash; this module holds the values and the CloudWatch agent configuration
(JSON, written by the script verbatim). Placeholders are `{{ name }}`; rendering fails on a
placeholder without a value and on a value without a placeholder, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from genai_stack.catalog import model_servers

TEMPLATE = "model_host.sh.tmpl"
_PLACEHOLDER = re.compile(r"\{\{ ([a-z0-9_]+) \}\}")
# Values land inside double-quoted bash strings: nothing in them may expand or end the string. CDK
# tokens (`${Token[...]}`) are the one exception: CloudFormation replaces them before the host runs.
_SAFE = re.compile(r"^[A-Za-z0-9 ._:/@+=,*-]*$")
_TOKEN = re.compile(r"\$\{Token\[[A-Za-z0-9._-]+\]\}")

ServerKind = Literal["vllm-gpu", "vllm-neuron"]
# Where Neuron hosts keep compiled models, under the model's own prefix of the artifacts bucket:
# `<prefix>neuron-compiled/<key>/` (key: see model_host.sh.tmpl). The weights' sync skips it and the
# host role may write only there (model_host_role.py).
NEURON_COMPILED_PREFIX = "neuron-compiled/"
# NeuronCore utilisation, published per fleet by stacks/templates/neuron_metrics.py (installed on
# Neuron hosts by the boot script) from neuron-monitor's reports.
NEURON_METRICS_SCRIPT = "neuron_metrics.py"
NEURON_CORE_METRIC = "NeuronCoreUtilization"


def wheelhouse_prefix() -> str:
    """Where GPU hosts install vLLM from, in the artifacts bucket: `wheels/vllm-<version>/<cpXY>/`,
    staged by `genai-stack wheelhouse` (stacks/cli/wheelhouse.py); the host role reads only this."""
    return f"wheels/vllm-{model_servers().vllm_version}/"


@dataclass(frozen=True, kw_only=True)
class ServerSpec:
    """What one host fleet serves and how it reports. Strings may be CDK tokens (bucket and log
    group names): they render as `${Token[...]}` and CloudFormation substitutes them."""

    host_name: str
    kind: ServerKind
    model_name: str
    model_s3_uri: str
    # s3://<artifacts>/<wheelhouse_prefix()>: vLLM's wheels for GPU hosts whose AMI has no venv
    wheelhouse_s3_uri: str
    region: str
    port: int
    health_path: str
    tensor_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    log_group_name: str
    metrics_namespace: str
    # Signals (model_host_fleet.py): minutes after the instance booted by which the script has
    # signalled (FAILURE if /health has not answered by then; a little before CloudFormation's own
    # timeout, which runs from the same moment), and the stack and group CloudFormation waits on.
    signal_by_minutes: int
    stack_name: str
    group_logical_id: str


def cloudwatch_agent_config(spec: ServerSpec) -> dict:
    """Logs (boot and server) to the host's log group, one stream per instance; memory and root-disk
    used %, and on GPU hosts GPU utilisation, published ONLY rolled up per host fleet (dimension
    ModelHost): each is read by the fleet's dashboard section or alarms (model_host_fleet.monitor).

    `append_dimensions` adds ModelHost to the plugin's series, `aggregation_dimensions` publishes the
    [ModelHost] roll-up, and `drop_original_metrics` (per plugin) stops the per-instance originals
    (dimensions host, and device/fstype/path or index/name/arch), which nothing reads and which would
    be paid per metric and instance ("Manually create or edit the CloudWatch agent configuration
    file", metrics section:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html).
    Not collected: GPU memory (vLLM reserves gpu_memory_utilization of it at start, so "used" is a
    constant) and memory-bandwidth utilisation (utilization_memory), which no decision reads."""
    dimension = {"ModelHost": spec.host_name}

    def plugin(prefix: str, measurements: list[str], **extra: object) -> dict:
        return {
            "measurement": measurements,
            "append_dimensions": dimension,
            "drop_original_metrics": [f"{prefix}{m}" for m in measurements],
            **extra,
        }

    collected: dict = {
        "mem": plugin("mem_", ["used_percent"]),
        "disk": plugin("disk_", ["used_percent"], resources=["/"]),
    }
    if spec.kind == "vllm-gpu":
        collected["nvidia_gpu"] = plugin("nvidia_smi_", ["utilization_gpu"])
    streams = [("/var/log/genai-model-host.log", "boot"), ("/var/log/genai-model-server.log", "server")]
    return {
        "agent": {"metrics_collection_interval": 60},
        "metrics": {
            "namespace": spec.metrics_namespace,
            "metrics_collected": collected,
            "aggregation_dimensions": [["ModelHost"]],
        },
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": path,
                            "log_group_name": spec.log_group_name,
                            "log_stream_name": f"{{instance_id}}/{stream}",
                        }
                        for path, stream in streams
                    ]
                }
            }
        },
    }


def neuron_metrics_script() -> str:
    """stacks/templates/neuron_metrics.py without its comment lines (Python in a quoted heredoc)."""
    text = resources.files("genai_stack").joinpath("templates", NEURON_METRICS_SCRIPT).read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def template_values(spec: ServerSpec) -> dict[str, str]:
    servers = model_servers()
    values = {
        "kind": spec.kind,
        "host_name": spec.host_name,
        "model_name": spec.model_name,
        "model_s3_uri": spec.model_s3_uri,
        "port": str(spec.port),
        "health_path": spec.health_path,
        "tensor_parallel_size": str(spec.tensor_parallel_size),
        "max_model_len": str(spec.max_model_len),
        "max_num_seqs": str(spec.max_num_seqs),
        "vllm_version": servers.vllm_version,
        "wheelhouse_s3_uri": spec.wheelhouse_s3_uri,
        "neuron_release": servers.neuron_last_inf2_release,
        "compiled_s3_prefix": f"{spec.model_s3_uri.rstrip('/')}/{NEURON_COMPILED_PREFIX}",
        "neuron_venv_glob": servers.neuron_venv_glob,
        "cloudwatch_agent_url": servers.cloudwatch_agent_url.format(region=spec.region),
        "metrics_namespace": spec.metrics_namespace,
        "signal_by_minutes": str(spec.signal_by_minutes),
        "stack_name": spec.stack_name,
        "group_logical_id": spec.group_logical_id,
    }
    for name, value in values.items():
        if not _SAFE.match(_TOKEN.sub("", value)):
            raise ValueError(f"model host {spec.host_name}: {name} {value!r} is not safe in a shell string")
    # The agent configuration sits in a quoted heredoc: JSON as it is.
    # Not indented (EC2 user data is at most 16 KB); one item a line, so no "}}" as in a placeholder.
    values["cloudwatch_agent_config"] = json.dumps(
        cloudwatch_agent_config(spec), indent=0, separators=(",", ":")
    )
    values["neuron_metrics_script"] = neuron_metrics_script()
    return values


def render_user_data(spec: ServerSpec) -> str:
    template = resources.files("genai_stack").joinpath("templates", TEMPLATE).read_text()
    values = template_values(spec)
    wanted = set(_PLACEHOLDER.findall(template))
    if missing := wanted - set(values):
        raise KeyError(f"{TEMPLATE}: no value for {sorted(missing)}")
    if unused := set(values) - wanted:
        raise KeyError(f"{TEMPLATE}: no placeholder for {sorted(unused)}")
    return _strip_comments(_PLACEHOLDER.sub(lambda m: values[m.group(1)], template))


# Comment lines explain the template in the repository; the host does not need them, and EC2 takes at
# most 16 KB of user data. Kept: the shebang, shellcheck directives and the numbered step headings
# ("# 1. ..."), which mark the boot log's steps for a reader of the rendered script.
_COMMENT = re.compile(r"^[ \t]*#(?!!|[ \t]*shellcheck|[ \t]*\d+\. ).*\n", re.MULTILINE)


def _strip_comments(script: str) -> str:
    return _COMMENT.sub("", script)
