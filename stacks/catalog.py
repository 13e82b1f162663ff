"""Data tables the profile validation and the stacks rely on, each kept as JSON with source and date.

- `data/regions.json`: per commercial region, the CloudFormation resource types of genai-stack's
  stacks that the region does not offer (tests/stacks/test_regions.py regenerates and checks it);
- `data/bedrock_models.json`: Bedrock foundation models (modality, embedding dimensions, the
  regions that offer them on demand) and system cross-region inference profiles.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent / "data"

Modality = Literal["text", "image", "embeddings"]


@dataclass(frozen=True)
class FoundationModel:
    model_id: str
    modality: Modality
    regions: tuple[str, ...]  # regions offering on-demand, in-region invocation
    dimensions: tuple[int, ...] = ()  # embedding sizes the model can produce


@dataclass(frozen=True)
class SystemInferenceProfile:
    """A system-defined cross-region inference profile.

    `routes` maps each source region (where it can be called) to the regions it may send the request
    to; the destinations depend on the source. A `global.` profile may route to any commercial
    region, so its routes are empty and IAM uses the region-less foundation-model ARN instead.
    """

    profile_id: str
    model_id: str
    routes: dict[str, tuple[str, ...]]
    is_global: bool = False

    @property
    def source_regions(self) -> tuple[str, ...]:
        return tuple(sorted(self.routes))

    def destinations(self, source_region: str) -> tuple[str, ...]:
        return self.routes[source_region]


@dataclass(frozen=True)
class BedrockCatalog:
    models: dict[str, FoundationModel]
    inference_profiles: dict[str, SystemInferenceProfile]

    def model_of(self, model_or_profile_id: str) -> FoundationModel:
        """The foundation model behind a model id or a system inference profile id."""
        profile = self.inference_profiles.get(model_or_profile_id)
        return self.models[profile.model_id if profile else model_or_profile_id]


def _read(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


# The approaches (and the parts every profile has) whose resource types regions.json lists.
APPROACHES: dict[str, str] = {
    "foundation": "Foundation",
    "observability": "Dashboards and alarms",
    "cost": "Budgets and anomaly alerts",
    "managed_api": "Managed API (Bedrock)",
    "gateway": "Model gateway",
    "self_managed": "Self-managed (EC2)",
    "training_and_tuning": "Training and tuning (SageMaker)",
}
# AWS Budgets and Cost Explorer: global services whose CloudFormation resources not every region has.
COST_TYPES = (
    "AWS::Budgets::Budget",
    "AWS::Budgets::BudgetsAction",
    "AWS::CE::AnomalyMonitor",
    "AWS::CE::AnomalySubscription",
)


def provenance(table: str, section: str, key: str) -> str:
    """Where one entry of a data table comes from and when it was read ("<source> (read <date>)"):
    the table's "provenance" map, which `genai-stack catalog refresh` stamps for what it confirms."""
    entry = _read(table)["provenance"][f"{section}/{key}"]
    return f"{entry['source']} (read {entry['retrieved']})"


@cache
def regions_table() -> dict:
    return _read("regions.json")


def missing_types(region: str) -> frozenset[str]:
    """The resource types of genai-stack's stacks that CloudFormation does not offer in `region`
    (KeyError for a region outside the table)."""
    return frozenset(regions_table()["missing"][region])


def approach_gaps(region: str) -> dict[str, list[str]]:
    """Per approach, the types its stacks can use that `region` lacks (empty: all offered)."""
    missing = missing_types(region)
    return {approach: sorted(set(types) & missing) for approach, types in regions_table()["types"].items()}


@cache
def supported_regions() -> tuple[str, ...]:
    """Commercial regions that offer every type of the stacks each profile has (foundation, dashboards
    and alarms); budgets go to `cost_region` where the region lacks them."""
    return tuple(
        region
        for region in sorted(regions_table()["missing"])
        if not any(approach_gaps(region)[part] for part in ("foundation", "observability"))
    )


def unsupported_reason(region: str) -> str:
    """Why a region is refused, for the profile's error message."""
    if region not in regions_table()["missing"]:
        return "is not an AWS commercial region CloudFormation lists"
    gaps = approach_gaps(region)
    lacking = sorted(set(gaps["foundation"]) | set(gaps["observability"]))
    return f"lacks {', '.join(lacking)} in CloudFormation, which the stacks every profile has can hold"


def cost_region(region: str) -> str:
    """Where a profile's budgets and anomaly monitor live: its own region, or us-east-1 (with a stack
    of their own) where CloudFormation lacks any of them (ap-east-1 has the AWS::CE types but not
    AWS::Budgets::Budget; the monitor stays with the budget and its topic)."""
    return regions_table()["cost_region"] if approach_gaps(region)["cost"] else region


def regions_markdown() -> str:
    """docs/regions.md's table: per commercial region, whether profiles deploy there and which
    approaches' resource types it lacks."""
    table = regions_table()
    columns = ["managed_api", "gateway", "self_managed", "training_and_tuning", "cost"]
    lines = [
        f"From `stacks/data/regions.json` ({table['source']}; {table['retrieved']}). A cell lists the "
        "resource types an approach's stacks can use that the region lacks; a profile that does not use "
        "them still deploys (the synthesis checks each stack's exact types). The gateway needs a bedrock "
        "section (its model access and guardrail), so it goes where the managed API does. Budgets: "
        f"`in {table['cost_region']}` means a stack of their own there.",
        "",
        "| Region | Profiles | " + " | ".join(APPROACHES[c] for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    supported = set(supported_regions())
    for region in sorted(table["missing"]):
        gaps = approach_gaps(region)
        cells = [", ".join(t.removeprefix("AWS::") for t in gaps[c]) or "yes" for c in columns]
        cells[-1] = f"in {table['cost_region']}" if gaps["cost"] else "in the region"
        status = "yes" if region in supported else "no: " + unsupported_reason(region).removeprefix("lacks ")
        lines.append(f"| {region} | {status} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@cache
def bedrock_catalog() -> BedrockCatalog:
    data = _read("bedrock_models.json")
    models = {
        model_id: FoundationModel(
            model_id=model_id,
            modality=entry["modality"],
            regions=tuple(entry["regions"]),
            dimensions=tuple(entry.get("dimensions", ())),
        )
        for model_id, entry in data["models"].items()
    }
    profiles = {
        profile_id: SystemInferenceProfile(
            profile_id=profile_id,
            model_id=entry["model"],
            routes={source: tuple(targets) for source, targets in entry["routes"].items()},
            is_global=entry.get("global", False),
        )
        for profile_id, entry in data["inference_profiles"].items()
    }
    return BedrockCatalog(models=models, inference_profiles=profiles)


@dataclass(frozen=True)
class GuardrailProfile:
    """A system guardrail profile: where a STANDARD-tier guardrail runs its safeguards."""

    profile_id: str
    source_region: str
    destinations: tuple[str, ...]


@cache
def _guardrails() -> dict:
    return _read("guardrails.json")


def guardrail_languages(tier: str) -> tuple[str, ...]:
    """Language codes the tier's content filters support (see data/guardrails.json)."""
    return tuple(_guardrails()["tiers"][tier]["languages"])


def topic_definition_limit(tier: str) -> int:
    return int(_guardrails()["tiers"][tier]["topic_definition_max"])


def guardrail_profile(region: str) -> GuardrailProfile | None:
    """The verified system guardrail profile callable from `region`, if any."""
    for profile_id, entry in _guardrails()["guardrail_profiles"].items():
        if region in entry["routes"]:
            return GuardrailProfile(profile_id, region, tuple(entry["routes"][region]))
    return None


def guardrail_profile_sources() -> tuple[str, ...]:
    """Every region a recorded system guardrail profile can be called from."""
    profiles = _guardrails()["guardrail_profiles"].values()
    return tuple(sorted({region for entry in profiles for region in entry["routes"]}))


@cache
def bedrock_image_prices() -> dict[str, float]:
    """Image model id -> USD per generated image at its default size and quality (see
    data/bedrock_prices.json `per_image` and its source)."""
    return {model: float(entry["usd"]) for model, entry in _read("bedrock_prices.json")["per_image"].items()}


@cache
def bedrock_prices() -> dict[str, tuple[float, float]]:
    """Model id -> (input, output) USD per 1,000 tokens (see data/bedrock_prices.json and its caveat)."""
    data = _read("bedrock_prices.json")["per_1k_tokens"]
    return {model: (price["input"], price["output"]) for model, price in data.items()}


@dataclass(frozen=True)
class AcceleratorInstance:
    instance_type: str
    accelerator: Literal["inferentia2", "a10g", "l4"]
    accelerators: int
    accelerator_memory_gb: float
    vcpus: int
    memory_gib: float
    hourly_usd_us_east_1: float | None

    @property
    def tensor_parallel_size(self) -> int:
        """Devices a model is sharded over: each Inferentia2 chip has two NeuronCores."""
        return self.accelerators * (2 if self.accelerator == "inferentia2" else 1)


@cache
def accelerator_instances() -> dict[str, AcceleratorInstance]:
    data = _read("ec2_accelerators.json")["instances"]
    return {name: AcceleratorInstance(instance_type=name, **entry) for name, entry in data.items()}


def ami_parameter(accelerator: str) -> str:
    """The public SSM parameter holding the latest Deep Learning AMI for the accelerator."""
    return _read("ec2_accelerators.json")["ami_parameters"][accelerator]


@dataclass(frozen=True)
class ModelServers:
    vllm_version: str
    neuron_venv_glob: str
    neuron_last_inf2_release: str
    cloudwatch_agent_url: str
    gpu_python: str  # the Python of the GPU AMI (Ubuntu 22.04): the wheelhouse's ABI
    gpu_wheel_platform: str  # its glibc as a wheel platform tag


def model_servers() -> ModelServers:
    """What the model hosts install or find at boot (see data/ec2_accelerators.json, "servers")."""
    return ModelServers(**_read("ec2_accelerators.json")["servers"])


# --------------------------------------------------------------------------------------------------
# SageMaker: Deep Learning Container images, instance types, Bedrock customization (data/sagemaker.json)


@dataclass(frozen=True)
class SageMakerInstance:
    instance_type: str
    accelerator: Literal["gpu", "neuron"]
    accelerators: int
    accelerator_memory_gb: float
    local_nvme: bool
    hourly_usd_us_east_1: float | None
    memory_gib: float | None = None  # host memory (inference instances; data/sagemaker.json "memory")


@cache
def sagemaker_data() -> dict:
    return _read("sagemaker.json")


def _instances(table: str) -> dict[str, SageMakerInstance]:
    return {
        name: SageMakerInstance(instance_type=name, **entry)
        for name, entry in sagemaker_data()[table].items()
    }


@cache
def training_instances() -> dict[str, SageMakerInstance]:
    return _instances("training_instances")


@cache
def inference_instances() -> dict[str, SageMakerInstance]:
    return _instances("inference_instances")


def registry_regions() -> tuple[str, ...]:
    """Every region with a Deep Learning Container registry (data/sagemaker.json registry_accounts)."""
    accounts = sagemaker_data()["registry_accounts"]
    return tuple(sorted(set(accounts["default_regions"]) | set(accounts["by_region"])))


def registry_account(region: str) -> str:
    accounts = sagemaker_data()["registry_accounts"]
    return accounts["by_region"].get(region, accounts["default"])


def image_regions(image: str) -> tuple[str, ...]:
    """Regions whose registry holds the image's pinned tag (`genai-stack catalog refresh` asks each)."""
    return tuple(sorted(set(sagemaker_data()["images"][image]["regions"]) & set(registry_regions())))


def image_uri(image: str, region: str) -> str:
    """<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>, resolved at synth time from the
    data table; ValueError for a region without the image (profiles check this first)."""
    if region not in image_regions(image):
        raise ValueError(f"the {image} image is not published in {region}")
    entry = sagemaker_data()["images"][image]
    return f"{registry_account(region)}.dkr.ecr.{region}.amazonaws.com/{entry['repository']}:{entry['tag']}"


def image_repository_arn(image: str, region: str) -> str:
    """The ECR repository ARN of an image (what a role needs to pull it)."""
    registry, _, rest = image_uri(image, region).partition(".dkr.ecr.")
    repository = rest.split("/", 1)[1].split(":")[0]
    return f"arn:aws:ecr:{region}:{registry}:repository/{repository}"


def customization_models(region: str) -> dict[str, tuple[str, ...]]:
    """Base model id -> customization types it supports in the region."""
    return {m: tuple(kinds) for m, kinds in sagemaker_data()["customization"].get(region, {}).items()}


# --------------------------------------------------------------------------------------------------
# Model sizes and the sizing rules of hosts and endpoints (data/models.json, each with its source)


@dataclass(frozen=True)
class ModelArchitecture:
    """What a model's config.json says about its size: enough to size weights and the KV cache."""

    name: str
    parameters_billions: float
    layers: int
    kv_heads: int
    head_dim: int
    max_position_embeddings: int

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        """2 (K and V) x layers x KV heads x head_dim x bytes per value."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value


@dataclass(frozen=True)
class SizingRules:
    neuron_host_memory_factor: float
    accelerator_memory_utilization: float
    kv_cache_bytes_per_value: float
    neuron_compiled_copies_of_weights: float
    os_reserve_gb: float
    unknown_architecture_kv_overhead: float


@cache
def model_architectures() -> dict[str, ModelArchitecture]:
    data = _read("models.json")["architectures"]
    return {name: ModelArchitecture(name=name, **entry) for name, entry in data.items()}


@cache
def sizing_rules() -> SizingRules:
    return SizingRules(**_read("models.json")["rules"])


@dataclass(frozen=True)
class StartupBudget:
    """Launch to a passing /health for one model host, step by step (data/models.json, "startup")."""

    steps: tuple[tuple[str, float], ...]
    margin: float
    limit_minutes: int  # CloudFormation's maximum rolling-update PauseTime

    @property
    def minutes(self) -> int:
        return math.ceil(sum(minutes for _, minutes in self.steps) * self.margin)

    def describe(self) -> str:
        steps = " + ".join(f"{name} {minutes:.0f}" for name, minutes in self.steps)
        return f"({steps}) x {self.margin:g} = {self.minutes} minutes"


def startup_budget(weights_gb: float, *, neuron: bool) -> StartupBudget:
    """Boot, the weights from S3, vLLM from the wheelhouse (GPU) or the first compile (Neuron), the
    server's own start; times the margin. Figures and sources: data/models.json "startup"."""
    rules = _read("models.json")["startup"]
    steps: list[tuple[str, float]] = [
        ("boot", rules["boot_minutes"]),
        ("weights download", weights_gb / rules["s3_download_gb_per_minute"]),
    ]
    if neuron:
        steps.append(("Neuron compile", weights_gb * rules["neuron_compile_minutes_per_gb"]))
    else:
        steps.append(("vLLM install", rules["gpu_install_minutes"]))
    steps.append(("server start", rules["server_start_minutes"]))
    return StartupBudget(
        steps=tuple(steps), margin=rules["margin"], limit_minutes=rules["pause_time_max_minutes"]
    )
