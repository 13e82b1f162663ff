"""What a SageMaker endpoint is called, where it writes, which images it runs and how its container
and schedules are set: the facts ModelEndpoint (the inference stack) and ModelEndpointRole (the
foundation stack) share."""

from __future__ import annotations

import re
from dataclasses import dataclass

from genai_stack.catalog import inference_instances, sagemaker_data
from genai_stack.config import InferenceEndpoint

MODEL_DIR = "/opt/ml/model"
# SageMaker entity names (endpoint, inference component, monitoring schedule): CreateEndpoint API.
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# Seconds to download the weights and to pass the first health check (loading; on Neuron, compiling).
# CloudFormation allows 60..3600 for both (ProductionVariant / InferenceComponentStartupParameters).
STARTUP_TIMEOUT_SECONDS = {"gpu": 1800, "neuron": 3600}


# --------------------------------------------------------------------------------------------------
# Names and prefixes shared with ModelEndpointRole


DATA_CAPTURE_ROOT = "data-capture"


def data_capture_prefix(endpoint_name: str) -> str:
    """Where this endpoint's captured requests land: the capture destination is `DATA_CAPTURE_ROOT`,
    below which SageMaker writes `<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
    return f"{DATA_CAPTURE_ROOT}/{endpoint_name}/"


def async_prefix(endpoint_name: str) -> str:
    """Asynchronous requests: callers upload to `<prefix>input/`; results and failures follow."""
    return f"async/{endpoint_name}/"


def monitoring_prefix(endpoint_name: str) -> str:
    """Model Monitor reports (and, once made, the baseline under `<prefix>baseline/`)."""
    return f"monitoring/{endpoint_name}/"


def inference_component_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-model"


def monitoring_schedule_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-data-quality"


def captures_data(settings: InferenceEndpoint) -> bool:
    return settings.data_capture_percentage > 0


def monitors_data_quality(settings: InferenceEndpoint) -> bool:
    """Model Monitor only where the profile opts in, and only over captured data (the profile refuses a
    schedule without capture, and both on inference components: InferenceEndpoint._monitoring_problems)."""
    return captures_data(settings) and settings.monitoring_schedule is not None


def endpoint_log_group_names(settings: InferenceEndpoint, endpoint_name: str) -> list[str]:
    """The log groups SageMaker writes for this endpoint (container and platform logs)."""
    names = [f"/aws/sagemaker/Endpoints/{endpoint_name}"]
    if settings.inference_components:
        names.append(f"/aws/sagemaker/InferenceComponents/{inference_component_name(endpoint_name)}")
    return names


def check_names(settings: InferenceEndpoint, endpoint_name: str) -> None:
    """ValueError for a physical name SageMaker would reject (63 characters, letters, digits, '-')."""
    names = [endpoint_name]
    if settings.inference_components:
        names.append(inference_component_name(endpoint_name))
    if monitors_data_quality(settings):
        names.append(monitoring_schedule_name(endpoint_name))
    for name in names:
        if not SAGEMAKER_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a valid SageMaker name (at most 63 letters, digits and hyphens, "
                "starting and ending with a letter or digit); shorten the profile or endpoint name"
            )


# --------------------------------------------------------------------------------------------------
# Model Monitor analyzer image (data/sagemaker.json, "model_monitor")


@dataclass(frozen=True)
class ModelMonitorImage:
    account: str
    region: str
    repository: str

    @property
    def uri(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.repository}"

    @property
    def repository_arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{self.repository}"


def model_monitor_image(region: str) -> ModelMonitorImage:
    """The prebuilt Model Monitor analyzer of the region; ValueError where it is not published."""
    table = sagemaker_data()["model_monitor"]
    account = table["accounts"].get(region)
    if account is None:
        raise ValueError(f"the Model Monitor analyzer image is not known for {region} (data/sagemaker.json)")
    return ModelMonitorImage(account=account, region=region, repository=table["analyzer_repository"])


# --------------------------------------------------------------------------------------------------
# Serving options and schedules


def container_environment(settings: InferenceEndpoint) -> dict[str, str]:
    """The serving options of the container for weights in /opt/ml/model (facts from the LMI and TGI
    docs: with an uncompressed ModelDataSource the model id is the local directory)."""
    spec = inference_instances()[settings.instance_type]
    if settings.container == "lmi":
        # LMI (DJL Serving) with vLLM: shard over every GPU of the instance.
        return {
            "OPTION_MODEL_ID": MODEL_DIR,
            "OPTION_ROLLING_BATCH": "vllm",
            "TENSOR_PARALLEL_DEGREE": "max",
            "OPTION_MAX_MODEL_LEN": str(settings.max_model_len),
            "OPTION_MODEL_LOADING_TIMEOUT": str(STARTUP_TIMEOUT_SECONDS["gpu"]),
        }
    if settings.container == "lmi-neuron":
        # LMI with transformers-neuronx: the tensor-parallel degree counts NeuronCores, two per
        # Inferentia2 chip (as the SageMaker SDK's JumpStart Neuron configs: ml.inf2.xlarge 2,
        # ml.inf2.48xlarge 24); n_positions is the compiled sequence length (input + output).
        # Its transformers is 4.45.2 (stacks/data/sagemaker.json): weights must come with a
        # config.json in the transformers 4 layout (top-level rope_theta / rope_scaling).
        return {
            "OPTION_MODEL_ID": MODEL_DIR,
            "OPTION_ENTRYPOINT": "djl_python.transformers_neuronx",
            "OPTION_ROLLING_BATCH": "auto",
            "TENSOR_PARALLEL_DEGREE": str(2 * spec.accelerators),
            "OPTION_N_POSITIONS": str(settings.max_model_len),
            # The compiled batch; LMI's default is 32 (djl_python properties_manager), whose KV cache
            # the profile validator does not size (genai_stack.config.sizing_problems).
            "OPTION_MAX_ROLLING_BATCH_SIZE": str(settings.max_num_seqs),
            "OPTION_DTYPE": "fp16",
            "OPTION_MODEL_LOADING_TIMEOUT": str(STARTUP_TIMEOUT_SECONDS["neuron"]),
        }
    if settings.container == "diffusers":
        # The Hugging Face inference toolkit runs the model's own code: /opt/ml/model/code/inference.py
        # (model_fn loads the base pipeline and the LoRA adapter from the model directory,
        # transform_fn generates); the toolkit puts /opt/ml/model/code on the path and reads
        # SAGEMAKER_PROGRAM. One worker per GPU, since each worker loads its own copy of the pipeline;
        # HF_MODEL_ID is not set, so nothing is fetched from the Hub (network isolation; so no
        # code/requirements.txt either, which the toolkit would pip-install at start). The model
        # server's response timeout: multi-model-server reads this variable as minutes
        # (ConfigManager.getDefaultResponseTimeoutSeconds multiplies it by 60, "due to a bug"), so 60
        # is an hour, SageMaker's longest asynchronous invocation (InvokeEndpointAsync
        # InvocationTimeoutSeconds); read as seconds it would still outlast four 1,024 px images.
        return {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(spec.accelerators),
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "60",
        }
    # Hugging Face TGI: prompts may take half of the window, the rest is left for the answer.
    return {
        "HF_MODEL_ID": MODEL_DIR,
        "SM_NUM_GPUS": str(spec.accelerators),
        "MAX_TOTAL_TOKENS": str(settings.max_model_len),
        "MAX_INPUT_TOKENS": str(settings.max_model_len // 2),
    }


def _weekdays(field: str) -> str:
    """Unix cron weekdays (0-7, 0 and 7 = Sunday) -> Application Auto Scaling (1-7, 1 = Sunday)."""

    def day(token: str) -> str:
        return str(int(token) % 7 + 1) if token.isdigit() else token

    parts = []
    for part in field.split(","):
        base, slash, step = part.partition("/")
        first, dash, last = base.partition("-")
        first, last = day(first), day(last) if dash else ""
        if dash and first.isdigit() and last.isdigit() and int(first) > int(last):
            raise ValueError(f"weekday range {base!r} wraps past Saturday; split it (e.g. '5-6,0')")
        parts.append(f"{first}{dash}{last}{slash}{step}")
    return ",".join(parts)


def application_autoscaling_cron(expression: str) -> str:
    """A 5-field Unix cron (minute hour day-of-month month day-of-week) -> Application Auto Scaling's
    `cron(minutes hours day-of-month month day-of-week year)`, where one of the two day fields must be
    '?' (Application Auto Scaling user guide, "Scheduled scaling": cron expressions)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not a 5-field cron expression")
    minute, hour, day_of_month, month, day_of_week = fields
    day_of_week = _weekdays(day_of_week)
    if day_of_week in ("*", "?"):
        day_of_week = "?"
        day_of_month = "*" if day_of_month == "?" else day_of_month
    elif day_of_month in ("*", "?"):
        day_of_month = "?"
    else:
        raise ValueError(
            f"{expression!r} sets both the day of the month and the day of the week, which Application "
            "Auto Scaling cannot combine; use '*' for one of them"
        )
    return f"cron({minute} {hour} {day_of_month} {month} {day_of_week} *)"
