"""Profiles: the typed models of a profile file and `load_profile`.

A profile is a YAML file that says what to deploy. It is validated here, once, with unknown keys
forbidden; everything downstream (the stage, the stacks, the constructs) receives typed models and
never reads files. Errors name the file, the field path, the bad value and what is allowed, e.g.::

    profiles/my.yaml: budget.monthly_limit_usd: -5 is not allowed: input should be greater than 0

Run ``python -m genai_stack.config --write-schema`` after changing a model: it regenerates
``profiles/profile.schema.json``, which editors use to complete and check profile files (a test fails
while the committed schema is stale).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from genai_stack import PROFILES_DIR
from genai_stack.catalog import (
    ModelArchitecture,
    StartupBudget,
    accelerator_instances,
    bedrock_catalog,
    customization_models,
    guardrail_languages,
    guardrail_profile,
    image_regions,
    inference_instances,
    model_architectures,
    model_servers,
    sagemaker_data,
    sizing_rules,
    startup_budget,
    supported_regions,
    topic_definition_limit,
    training_instances,
    unsupported_reason,
)

SCHEMA_PATH = PROFILES_DIR / "profile.schema.json"
DEFAULT_PROFILE = "managed-api"
ALL_PROFILES = "all"
# Tags the stage puts on every resource (besides the profile's cost-allocation tag).
PROJECT_TAG = "project"
PROFILE_TAG = "genai-stack:profile"
RESERVED_TAG_KEYS = (PROJECT_TAG, PROFILE_TAG)

# CloudWatch Logs accepts only these retention periods (AWS::Logs::LogGroup RetentionInDays).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# Tag keys and values: letters, digits, spaces and + - = . _ : / @ (AWS tagging rules); "aws:" is reserved.
# (ASCII letters only: CloudFormation allows Unicode letters, but not every service that is tagged does.)
def _not_reserved(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise ValueError("is not allowed: tag keys starting with 'aws:' are reserved by AWS")
    return key


TagKey = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9 _.:/=+@-]+$", min_length=1, max_length=128),
    AfterValidator(_not_reserved),
]
TagValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9 _.:/=+@-]*$", max_length=256)]


class ProfileError(Exception):
    """A profile that cannot be used. The message is meant for people: no traceback needed."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


_LOCATED = re.compile(r"^@([^@]+)@ (.*)$")


def located(subpath: str, message: str) -> str:
    """A validator message about a field below the one being validated: the error then names
    `<field>.<subpath>` (see `_describe`)."""
    return f"@{subpath}@ {message}"


def _known_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        raise ValueError(f"is not a CloudWatch Logs retention period (one of {allowed})")
    return days


class _Strict(BaseModel):
    """Base of every profile model: unknown keys are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CostAllocation(_Strict):
    """The cost-allocation tag every resource carries; budgets and anomaly monitors filter on it.

    Activate the tag key once in the Billing console (Cost allocation tags) so that Cost Explorer
    and AWS Budgets can filter by it.
    """

    tag_key: TagKey = "genai-stack:cost-center"
    tag_value: TagValue = Field(min_length=1)


class Notifications(_Strict):
    """Who hears about alarms, budget thresholds and cost anomalies."""

    # AWS Budgets accepts at most 10 e-mail subscribers per notification (Budgets quotas).
    emails: list[EmailStr] = Field(default_factory=list, max_length=10)


class BudgetThreshold(_Strict):
    """Notify when ACTUAL or FORECASTED spend crosses `percent` of the monthly limit."""

    percent: float = Field(gt=0, le=1000)
    kind: Literal["ACTUAL", "FORECASTED"]


def _default_thresholds() -> list[BudgetThreshold]:
    return [BudgetThreshold(percent=80, kind="ACTUAL"), BudgetThreshold(percent=100, kind="FORECASTED")]


class Budget(_Strict):
    """A monthly AWS Budgets cost budget on the profile's cost-allocation tag, plus anomaly alerts."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000)
    # AWS Budgets allows at most 5 notifications per budget (Budgets quotas).
    thresholds: list[BudgetThreshold] = Field(default_factory=_default_thresholds, min_length=1, max_length=5)
    anomaly_threshold_usd: float = Field(
        default=25, gt=0, description="Alert on anomalies costing at least this"
    )

    @field_validator("thresholds")
    @classmethod
    def _unique_thresholds(cls, thresholds: list[BudgetThreshold]) -> list[BudgetThreshold]:
        seen = set()
        for threshold in thresholds:
            key = (threshold.percent, threshold.kind)
            if key in seen:
                raise ValueError(f"lists {threshold.kind} {threshold.percent:g}% twice (each threshold once)")
            seen.add(key)
        return thresholds


class Foundation(_Strict):
    """The stateful base: key, buckets, alarm topic."""

    noncurrent_version_days: int = Field(
        default=90, ge=1, le=3650, description="Days before noncurrent object versions expire"
    )
    log_retention_days: int = Field(default=365, description="Retention of CloudWatch log groups")
    access_log_days: int = Field(default=365, ge=1, le=3650, description="Days to keep S3 access logs")

    _retention = field_validator("log_retention_days")(classmethod(lambda cls, days: _known_retention(days)))


# --------------------------------------------------------------------------------------------------
# Managed API: Amazon Bedrock

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
# An interface VPC endpoint id: vpce- and 17 hex digits (8 in older ids), as the hosting VPC ids below.
VpcEndpointId = Annotated[str, Field(pattern=r"^vpce-[0-9a-f]{8,17}$")]
_SLUG_SCHEMA = TypeAdapter(Slug).json_schema()
Strength = Literal["NONE", "LOW", "MEDIUM", "HIGH"]
ContentFilterType = Literal["SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT", "PROMPT_ATTACK"]
# AWS::Bedrock::Guardrail PiiEntityConfig.Type (cfn-lint 1.58.0 schema of the CloudFormation registry).
PiiEntityType = Literal[
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "CA_HEALTH_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV", "CREDIT_DEBIT_CARD_EXPIRY", "CREDIT_DEBIT_CARD_NUMBER", "DRIVER_ID", "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IP_ADDRESS", "LICENSE_PLATE", "MAC_ADDRESS", "NAME", "PASSWORD",
    "PHONE", "PIN", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "URL", "USERNAME", "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER", "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER", "VEHICLE_IDENTIFICATION_NUMBER",
]  # fmt: skip


class ContentFilter(_Strict):
    """A content filter with its strength on prompts (input) and on responses (output)."""

    type: ContentFilterType
    input_strength: Strength = "HIGH"
    output_strength: Strength = "HIGH"
    modalities: list[Literal["TEXT", "IMAGE"]] = Field(
        default_factory=lambda: ["TEXT"], min_length=1, max_length=2
    )

    @model_validator(mode="after")
    def _prompt_attack_is_input_only(self) -> ContentFilter:
        # Prompt attacks are only detected in the input; Bedrock requires output strength NONE for them.
        if self.type == "PROMPT_ATTACK" and self.output_strength != "NONE":
            raise ValueError(
                located(
                    "output_strength",
                    f"{self.output_strength!r} is not allowed for "
                    "PROMPT_ATTACK: prompt attacks are filtered on input only (use NONE)",
                )
            )
        return self


def _default_content_filters() -> list[ContentFilter]:
    kinds: tuple[ContentFilterType, ...] = ("SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT")
    return [ContentFilter(type=kind) for kind in kinds] + [
        ContentFilter(type="PROMPT_ATTACK", input_strength="HIGH", output_strength="NONE")
    ]


class DeniedTopic(_Strict):
    """A topic the guardrail blocks; the definition's length limit depends on the tier."""

    name: str = Field(pattern=r"^[0-9A-Za-z-_ !?.]{1,100}$")
    definition: str = Field(min_length=1, max_length=1000)
    examples: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=5
    )


class PiiEntity(_Strict):
    type: PiiEntityType
    action: Literal["BLOCK", "ANONYMIZE"]


class RegexFilter(_Strict):
    name: str = Field(min_length=1, max_length=100)
    pattern: str = Field(min_length=1, max_length=500)
    action: Literal["BLOCK", "ANONYMIZE"]
    description: str | None = Field(default=None, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"is not a valid regular expression: {error}") from None
        return pattern


class ContextualGrounding(_Strict):
    """Block responses whose grounding in the source, or relevance to the query, scores below these."""

    grounding_threshold: float = Field(default=0.75, ge=0, le=0.99)
    relevance_threshold: float = Field(default=0.5, ge=0, le=0.99)


class Guardrail(_Strict):
    """One Bedrock guardrail for every model call of the profile (all policy types optional)."""

    tier: Literal["CLASSIC", "STANDARD"] = Field(
        default="STANDARD", description="STANDARD: more languages, longer topic definitions, cross-region"
    )
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    mandatory: bool = Field(default=True, description="Roles may invoke models only with this guardrail")
    blocked_input_message: str = Field(min_length=1, max_length=500)
    blocked_output_message: str = Field(min_length=1, max_length=500)
    content_filters: list[ContentFilter] = Field(default_factory=_default_content_filters, max_length=6)
    denied_topics: list[DeniedTopic] = Field(default_factory=list, max_length=30)
    words: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=10000
    )
    managed_profanity_filter: bool = True
    pii_entities: list[PiiEntity] = Field(default_factory=list)
    regexes: list[RegexFilter] = Field(default_factory=list, max_length=30)
    contextual_grounding: ContextualGrounding | None = None

    @model_validator(mode="after")
    def _tier_limits(self) -> Guardrail:
        problems = []
        supported = guardrail_languages(self.tier)
        for index, language in enumerate(self.languages):
            if language not in guardrail_languages("STANDARD"):
                problems.append(
                    located(
                        f"languages[{index}]",
                        f"{language!r} is not a language Bedrock guardrails "
                        f"support (one of {', '.join(guardrail_languages('STANDARD'))})",
                    )
                )
            elif language not in supported:
                problems.append(
                    located(
                        f"languages[{index}]",
                        f"{language!r} is not supported by the {self.tier} "
                        f"tier (it supports {', '.join(supported)}); use tier: STANDARD",
                    )
                )
        limit = topic_definition_limit(self.tier)
        for index, topic in enumerate(self.denied_topics):
            if len(topic.definition) > limit:
                problems.append(
                    located(
                        f"denied_topics[{index}].definition",
                        f"is {len(topic.definition)} characters; the {self.tier} tier allows {limit}",
                    )
                )
        types = [f.type for f in self.content_filters]
        for kind in sorted({t for t in types if types.count(t) > 1}):
            problems.append(located("content_filters", f"lists {kind} more than once"))
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FixedChunking(_Strict):
    strategy: Literal["fixed"] = "fixed"
    max_tokens: int = Field(default=300, ge=20, le=8192)
    overlap_percent: int = Field(default=20, ge=1, le=99)


class SemanticChunking(_Strict):
    strategy: Literal["semantic"]
    max_tokens: int = Field(default=300, ge=20, le=8192)
    buffer_size: int = Field(default=0, ge=0, le=1)
    breakpoint_percentile_threshold: int = Field(default=95, ge=50, le=99)


class HierarchicalChunking(_Strict):
    strategy: Literal["hierarchical"]
    parent_max_tokens: int = Field(default=1500, ge=1, le=8192)
    child_max_tokens: int = Field(default=300, ge=1, le=8192)
    overlap_tokens: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _child_fits_parent(self) -> HierarchicalChunking:
        if self.child_max_tokens >= self.parent_max_tokens:
            raise ValueError(
                located(
                    "child_max_tokens",
                    f"{self.child_max_tokens} must be smaller than "
                    f"parent_max_tokens ({self.parent_max_tokens})",
                )
            )
        return self


Chunking = Annotated[FixedChunking | SemanticChunking | HierarchicalChunking, Field(discriminator="strategy")]
# EventBridge schedule expressions: rate(N unit) or cron(6 fields).
_SCHEDULE = r"^(rate\((1 (minute|hour|day)|[1-9][0-9]* (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$"


class KnowledgeBase(_Strict):
    """A knowledge base over the data bucket prefix `knowledge-bases/<name>/`."""

    name: Slug
    description: str = Field(min_length=1, max_length=200)
    embedding_model: str
    dimensions: int = Field(gt=0)
    vector_store: Literal["s3_vectors", "aurora_pgvector"] = Field(
        default="s3_vectors",
        description="s3_vectors: pay per use, no idle compute; aurora_pgvector: Aurora PostgreSQL "
        "Serverless v2 with pgvector, pausing at 0 ACU when idle",
    )
    chunking: Chunking = Field(default_factory=FixedChunking)
    ingestion_schedule: str = Field(default="rate(1 day)", pattern=_SCHEDULE)

    @property
    def prefix(self) -> str:
        return f"knowledge-bases/{self.name}/"

    @property
    def table_name(self) -> str:
        """The pgvector table of an aurora_pgvector knowledge base."""
        return self.name.replace("-", "_")


class AuroraVectorStore(_Strict):
    """The Aurora PostgreSQL Serverless v2 cluster shared by the aurora_pgvector knowledge bases."""

    min_capacity: float = Field(
        default=0, ge=0, le=256, multiple_of=0.5, description="ACUs; 0 pauses when idle"
    )
    max_capacity: float = Field(default=2, ge=1, le=256, multiple_of=0.5)
    auto_pause_minutes: int = Field(default=10, ge=5, le=1440, description="Idle time before pausing (min 0)")

    @model_validator(mode="after")
    def _range(self) -> AuroraVectorStore:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                located(
                    "min_capacity", f"{self.min_capacity:g} is above max_capacity ({self.max_capacity:g})"
                )
            )
        return self


class DriftMonitoring(_Strict):
    """The project's own drift job over captured requests (and Bedrock invocation logs): prompt and answer
    lengths, language mix, refusal rate and the distance of the window's mean text embedding from a
    baseline, as CloudWatch metrics with alarms (stacks/components/drift_monitor.py)."""

    schedule: str = Field(default="rate(1 hour)", pattern=_SCHEDULE, description="EventBridge schedule")
    window_hours: int = Field(default=1, ge=1, le=24, description="hours of captured data read per run")
    min_records: int = Field(
        default=20, ge=1, le=100_000, description="fewer records in a window publish no distance or rates"
    )
    distance_threshold: float = Field(
        default=0.25, gt=0, le=2, description="alarm above this cosine distance from the baseline centroid"
    )
    refusal_rate_percent: float = Field(
        default=20, gt=0, le=100, description="alarm above this share of refused or guardrail-blocked answers"
    )


class InvocationLogging(_Strict):
    """Bedrock model invocation logging (one setting per account and region)."""

    enabled: bool = True
    log_retention_days: int = Field(default=90)
    take_over: bool = Field(default=False, description="Replace a configuration someone else set")
    text: bool = True
    image: bool = True
    embedding: bool = False
    drift: DriftMonitoring | None = Field(
        default_factory=DriftMonitoring,
        description="drift job over the logged text invocations (needs text: true; null: none)",
    )

    _retention = field_validator("log_retention_days")(classmethod(lambda cls, days: _known_retention(days)))


class ApplicationInferenceProfile(_Strict):
    """A tagged copy of a model or system inference profile, so spend splits by tenant or campaign."""

    name: Slug
    source: str = Field(description="A model or system inference profile listed under bedrock")
    # AWS::Bedrock::ApplicationInferenceProfile Description pattern (letters, digits, : and ., single
    # spaces, _ or - between them), from the CloudFormation registry schema.
    description: str = Field(default="", max_length=200, pattern=r"^(([0-9a-zA-Z:.][ _-]?)+)?$")
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)


class PromptTemplate(_Strict):
    """A prompt kept as a text file next to the profile; {{variable}} marks an input variable."""

    name: Slug
    file: str = Field(description="Path relative to the profile file")
    model: str = Field(description="A model or inference profile listed under bedrock")
    description: str = Field(default="", max_length=200)
    max_tokens: int = Field(default=1024, ge=1, le=65536)
    temperature: float = Field(default=0.5, ge=0, le=1)
    _text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _read_template(self, info: ValidationInfo) -> PromptTemplate:
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is None:  # validated without a profile file (e.g. in a test): no template text
            return self
        path = Path(base_dir) / self.file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ValueError(located("file", f"{self.file!r} cannot be read (looked for {path})")) from None
        if not text.strip():
            raise ValueError(located("file", f"{self.file!r} is empty"))
        if len(text) > 200_000:
            raise ValueError(
                located("file", f"{self.file!r} is longer than a Bedrock prompt allows (200,000)")
            )
        self._text = text
        return self

    @property
    def text(self) -> str:
        return self._text

    @property
    def variables(self) -> list[str]:
        return sorted(set(re.findall(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}", self._text)))


class BedrockAlarms(_Strict):
    """Per-model alarm thresholds, on 5-minute sums."""

    throttles: int = Field(default=10, ge=1)
    server_errors: int = Field(default=5, ge=1)


class Bedrock(_Strict):
    """The managed-API approach: which models may be called, and how."""

    models: list[str] = Field(default_factory=list, description="Foundation model ids (in-region, on demand)")
    inference_profiles: list[str] = Field(
        default_factory=list, description="System cross-region inference profiles"
    )
    guardrail: Guardrail | None = None
    knowledge_bases: list[KnowledgeBase] = Field(default_factory=list, max_length=10)
    aurora: AuroraVectorStore = Field(
        default_factory=AuroraVectorStore, description="For aurora_pgvector stores"
    )
    invocation_logging: InvocationLogging = Field(default_factory=InvocationLogging)
    application_inference_profiles: list[ApplicationInferenceProfile] = Field(default_factory=list)
    prompts: list[PromptTemplate] = Field(default_factory=list)
    alarms: BedrockAlarms = Field(default_factory=BedrockAlarms)

    @model_validator(mode="after")
    def _unique_names(self) -> Bedrock:
        problems = []
        for field in ("knowledge_bases", "application_inference_profiles", "prompts"):
            names = [item.name for item in getattr(self, field)]
            problems += [
                located(field, f"names {n!r} more than once")
                for n in sorted({n for n in names if names.count(n) > 1})
            ]
        for field in ("models", "inference_profiles"):
            ids = getattr(self, field)
            problems += [
                located(field, f"lists {i!r} more than once")
                for i in sorted({i for i in ids if ids.count(i) > 1})
            ]
        if not self.models and not self.inference_profiles:
            problems.append(located("models", "is empty: list at least one model or inference profile"))
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------------------------------
# Self-managed open models: EC2 model hosts

# Auto Scaling scheduled actions take 5-field cron expressions (minute hour day month weekday).
_CRON5 = r"^\S+( \S+){4}$"


class OffHours(_Strict):
    """Scale the fleet to zero outside working hours (Auto Scaling scheduled actions)."""

    stop: str = Field(pattern=_CRON5, description="cron, e.g. '0 20 * * MON-FRI'")
    start: str = Field(pattern=_CRON5, description="cron, e.g. '0 7 * * MON-FRI'")
    timezone: str = Field(default="UTC", pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$")


class ModelSize(_Strict):
    """How big a served model is: a known architecture (data/models.json, from the model's config.json)
    or its parameter count. With the architecture the KV cache is sized exactly; without it, as a share
    of the weights. The weights' own name or S3 prefix says nothing of their size, hence this field."""

    architecture: str | None = Field(
        default=None, description="a known architecture (data/models.json), e.g. 'llama-3.1-8b'"
    )
    parameters_billions: float | None = Field(
        default=None, gt=0, le=2000, description="default: the architecture's parameter count"
    )
    bytes_per_parameter: float = Field(default=2, gt=0, le=4, description="2 for bf16/fp16, 1 for 8-bit")

    @model_validator(mode="after")
    def _known(self) -> ModelSize:
        if self.architecture is not None and self.architecture not in model_architectures():
            known = ", ".join(sorted(model_architectures()))
            raise ValueError(
                located(
                    "architecture",
                    f"{self.architecture!r} is not a known architecture (known: {known}); give "
                    "parameters_billions instead",
                )
            )
        if self.architecture is None and self.parameters_billions is None:
            raise ValueError(located("parameters_billions", "is required when no architecture is given"))
        return self

    @property
    def spec(self) -> ModelArchitecture | None:
        return model_architectures()[self.architecture] if self.architecture else None

    @property
    def billions(self) -> float:
        if self.parameters_billions is not None:
            return self.parameters_billions
        assert self.spec is not None  # _known
        return self.spec.parameters_billions

    @property
    def size_gb(self) -> float:
        """Weights in GB (10^9 bytes)."""
        return self.billions * self.bytes_per_parameter


class ModelWeights(ModelSize):
    """Weights in the artifacts bucket under models/<name>/ (put them there with `aws s3 sync`)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,64}$")

    @property
    def prefix(self) -> str:
        return f"models/{self.name}/"


_GIB = 2**30 / 1e9  # GB per GiB


def host_startup_budget(host: ModelHost) -> StartupBudget:
    """Launch to a passing /health for this host's model and server (data/models.json "startup")."""
    return startup_budget(host.model.size_gb, neuron=host.server == "vllm-neuron")


def sizing_problems(
    *,
    where: str = "",
    model: ModelSize,
    label: str,
    instance_type: str,
    neuron: bool,
    accelerator_memory_gb: float,
    host_memory_gib: float | None,
    max_model_len: int,
    max_num_seqs: int,
    volume_gb: int | None,
    fitting: dict[str, float],
) -> list[str]:
    """Do the weights, KV cache and compile fit the instance? One message per rule, each located at the
    field to change (rules and sources: data/models.json, "sources").

    - Neuron: host memory >= neuron_host_memory_factor x weights (load and compile pin the weights in
      host memory: aws-neuron-sdk#1222);
    - accelerator memory x utilization >= weights + KV cache, for max_model_len x max_num_seqs tokens on
      Neuron (allocated up front for the compiled batch) and one sequence of max_model_len on GPUs
      (vLLM pages the cache); KV bytes per token = 2 x layers x KV heads x head_dim x 2 (bf16);
    - max_model_len within the architecture's max_position_embeddings;
    - disk (when the profile sets it) >= weights + Neuron compiled artifacts + the AMI's own room.

    `fitting` maps instance types of the same accelerator to their host memory (GiB), to name one that fits.
    """
    rules = sizing_rules()
    problems = []
    weights = model.size_gb
    spec = model.spec
    if neuron and host_memory_gib is not None:
        needed = weights * rules.neuron_host_memory_factor
        if host_memory_gib * _GIB < needed:
            bigger = sorted((gib, name) for name, gib in fitting.items() if gib * _GIB >= needed)
            hint = f"use {bigger[0][1]} ({bigger[0][0]:g} GiB) or larger" if bigger else "no instance fits"
            problems.append(
                located(
                    f"{where}instance_type",
                    f"{instance_type!r} has {host_memory_gib:g} GiB of host memory; Neuron compiles and "
                    f"loads {label} ({weights:.1f} GB of weights) through host memory and needs about "
                    f"{rules.neuron_host_memory_factor:g}x the weights, {needed:.0f} GB (an 8B model was "
                    f"OOM-killed compiling with 32 GiB, aws-neuron-sdk#1222): {hint}",
                )
            )
    usable = accelerator_memory_gb * rules.accelerator_memory_utilization
    if spec is not None and max_model_len > spec.max_position_embeddings:
        problems.append(
            located(
                f"{where}max_model_len",
                f"{max_model_len} is above the {spec.max_position_embeddings} positions of {spec.name}",
            )
        )
    if spec is None:
        needed = weights * rules.unknown_architecture_kv_overhead
        if needed > usable:
            problems.append(
                located(
                    f"{where}model",
                    f"{label} needs about {needed:.0f} GB of accelerator memory (weights x "
                    f"{rules.unknown_architecture_kv_overhead:g} for the KV cache, no architecture given); "
                    f"{instance_type} has {accelerator_memory_gb:g} GB, {usable:.1f} GB usable",
                )
            )
        return problems + _disk_problems(where, weights, neuron, volume_gb)
    per_token_gb = spec.kv_bytes_per_token(rules.kv_cache_bytes_per_value) / 1e9
    sequences = max_num_seqs if neuron else 1
    kv = per_token_gb * max_model_len * sequences
    if weights > usable:
        problems.append(
            located(
                f"{where}model",
                f"{label} has {weights:.1f} GB of weights; {instance_type} has "
                f"{accelerator_memory_gb:g} GB of accelerator memory, {usable:.1f} GB usable: use a larger "
                "instance or 8-bit weights",
            )
        )
    elif weights + kv > usable:
        tokens = int((usable - weights) / per_token_gb / sequences)
        batch = f" x max_num_seqs {max_num_seqs}" if neuron else ""
        per = " per sequence" if neuron else ""
        problems.append(
            located(
                f"{where}max_model_len",
                f"{max_model_len}{batch} needs {kv:.1f} GB of KV cache ({per_token_gb * 1e6:.0f} kB per "
                f"token for {spec.name}) on top of {weights:.1f} GB of weights; {instance_type} has "
                f"{usable:.1f} GB usable ({accelerator_memory_gb:g} GB x "
                f"{rules.accelerator_memory_utilization:g}): at most {tokens} tokens fit{per}",
            )
        )
    return problems + _disk_problems(where, weights, neuron, volume_gb)


def _disk_problems(where: str, weights: float, neuron: bool, volume_gb: int | None) -> list[str]:
    if volume_gb is None:
        return []
    rules = sizing_rules()
    compiled = weights * rules.neuron_compiled_copies_of_weights if neuron else 0
    needed = weights + compiled + rules.os_reserve_gb
    if volume_gb >= needed:
        return []
    parts = f"{weights:.0f} GB of weights" + (f", {compiled:.0f} GB of compiled artifacts" if neuron else "")
    return [
        located(
            f"{where}volume_gb",
            f"{volume_gb} is too small: {parts} and {rules.os_reserve_gb:g} GB for the AMI need at least "
            f"{math.ceil(needed)} GB",
        )
    ]


class ModelHost(_Strict):
    """An Auto Scaling group of identical hosts serving one model behind an internal load balancer."""

    name: Slug
    instance_type: str
    server: Literal["vllm-gpu", "vllm-neuron"]
    model: ModelWeights
    min_instances: int = Field(default=1, ge=0, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    requests_per_target_per_minute: int = Field(
        default=60, ge=1, description="target tracking on ALB requests"
    )
    max_model_len: int = Field(default=8192, ge=256, le=262_144)
    max_num_seqs: int = Field(
        default=8, ge=1, le=256, description="sequences served at once (on Neuron, the compiled batch size)"
    )
    volume_gb: int = Field(default=200, ge=50, le=16_000)
    off_hours: OffHours | None = None
    # One of the two pins the AMI: a fleet is replaced only when the profile (or the user's own
    # parameter) changes, never because AWS published a new Deep Learning AMI (Hosting._hosts).
    ami_id: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="the AMI of the hosts, in the profile's region (or ami_ssm_parameter)",
    )
    ami_ssm_parameter: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_./-]{1,1010}$",
        description="an SSM parameter of your own holding the AMI id (or ami_id); not a public "
        "/aws/service/ 'latest' parameter, see docs/profiles/self-hosted.md",
    )

    @model_validator(mode="after")
    def _sizes(self) -> ModelHost:
        problems = []
        if self.min_instances > self.max_instances:
            problems.append(
                located(
                    "min_instances", f"{self.min_instances} is above max_instances ({self.max_instances})"
                )
            )
        if self.off_hours is not None and self.min_instances < 1:
            problems.append(
                located(
                    "min_instances",
                    "is 0 with off_hours: the fleet needs at least one host in "
                    "working hours, since request-count scaling cannot start from zero hosts",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Network(_Strict):
    """A new VPC (private subnets, endpoints, flow logs) or an existing one by id (no lookup)."""

    cidr: str = Field(default="10.40.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    max_azs: int = Field(default=2, ge=2, le=4)
    nat_gateways: int = Field(default=0, ge=0, le=4, description="0: no internet egress at all")
    existing_vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    existing_private_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list
    )
    existing_availability_zones: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _existing(self) -> Network:
        if self.existing_vpc_id and (
            len(self.existing_private_subnet_ids) < 2
            or len(self.existing_private_subnet_ids) != len(self.existing_availability_zones)
        ):
            raise ValueError(
                located(
                    "existing_private_subnet_ids",
                    "needs one private subnet per availability zone "
                    "(at least two) and existing_availability_zones in the same order",
                )
            )
        return self


def _ami_problems(host: ModelHost, where: str, accelerator: str) -> list[str]:
    """The AMI must be pinned. CloudFormation re-reads an SSM parameter on every deploy, and the public
    Deep Learning AMI parameters (/aws/service/deeplearning/.../latest/ami-id) follow AWS's releases:
    an unrelated deploy after a new DLAMI would replace every host (a rolling update and, on Neuron,
    a recompile). On Inf2, releases after the last Neuron SDK that serves LLMs there break serving."""
    if host.ami_id and host.ami_ssm_parameter:
        return [located(f"{where}.ami_id", "and ami_ssm_parameter are both set: name the AMI once")]
    if host.ami_ssm_parameter and host.ami_ssm_parameter.startswith("/aws/service/"):
        return [
            located(
                f"{where}.ami_ssm_parameter",
                f"{host.ami_ssm_parameter!r} is a public parameter that follows AWS's latest AMI: every "
                "deploy after a new release would replace the fleet; copy its current value into "
                "ami_id or into an SSM parameter of your own",
            )
        ]
    if host.ami_id or host.ami_ssm_parameter:
        return []
    if accelerator == "inferentia2":
        pinned = model_servers().neuron_last_inf2_release
        reason = (
            f"Neuron SDK releases after {pinned} no longer serve LLMs on Inf2, and the public Neuron "
            f"DLAMI parameter only follows the latest release; use a Neuron {pinned} DLAMI"
        )
    else:
        reason = (
            "the public GPU Deep Learning AMI parameter follows AWS's latest release, so a deploy after "
            "a new release would replace the fleet"
        )
    return [
        located(
            f"{where}.ami_ssm_parameter",
            f"is required (or ami_id): {reason}; put the AMI id in ami_id or in an SSM parameter of "
            "your own and name it here",
        )
    ]


class Hosting(_Strict):
    """The self-managed approach: open models on EC2 Inferentia2 or GPU hosts."""

    network: Network = Field(default_factory=Network)
    hosts: list[ModelHost] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _hosts(self) -> Hosting:
        problems = []
        names = [h.name for h in self.hosts]
        problems += [
            located("hosts", f"names {n!r} more than once")
            for n in sorted({n for n in names if names.count(n) > 1})
        ]
        for index, host in enumerate(self.hosts):
            where = f"hosts[{index}]"
            spec = accelerator_instances().get(host.instance_type)
            if spec is None:
                known = ", ".join(sorted(accelerator_instances()))
                problems.append(
                    located(
                        f"{where}.instance_type",
                        f"{host.instance_type!r} is not a known inf2, g5 or "
                        f"g6 instance type (known: {known})",
                    )
                )
                continue
            expected = "vllm-neuron" if spec.accelerator == "inferentia2" else "vllm-gpu"
            if host.server != expected:
                problems.append(
                    located(
                        f"{where}.server",
                        f"{host.server!r} does not run on {host.instance_type} "
                        f"({spec.accelerator}); use {expected}",
                    )
                )
            problems += _ami_problems(host, where, spec.accelerator)
            budget = host_startup_budget(host)
            if budget.minutes > budget.limit_minutes:
                problems.append(
                    located(
                        f"{where}.model",
                        f"{host.model.name} needs about {budget.minutes} minutes from launch to a healthy "
                        f"server {budget.describe()}, above the {budget.limit_minutes} minutes "
                        "CloudFormation waits for a host in a rolling update (UpdatePolicy PauseTime): use "
                        "a smaller or quantized model (bytes_per_parameter)",
                    )
                )
            fitting = {
                n: i.memory_gib
                for n, i in accelerator_instances().items()
                if i.accelerator == spec.accelerator
            }
            problems += sizing_problems(
                where=f"{where}.",
                model=host.model,
                label=host.model.name,
                instance_type=host.instance_type,
                neuron=spec.accelerator == "inferentia2",
                accelerator_memory_gb=spec.accelerator_memory_gb,
                host_memory_gib=spec.memory_gib,
                max_model_len=host.max_model_len,
                max_num_seqs=host.max_num_seqs,
                volume_gb=host.volume_gb,
                fitting=fitting,
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------------------------------
# Training and tuning: SageMaker training pipelines, the model registry, inference endpoints, Bedrock
# model customization


# `<profile>-<name>` prefixes job, model package group and custom model names, which SageMaker and
# Bedrock limit to 63 characters including the run suffix the pipelines append.
NAME_PREFIX_LIMIT = 50


class TrainingMetric(_Strict):
    """The metric the evaluation step reads from the training job and compares with `threshold`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_:.-]{1,255}$", description="e.g. 'eval:loss'")
    regex: str = Field(
        min_length=1, max_length=500, description="SageMaker metric definition: captures the value in the log"
    )
    threshold: float
    goal: Literal["minimize", "maximize"] = "minimize"

    @field_validator("regex")
    @classmethod
    def _one_group(cls, regex: str) -> str:
        try:
            groups = re.compile(regex).groups
        except re.error as error:
            raise ValueError(f"is not a regular expression ({error})") from None
        if groups != 1:
            raise ValueError("needs exactly one capturing group (the metric value)")
        return regex


class SpotTraining(_Strict):
    """Managed spot training: cheaper, interruptible; the job checkpoints to the artifacts bucket."""

    max_wait_hours: float = Field(gt=0, le=672, description="wait for spot capacity plus run time")


class TrainingPipeline(_Strict):
    """A Step Functions pipeline: train (SageMaker) -> evaluate -> register in the model registry."""

    name: Slug
    image: Literal["pytorch-training"] = Field(
        default="pytorch-training", description="Deep Learning Container (stacks/data/sagemaker.json)"
    )
    source_key: str = Field(
        pattern=r"^code/[A-Za-z0-9._/-]+\.tar\.gz$",
        description="training code in the artifacts bucket (sourcedir.tar.gz with the entry point)",
    )
    entry_point: str = Field(pattern=r"^[A-Za-z0-9._/-]+\.py$")
    data_prefix: str = Field(
        pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/$", description="the 'train' channel in the data bucket"
    )
    instance_type: str
    instance_count: int = Field(default=1, ge=1, le=16)
    volume_gb: int = Field(default=100, ge=30, le=16_384)
    max_runtime_hours: float = Field(default=24, gt=0, le=672)
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,256}$")], str] = Field(
        default_factory=dict, max_length=100
    )
    spot: SpotTraining | None = None
    network_isolation: bool = Field(default=True, description="no network access from the training container")
    metric: TrainingMetric
    schedule: str | None = Field(default=None, pattern=_SCHEDULE, description="periodic retraining")
    # A list since one model can be served by several endpoints (custom-model: real-time and async);
    # a single name, the earlier form, is still read as a list of one.
    deploy_to: Annotated[
        tuple[Slug, ...],
        BeforeValidator(lambda value: [value] if isinstance(value, str) else value),
        WithJsonSchema(
            {
                "anyOf": [_SLUG_SCHEMA, {"type": "array", "items": _SLUG_SCHEMA, "uniqueItems": True}],
                "description": "endpoints of the inference section to roll on approval (a name or a list)",
            }
        ),
    ] = ()

    @model_validator(mode="after")
    def _checks(self) -> TrainingPipeline:
        problems = []
        if self.instance_type not in training_instances():
            known = ", ".join(sorted(training_instances()))
            problems.append(
                located(
                    "instance_type", f"{self.instance_type!r} is not a known training type (known: {known})"
                )
            )
        repeated = sorted({e for e in self.deploy_to if self.deploy_to.count(e) > 1})
        if repeated:
            problems.append(located("deploy_to", f"names {', '.join(map(repr, repeated))} more than once"))
        if self.spot is not None and self.spot.max_wait_hours < self.max_runtime_hours:
            problems.append(
                located(
                    "spot.max_wait_hours",
                    f"{self.spot.max_wait_hours:g} is below max_runtime_hours ({self.max_runtime_hours:g})",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class BedrockCustomization(_Strict):
    """A Bedrock model customization job run by a state machine, then made callable (or not)."""

    name: Slug
    base_model: str = Field(description="customizable base model id, e.g. amazon.nova-micro-v1:0:128k")
    kind: Literal["FINE_TUNING", "CONTINUED_PRE_TRAINING"] = "FINE_TUNING"
    data_prefix: str = Field(
        pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/$",
        description="data bucket prefix holding train.jsonl (and validation.jsonl if used)",
    )
    validation_data: bool = Field(default=False, description="also pass <prefix>validation.jsonl")
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], str] = Field(
        default_factory=dict, max_length=20
    )
    serving: Literal["none", "on_demand", "provisioned"] = Field(
        default="none",
        description="provisioned throughput is a fixed hourly cost for as long as it exists",
    )
    model_units: int = Field(default=1, ge=1, le=10, description="provisioned throughput model units")
    schedule: str | None = Field(default=None, pattern=_SCHEDULE)


class AsyncInference(_Strict):
    """Asynchronous inference: requests queue, results land in the artifacts bucket (long jobs)."""

    max_concurrent_invocations_per_instance: int = Field(default=1, ge=1, le=1000)


class InferenceEndpoint(_Strict):
    """A SageMaker endpoint serving a model from the artifacts bucket with the matching container."""

    name: Slug
    instance_type: str
    container: Literal["lmi", "tgi", "lmi-neuron"] = Field(
        description="LMI (DJL Serving + vLLM) or TGI on GPU; LMI with Neuron on Inferentia2"
    )
    model_prefix: str = Field(
        pattern=r"^models/[A-Za-z0-9._-]+/$", description="uncompressed weights in the artifacts bucket"
    )
    min_instances: int = Field(default=1, ge=0, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    invocations_per_instance: int = Field(
        default=10, ge=1, description="target tracking: invocations per instance per minute"
    )
    max_model_len: int = Field(default=4096, ge=128, le=262_144)
    max_num_seqs: int = Field(
        default=8,
        ge=1,
        le=256,
        description="sequences at once (LMI max_rolling_batch_size; on Neuron the compiled batch size)",
    )
    model: ModelSize | None = Field(
        default=None,
        description="the size of the model under model_prefix: with it the validator checks host memory, "
        "accelerator memory and max_model_len against the instance (the built-in profiles give it)",
    )
    data_capture_percentage: int = Field(
        default=20,
        ge=0,
        le=100,
        description="share of requests captured to S3 (0: off); default 0 on inference-component endpoints",
    )
    # SageMaker Model Monitor "is no longer open to new customers" (SageMaker developer guide, "Data
    # capture", https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html, and
    # "Amazon SageMaker Model Monitor availability change"): an explicit opt-in, off by default. Drift is
    # measured by the project's own drift monitor (stacks/components/drift_monitor.py) instead.
    monitoring_schedule: str | None = Field(
        default=None,
        pattern=r"^cron\(\S+( \S+){5}\)$",
        description=(
            "Model Monitor data-quality schedule, e.g. cron(0 * ? * * *); null (default): none. Only for "
            "accounts that already use SageMaker Model Monitor: it is no longer open to new customers"
        ),
    )
    async_inference: AsyncInference | None = None
    inference_components: bool = Field(
        default=False, description="host the model as an inference component (allows scaling to zero)"
    )
    off_hours: OffHours | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_capture_by_default_on_components(cls, data: Any) -> Any:
        """Inference-component endpoints get no data capture unless asked (and asking is refused below)."""
        components = isinstance(data, dict) and data.get("inference_components")
        if components and "data_capture_percentage" not in data:
            return {**data, "data_capture_percentage": 0}
        return data

    @model_validator(mode="after")
    def _checks(self) -> InferenceEndpoint:
        problems = []
        spec = inference_instances().get(self.instance_type)
        if spec is None:
            known = ", ".join(sorted(inference_instances()))
            problems.append(
                located(
                    "instance_type",
                    f"{self.instance_type!r} is not a known ml.g5, ml.g6 or ml.inf2 endpoint type "
                    f"(known: {known})",
                )
            )
        else:
            neuron_container = self.container == "lmi-neuron"
            if (spec.accelerator == "neuron") != neuron_container:
                wanted = "lmi-neuron" if spec.accelerator == "neuron" else "lmi or tgi"
                problems.append(
                    located(
                        "container",
                        f"{self.container!r} does not run on {self.instance_type} ({spec.accelerator}); "
                        f"use {wanted}",
                    )
                )
            if self.model is not None:
                fitting = {
                    n: i.memory_gib
                    for n, i in inference_instances().items()
                    if i.accelerator == spec.accelerator and i.memory_gib is not None
                }
                problems += sizing_problems(
                    model=self.model,
                    label=f"the model under {self.model_prefix}",
                    instance_type=self.instance_type,
                    neuron=spec.accelerator == "neuron",
                    accelerator_memory_gb=spec.accelerator_memory_gb,
                    host_memory_gib=spec.memory_gib,
                    max_model_len=self.max_model_len,
                    max_num_seqs=self.max_num_seqs,
                    volume_gb=None,  # SageMaker sizes the ML storage volume of the instance type
                    fitting=fitting,
                )
        if self.min_instances > self.max_instances:
            problems.append(
                located(
                    "min_instances", f"{self.min_instances} is above max_instances ({self.max_instances})"
                )
            )
        scales_to_zero = self.inference_components or self.async_inference is not None
        if self.min_instances == 0 and not scales_to_zero:
            problems.append(
                located(
                    "min_instances",
                    "is 0, which only inference components or asynchronous endpoints allow "
                    "(set inference_components: true or async_inference)",
                )
            )
        if self.off_hours is not None and not scales_to_zero:
            problems.append(
                located(
                    "off_hours",
                    "needs an endpoint that can scale to zero: set inference_components: true "
                    "(or async_inference); a plain endpoint keeps at least one instance",
                )
            )
        if self.inference_components and self.async_inference is not None:
            problems.append(
                located("async_inference", "cannot be combined with inference_components on one endpoint")
            )
        problems += self._monitoring_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _monitoring_problems(self) -> list[str]:
        """What SageMaker does not accept (or AWS does not document) for capture and Model Monitor.

        - Model Monitor "currently supports only endpoints that host a single model" (SageMaker developer
          guide, "Data and model quality monitoring with Amazon SageMaker Model Monitor",
          https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor.html), and its EndpointInput names
          an endpoint only, never an inference component (AWS::SageMaker::DataQualityJobDefinition
          EndpointInput): an endpoint of inference components hosts models per component.
        - Data capture is documented per endpoint and production variant (captures land under
          `{endpoint-name}/{variant-name}/yyyy/mm/dd/hh/`, "Capture data from real-time endpoint",
          https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html); no AWS
          page documents data capture for endpoints that host inference components, so it is refused
          here rather than discovered at deploy time.
        - A Model Monitor schedule reads captured data: it needs data capture on.
        """
        problems = []
        components = "is not supported with inference_components: true"
        if self.inference_components and self.data_capture_percentage > 0:
            problems.append(
                located(
                    "data_capture_percentage",
                    f"{self.data_capture_percentage} {components}: SageMaker documents data capture per "
                    "endpoint and production variant, not per inference component (model-monitor-data-"
                    "capture-endpoint.html); set 0, or host the model on a plain endpoint",
                )
            )
        if self.inference_components and self.monitoring_schedule is not None:
            problems.append(
                located(
                    "monitoring_schedule",
                    f"{self.monitoring_schedule!r} {components}: Model Monitor supports only endpoints that "
                    "host a single model (model-monitor.html); set null",
                )
            )
        elif self.monitoring_schedule is not None and self.data_capture_percentage == 0:
            problems.append(
                located(
                    "monitoring_schedule",
                    f"{self.monitoring_schedule!r} needs data capture (data_capture_percentage above 0): "
                    "Model Monitor reads the captured requests",
                )
            )
        return problems


class Inference(_Strict):
    """SageMaker real-time (or asynchronous) endpoints."""

    endpoints: list[InferenceEndpoint] = Field(min_length=1, max_length=10)
    drift: DriftMonitoring | None = Field(
        default_factory=DriftMonitoring,
        description="drift job over the captured data of endpoints with data capture (null: none)",
    )

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, endpoints: list[InferenceEndpoint]) -> list[InferenceEndpoint]:
        names = [e.name for e in endpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names {', '.join(duplicates)} more than once")
        return endpoints


class Training(_Strict):
    """The training-and-tuning approach: SageMaker training pipelines and Bedrock customization."""

    pipelines: list[TrainingPipeline] = Field(default_factory=list, max_length=10)
    customizations: list[BedrockCustomization] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _some(self) -> Training:
        if not self.pipelines and not self.customizations:
            raise ValueError("needs at least one of pipelines or customizations")
        names = [p.name for p in self.pipelines] + [c.name for c in self.customizations]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names {', '.join(duplicates)} more than once (pipelines and customizations)")
        return self


def training_problems(training: Training, inference: Inference | None, region: str | None) -> list[str]:
    """Cross-section checks: images and base models offered in the region, deploy_to endpoints exist."""
    problems = []
    endpoints = {e.name for e in inference.endpoints} if inference else set()
    by_name = {e.name: e for e in inference.endpoints} if inference else {}
    for index, pipeline in enumerate(training.pipelines):
        where = f"pipelines[{index}]"
        if region and region not in image_regions(pipeline.image):
            problems.append(located(f"{where}.image", f"{pipeline.image!r} is not published in {region}"))
        for position, name in enumerate(pipeline.deploy_to):
            field = f"{where}.deploy_to[{position}]"
            target = by_name.get(name)
            if target is None:
                known = ", ".join(sorted(endpoints)) or "none: add an inference section"
                problems.append(located(field, f"{name!r} is not an inference endpoint ({known})"))
            elif target.inference_components:
                # Asynchronous endpoints are rolled like real-time ones (one variant holding the model,
                # UpdateEndpoint). docs/profiles/custom-model.md, "Rollouts", says why not components.
                problems.append(
                    located(
                        field,
                        f"{name!r} is an inference-component endpoint; approved models are rolled "
                        "out to real-time and asynchronous endpoints only: an inference-component endpoint's "
                        "configuration holds no model (UpdateEndpoint cannot change it), the model is a "
                        "property of the AWS::SageMaker::InferenceComponent that CloudFormation owns, so a "
                        "later deploy would put the stack's model back",
                    )
                )
        containers = sorted({by_name[n].container for n in pipeline.deploy_to if n in by_name})
        if len(containers) > 1:
            # A model version registers one serving image (the package's container), which every
            # endpoint it is rolled to runs.
            problems.append(
                located(
                    f"{where}.deploy_to",
                    f"endpoints with different containers ({', '.join(containers)}); each approved version "
                    "registers one serving image, so the endpoints of one pipeline share a container",
                )
            )
    # One owner per endpoint: the deployer rolls an endpoint to the approved versions of one group.
    owners: dict[str, list[str]] = {}
    for pipeline in training.pipelines:
        for name in pipeline.deploy_to:
            owners.setdefault(name, []).append(pipeline.name)
    for name, pipelines in sorted(owners.items()):
        if len(pipelines) > 1:
            problems.append(
                located(
                    "pipelines",
                    f"endpoint {name!r} is a deploy_to target of {', '.join(pipelines)}; an endpoint "
                    "serves the approved versions of one pipeline",
                )
            )
    offered = customization_models(region) if region else {}
    on_demand = sagemaker_data()["on_demand_deployment"]
    for index, job in enumerate(training.customizations):
        where = f"customizations[{index}]"
        if job.base_model not in offered:
            known = ", ".join(sorted(offered)) or "none"
            problems.append(
                located(
                    f"{where}.base_model",
                    f"{job.base_model!r} cannot be customized in {region} (can: {known})",
                )
            )
        elif job.kind not in offered[job.base_model]:
            problems.append(
                located(
                    f"{where}.kind",
                    f"{job.kind} is not offered for {job.base_model} "
                    f"(offered: {', '.join(offered[job.base_model])})",
                )
            )
        if job.serving == "on_demand" and (
            region not in on_demand["regions"] or job.base_model not in on_demand["base_models"]
        ):
            problems.append(
                located(
                    f"{where}.serving",
                    "on_demand deployment of custom models is offered for "
                    f"{', '.join(on_demand['base_models'])} in {', '.join(on_demand['regions'])}; "
                    "use provisioned or none",
                )
            )
    return problems


def inference_problems(inference: Inference, region: str | None) -> list[str]:
    problems = []
    for index, endpoint in enumerate(inference.endpoints):
        if region and region not in image_regions(endpoint.container):
            problems.append(
                located(
                    f"endpoints[{index}].container",
                    f"the {endpoint.container} image is not published in {region} "
                    f"(regions: {', '.join(image_regions(endpoint.container))})",
                )
            )
        monitor_regions = sagemaker_data()["model_monitor"]["accounts"]
        if region and endpoint.monitoring_schedule is not None and region not in monitor_regions:
            problems.append(
                located(
                    f"endpoints[{index}].monitoring_schedule",
                    f"the Model Monitor analyzer image is not published in {region} (regions: "
                    f"{', '.join(sorted(monitor_regions))}); set null",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------------
# Lambda orchestration: the model gateway


class GatewayTarget(_Strict):
    """One target of an alias: exactly one of `bedrock` (a model or inference profile listed under
    bedrock), `application_inference_profile` (a campaign profile of
    bedrock.application_inference_profiles), `sagemaker` (an endpoint name) or `self_hosted` (a host
    of the hosting section). Bedrock targets are invoked through an application inference profile
    (created per alias and model, or the named campaign one), so their spend carries the
    cost-allocation tag (docs/cost.md)."""

    bedrock: str | None = None
    application_inference_profile: str | None = Field(
        default=None, description="A name from bedrock.application_inference_profiles (a campaign profile)"
    )
    sagemaker: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    self_hosted: str | None = None
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Output tokens sent when a request sets no max_tokens, and the cap of a larger one "
        "(default: gateway.max_output_tokens); keep a generation inside the deadline (docs/gateway.md)",
    )
    system_prompt: Literal["keep", "merge"] = Field(
        default="keep",
        description="merge: system messages are prepended to the first user turn, for models whose chat "
        "template refuses a system role (Mistral 7B Instruct v0.1/v0.2)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> GatewayTarget:
        kinds = ("bedrock", "application_inference_profile", "sagemaker", "self_hosted")
        chosen = [name for name in kinds if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                "names exactly one of bedrock, application_inference_profile, sagemaker or self_hosted"
            )
        return self


class GatewayTenant(_Strict):
    """An API key and usage plan: steady rate, burst and monthly request quota."""

    name: Slug
    rate_per_second: float = Field(default=5, gt=0, le=10_000)
    burst: int = Field(default=10, ge=1, le=5_000)
    monthly_quota: int | None = Field(default=None, ge=1)


class GatewayCache(_Strict):
    enabled: bool = True
    ttl_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)


class GatewayAlarms(_Strict):
    server_error_percent: float = Field(default=5, gt=0, le=100, description="5xx share over 5 minutes")
    latency_p90_ms: int = Field(default=15_000, ge=100)
    fallback_percent: float = Field(
        default=20,
        gt=0,
        le=100,
        description="share of an alias's requests answered by a later target (its first failed), 15 minutes",
    )


# API Gateway REST integrations time out after 29 s by default ("Quotas for configuring and running a
# REST API in API Gateway", maximum integration timeout:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html).
# The gateway function's timeout is its deadline + GATEWAY_TIMEOUT_HEADROOM_SECONDS (the deadline
# fires first and answers a clean 504), and stays GATEWAY_API_MARGIN_SECONDS under API Gateway's,
# so API Gateway never gives up on a function that is still running.
API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29
GATEWAY_TIMEOUT_HEADROOM_SECONDS = 3
GATEWAY_API_MARGIN_SECONDS = 1
GATEWAY_MAX_DEADLINE_SECONDS = (
    API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - GATEWAY_API_MARGIN_SECONDS - GATEWAY_TIMEOUT_HEADROOM_SECONDS
)


# Images of url responses (data bucket, gateway-images/) expire after this many days by default: a
# pre-signed URL is valid for an hour at most (lambdas/gateway/images.py MAX_URL_SECONDS), so a few
# days leave time to download and keep nothing for long.
GATEWAY_IMAGE_RETENTION_DAYS = 3


def gateway_function_timeout_seconds(deadline_seconds: float) -> int:
    """The gateway Lambda's timeout (whole seconds) for a deadline."""
    return math.ceil(deadline_seconds) + GATEWAY_TIMEOUT_HEADROOM_SECONDS


class Gateway(_Strict):
    """The OpenAI-compatible model gateway (API Gateway REST + Lambda)."""

    aliases: dict[Slug, Annotated[list[GatewayTarget], Field(min_length=1, max_length=5)]] = Field(
        min_length=1
    )
    embeddings: dict[Slug, str] = Field(default_factory=dict, description="alias -> Bedrock embedding model")
    images: dict[Slug, str] = Field(
        default_factory=dict,
        description="alias -> Bedrock image model listed under bedrock.models (POST /v1/images/generations; "
        "docs/gateway.md, Images)",
    )
    image_retention_days: int = Field(
        default=GATEWAY_IMAGE_RETENTION_DAYS,
        ge=1,
        le=365,
        description="Days the images of url responses stay in the data bucket (gateway-images/, a "
        "lifecycle rule) before they expire",
    )
    knowledge_bases: list[str] = Field(default_factory=list, description="knowledge bases requests may name")
    auth: Literal["api_key", "iam"] = "api_key"
    tenants: list[GatewayTenant] = Field(default_factory=list)
    cache: GatewayCache = Field(default_factory=GatewayCache)
    deadline_seconds: float = Field(
        default=25,
        ge=1,
        description="Time a request may take from entry to answer; the function times out "
        f"{GATEWAY_TIMEOUT_HEADROOM_SECONDS} s later, under API Gateway's 29 s",
    )
    max_body_kb: int = Field(default=256, ge=1, le=6144)
    max_output_tokens: int = Field(default=4096, ge=1)
    log_prompts: bool = Field(default=False, description="Log request bodies (prompts) in CloudWatch Logs")
    # API Gateway writes access logs with one CloudWatch Logs role per account and region
    # (AWS::ApiGateway::Account; API Gateway developer guide, "Permissions for CloudWatch logging",
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html). Like Bedrock
    # invocation logging, one profile per account and region owns it; `genai-stack doctor` checks it.
    api_gateway_account_role: Literal["create", "existing"] = Field(
        default="create",
        description="API Gateway's CloudWatch Logs role, one setting per account and region: 'create' sets "
        "it to a role of this profile (kept when the stack is deleted); 'existing' relies on the one "
        "already set (every other profile in the same account and region)",
    )
    alarms: GatewayAlarms = Field(default_factory=GatewayAlarms)
    # Protection when deployed (stacks/components/gateway_protection.py, docs/gateway.md "Protection").
    endpoint: Literal["public", "private"] = Field(
        default="public",
        description="'public': a REGIONAL API behind an AWS WAF web ACL (AWS managed common and "
        "known-bad-inputs rules, a rate-based rule); 'private': a PRIVATE API reachable only through the "
        "execute-api interface VPC endpoints in private_vpc_endpoint_ids",
    )
    # Existing endpoints of the callers' network, not one created here: a private API is called from the
    # consumers' VPCs, whose network team owns the execute-api endpoint, and an endpoint with private DNS
    # cuts its VPC off from every public API's default hostname (API Gateway guide, "Private REST APIs in
    # API Gateway", best practices: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-apis.html).
    private_vpc_endpoint_ids: list[VpcEndpointId] = Field(
        default_factory=list,
        max_length=20,
        description="endpoint: private: the execute-api interface VPC endpoints (vpce-...) the callers "
        "use; the API is associated with each and its resource policy denies every other path",
    )
    waf_rate_limit: int = Field(
        default=3000,
        ge=10,
        le=2_000_000_000,
        description="endpoint: public: requests from one IP address in 5 minutes above which the web ACL "
        "blocks that address (AWS WAF rate-based rule; minimum 10)",
    )

    @property
    def uses_self_hosted(self) -> bool:
        return any(t.self_hosted for targets in self.aliases.values() for t in targets)

    @property
    def vpc_endpoints(self) -> tuple[str, ...]:
        """The interface endpoints the gateway needs when it runs in the hosts' VPC (no NAT needed)."""
        if not self.uses_self_hosted:
            return ()
        targets = [t for ts in self.aliases.values() for t in ts]
        wanted = {
            "BedrockRuntime": True,  # ApplyGuardrail, Bedrock targets, embeddings
            "BedrockAgentRuntime": bool(self.knowledge_bases),
            "SageMakerRuntime": any(t.sagemaker for t in targets),
        }
        return tuple(name for name, used in wanted.items() if used)

    @field_validator("deadline_seconds")
    @classmethod
    def _under_api_gateway(cls, seconds: float) -> float:
        timeout = gateway_function_timeout_seconds(seconds)
        if timeout > API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - GATEWAY_API_MARGIN_SECONDS:
            raise ValueError(
                f"the function would time out after {timeout} s "
                f"(deadline + {GATEWAY_TIMEOUT_HEADROOM_SECONDS} s), "
                f"not under API Gateway's {API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS} s integration timeout "
                f"with {GATEWAY_API_MARGIN_SECONDS} s to spare; allowed: 1 to {GATEWAY_MAX_DEADLINE_SECONDS}"
            )
        return seconds

    @model_validator(mode="after")
    def _target_max_tokens(self) -> Gateway:
        problems = [
            located(
                f"aliases.{alias}[{index}].max_tokens",
                f"{t.max_tokens} is above max_output_tokens ({self.max_output_tokens}); "
                f"allowed: 1 to {self.max_output_tokens}",
            )
            for alias, targets in self.aliases.items()
            for index, t in enumerate(targets)
            if t.max_tokens is not None and t.max_tokens > self.max_output_tokens
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _tenants(self) -> Gateway:
        if self.auth == "api_key" and not self.tenants:
            raise ValueError(
                located("tenants", "is empty: with auth api_key every caller needs a tenant (API key)")
            )
        names = [t.name for t in self.tenants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(located("tenants", f"names {', '.join(duplicates)} more than once"))
        return self

    @model_validator(mode="after")
    def _endpoint(self) -> Gateway:
        ids = self.private_vpc_endpoint_ids
        if self.endpoint == "private" and not ids:
            raise ValueError(
                located(
                    "private_vpc_endpoint_ids",
                    "is empty: endpoint private needs the execute-api interface VPC endpoint(s) the "
                    "callers use (vpce-...), or set endpoint: public",
                )
            )
        if self.endpoint == "public" and ids:
            raise ValueError(
                located(
                    "private_vpc_endpoint_ids",
                    f"{ids} is set with endpoint: public, where nothing uses it; allowed: endpoint: private",
                )
            )
        if self.endpoint == "private" and "waf_rate_limit" in self.model_fields_set:
            raise ValueError(
                located(
                    "waf_rate_limit",
                    "is set with endpoint: private, which has no web ACL; allowed only with endpoint: public",
                )
            )
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(
                located("private_vpc_endpoint_ids", f"names {', '.join(duplicates)} more than once")
            )
        return self


def gateway_problems(gateway: Gateway, bedrock: Bedrock | None, hosting: Hosting | None = None) -> list[str]:
    """Every Bedrock model a gateway alias uses must be allowed by the profile's bedrock section."""
    allowed = set(bedrock.models) | set(bedrock.inference_profiles) if bedrock else set()
    catalog = bedrock_catalog()
    problems = []
    if bedrock is None:
        return ["needs the bedrock section: the gateway's model access and guardrail come from it"]
    hosts = {h.name for h in hosting.hosts} if hosting else set()
    for alias, targets in gateway.aliases.items():
        for index, target in enumerate(targets):
            if target.self_hosted and target.self_hosted not in hosts:
                known = ", ".join(sorted(hosts)) or "none: add a hosting section"
                problems.append(
                    located(
                        f"aliases.{alias}[{index}].self_hosted",
                        f"{target.self_hosted!r} is not a host of the hosting section (hosts: {known})",
                    )
                )
            if target.bedrock and target.bedrock not in allowed:
                problems.append(
                    located(
                        f"aliases.{alias}[{index}].bedrock",
                        f"{target.bedrock!r} is not listed under "
                        "bedrock.models or bedrock.inference_profiles",
                    )
                )
            elif target.bedrock and catalog.model_of(target.bedrock).modality != "text":
                problems.append(
                    located(f"aliases.{alias}[{index}].bedrock", f"{target.bedrock!r} is not a text model")
                )
            if target.application_inference_profile:
                where = f"aliases.{alias}[{index}].application_inference_profile"
                campaigns = {a.name: a for a in bedrock.application_inference_profiles}
                app = campaigns.get(target.application_inference_profile)
                if app is None:
                    known = ", ".join(sorted(campaigns)) or "none: add bedrock.application_inference_profiles"
                    problems.append(
                        located(
                            where,
                            f"{target.application_inference_profile!r} is not a name of "
                            f"bedrock.application_inference_profiles (allowed: {known})",
                        )
                    )
                elif app.source in allowed and catalog.model_of(app.source).modality != "text":
                    problems.append(located(where, f"{app.name!r} copies {app.source!r}, not a text model"))
    for alias, model in gateway.embeddings.items():
        known = bedrock_catalog().models.get(model)
        if model not in allowed or known is None or known.modality != "embeddings":
            problems.append(
                located(
                    f"embeddings.{alias}", f"{model!r} is not an embeddings model listed under bedrock.models"
                )
            )
    from genai_stack.lambdas.gateway.images import IMAGE_MODELS  # the request bodies the gateway can build

    image_models = sorted(
        m for m in bedrock.models if m in catalog.models and catalog.models[m].modality == "image"
    )
    guardrail = bedrock.guardrail if bedrock else None
    if gateway.images and guardrail and not any("IMAGE" in f.modalities for f in guardrail.content_filters):
        # ApplyGuardrail evaluates images with content filters only, and only where the filter's
        # modalities include IMAGE ("Block harmful images with content filters", Bedrock user guide:
        # https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-mmfilter.html): without one
        # every generated image would pass unevaluated.
        problems.append(
            located(
                "images",
                "the guardrail evaluates generated images only with content filters whose modalities "
                "include IMAGE: add IMAGE to bedrock.guardrail.content_filters[].modalities (e.g. SEXUAL, "
                "VIOLENCE, HATE)",
            )
        )
    for alias, model in gateway.images.items():
        known = catalog.models.get(model)
        if model not in bedrock.models:
            problems.append(
                located(
                    f"images.{alias}",
                    f"{model!r} is not listed under bedrock.models (image models listed: "
                    f"{', '.join(image_models) or 'none'})",
                )
            )
        elif known is None or known.modality != "image":
            problems.append(
                located(
                    f"images.{alias}",
                    f"{model!r} is not an image-generation model; allowed: an image model of "
                    "stacks/data/bedrock_models.json "
                    f"({', '.join(m for m in IMAGE_MODELS if m in catalog.models)})",
                )
            )
        elif model not in IMAGE_MODELS:
            problems.append(
                located(
                    f"images.{alias}",
                    f"{model!r}: the gateway has no request body for this model; allowed: "
                    f"{', '.join(IMAGE_MODELS)}",
                )
            )
    kb_names = {kb.name for kb in bedrock.knowledge_bases} if bedrock else set()
    for index, name in enumerate(gateway.knowledge_bases):
        if name not in kb_names:
            problems.append(
                located(
                    f"knowledge_bases[{index}]",
                    f"{name!r} is not a knowledge base of bedrock.knowledge_bases",
                )
            )
    return problems


def bedrock_catalog_problems(bedrock: Bedrock, region: str) -> list[str]:
    """Model ids against the catalog: known, offered in the region, the right kind for their use."""
    catalog = bedrock_catalog()
    problems = []
    for index, model_id in enumerate(bedrock.models):
        model = catalog.models.get(model_id)
        if model is None:
            hint = (
                " (it is a system inference profile: list it under inference_profiles)"
                if (model_id in catalog.inference_profiles)
                else f" (known: {', '.join(sorted(catalog.models))})"
            )
            problems.append(located(f"models[{index}]", f"{model_id!r} is not a known Bedrock model{hint}"))
        elif model.modality == "image" and bedrock.guardrail and bedrock.guardrail.mandatory:
            # The model-access policy holds generation calls to the guardrail with a
            # bedrock:GuardrailIdentifier condition; Bedrock documents guardrails on InvokeModel for
            # text models only ("Supported Regions and models for Amazon Bedrock Guardrails":
            # https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-supported.html), so an
            # image model would be granted without it (stacks/components/model_access.py).
            problems.append(
                located(
                    f"models[{index}]",
                    f"{model_id!r} is an image model, which IAM cannot hold to the guardrail (no guarded "
                    "InvokeModel is documented for image models) while guardrail.mandatory is true: set "
                    "bedrock.guardrail.mandatory: false to rely on the gateway's ApplyGuardrail checks of "
                    "prompts and images, or remove the model",
                )
            )
        elif region not in model.regions:
            profiles = sorted(
                p.profile_id
                for p in catalog.inference_profiles.values()
                if p.model_id == model_id and region in p.source_regions
            )
            hint = f"; call it through {', '.join(profiles)} under inference_profiles" if profiles else ""
            problems.append(
                located(
                    f"models[{index}]",
                    f"{model_id!r} is not offered on demand in {region} "
                    f"(offered in {', '.join(model.regions)}){hint}",
                )
            )
    for index, profile_id in enumerate(bedrock.inference_profiles):
        profile = catalog.inference_profiles.get(profile_id)
        if profile is None:
            known = ", ".join(sorted(catalog.inference_profiles))
            problems.append(
                located(
                    f"inference_profiles[{index}]",
                    f"{profile_id!r} is not a known system inference profile (known: {known})",
                )
            )
        elif region not in profile.source_regions:
            problems.append(
                located(
                    f"inference_profiles[{index}]",
                    f"{profile_id!r} cannot be called from "
                    f"{region} (source regions: {', '.join(profile.source_regions)})",
                )
            )
    if (
        bedrock.guardrail is not None
        and bedrock.guardrail.tier == "STANDARD"
        and guardrail_profile(region) is None
    ):
        problems.append(
            located(
                "guardrail.tier",
                f"'STANDARD' needs a cross-region guardrail profile, and none is "
                f"known for {region} (see stacks/data/guardrails.json); use tier: CLASSIC here",
            )
        )
    allowed = set(bedrock.models) | set(bedrock.inference_profiles)
    for index, kb in enumerate(bedrock.knowledge_bases):
        where = f"knowledge_bases[{index}]"
        model = catalog.models.get(kb.embedding_model)
        if kb.embedding_model not in bedrock.models:
            problems.append(
                located(
                    f"{where}.embedding_model",
                    f"{kb.embedding_model!r} is not listed under "
                    "bedrock.models (the knowledge base invokes it in-region)",
                )
            )
        elif model is not None and model.modality != "embeddings":
            problems.append(
                located(
                    f"{where}.embedding_model",
                    f"{kb.embedding_model!r} is a {model.modality} model, not an embeddings model",
                )
            )
        elif kb.vector_store == "aurora_pgvector" and kb.dimensions > 2000:
            problems.append(
                located(
                    f"{where}.dimensions",
                    f"{kb.dimensions} is more than a pgvector HNSW index "
                    "takes (2,000); use s3_vectors or a smaller embedding size",
                )
            )
        elif model is not None and kb.dimensions not in model.dimensions:
            sizes = ", ".join(str(d) for d in model.dimensions)
            problems.append(
                located(
                    f"{where}.dimensions",
                    f"{kb.dimensions} does not match {kb.embedding_model} (it produces vectors of {sizes})",
                )
            )
    for field in ("application_inference_profiles", "prompts"):
        for index, item in enumerate(getattr(bedrock, field)):
            target = item.source if field == "application_inference_profiles" else item.model
            key = "source" if field == "application_inference_profiles" else "model"
            if target not in allowed:
                problems.append(
                    located(
                        f"{field}[{index}].{key}",
                        f"{target!r} is not listed under bedrock.models or bedrock.inference_profiles",
                    )
                )
    return problems


class Profile(_Strict):
    """One deployment of genai-stack: what to build, where, and what it may cost."""

    model_config = ConfigDict(title="genai-stack profile")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$",
        description="Lower-case slug; stack names are derived from it (NAME-foundation, ...)",
    )
    description: str = Field(min_length=1, max_length=300)
    region: str = Field(description="AWS region the stacks deploy to")
    account: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="12-digit account id; omit for an environment-agnostic account",
    )
    # The folder the profile's relative file paths (prompts) are read from: its file's folder.
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def for_environment(
        self, *, name: str | None = None, account: str | None = None, region: str | None = None
    ) -> Profile:
        """This profile as another environment (dev, stage, prod): its own name (stack names, resource
        names and the profile tag derive from it), account and region. Validated again, so a region
        that lacks a model the profile uses is refused with the profile's messages."""
        given = {"name": name, "account": account, "region": region}
        updates = {key: value for key, value in given.items() if value}
        if not updates:
            return self
        try:
            profile = Profile.model_validate(
                self.model_dump(exclude_unset=True) | updates, context={"base_dir": self._base_dir}
            )
        except ValidationError as error:
            where = ", ".join(f"{key} {value}" for key, value in updates.items())
            problems = [line for e in error.errors(include_url=False) for line in _describe(e).splitlines()]
            raise ProfileError(f"{self.name} as {where}", problems) from None
        profile._base_dir = self._base_dir
        return profile

    @field_validator("account", mode="before")
    @classmethod
    def _account_as_text(cls, value: Any) -> Any:
        # Unquoted in YAML, an account id without a leading zero is read as a number (one with a
        # leading zero stays text: _UniqueKeyLoader); its digits are the id.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    cost_allocation: CostAllocation
    notifications: Notifications = Field(default_factory=Notifications)
    budget: Budget
    foundation: Foundation = Field(default_factory=Foundation)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=40, description="Extra tags for every resource"
    )
    bedrock: Bedrock | None = Field(default=None, description="The managed-API approach (Amazon Bedrock)")
    hosting: Hosting | None = Field(default=None, description="Self-managed open models on EC2 hosts")
    inference: Inference | None = Field(default=None, description="SageMaker inference endpoints")
    training: Training | None = Field(
        default=None, description="SageMaker training pipelines and Bedrock model customization"
    )
    gateway: Gateway | None = Field(default=None, description="The OpenAI-compatible model gateway")

    @field_validator("region")
    @classmethod
    def _supported_region(cls, region: str) -> str:
        regions = supported_regions()
        if region not in regions:
            raise ValueError(
                f"is not a supported region: it {unsupported_reason(region)} "
                f"(supported: {', '.join(regions)}; docs/regions.md)"
            )
        return region

    @field_validator("bedrock")
    @classmethod
    def _bedrock_in_region(cls, bedrock: Bedrock | None, info: ValidationInfo) -> Bedrock | None:
        region = info.data.get("region")
        if bedrock is None or region is None:
            return bedrock
        problems = bedrock_catalog_problems(bedrock, region)
        if problems:
            raise ValueError("\n".join(problems))
        return bedrock

    @field_validator("inference")
    @classmethod
    def _inference_in_region(cls, inference: Inference | None, info: ValidationInfo) -> Inference | None:
        if inference is not None and (problems := inference_problems(inference, info.data.get("region"))):
            raise ValueError("\n".join(problems))
        return inference

    @field_validator("training")
    @classmethod
    def _training_in_region(cls, training: Training | None, info: ValidationInfo) -> Training | None:
        if training is None:
            return training
        problems = training_problems(training, info.data.get("inference"), info.data.get("region"))
        profile_name = info.data.get("name") or ""
        for section, items in (
            ("pipelines", training.pipelines),
            ("customizations", training.customizations),
        ):
            for index, item in enumerate(items):
                if len(f"{profile_name}-{item.name}") > NAME_PREFIX_LIMIT:
                    problems.append(
                        located(
                            f"{section}[{index}].name",
                            f"{item.name!r} makes '{profile_name}-{item.name}', longer than "
                            f"{NAME_PREFIX_LIMIT} characters (SageMaker and Bedrock names derive from it)",
                        )
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return training

    @model_validator(mode="before")
    @classmethod
    def _note_sections(cls, data: Any, info: ValidationInfo) -> Any:
        # The sections the file gives: a section that failed its own validation is missing from
        # info.data, and checks that read it must not report it as absent too.
        if isinstance(data, dict) and isinstance(info.context, dict):
            info.context["given"] = set(data)
        return data

    @field_validator("gateway")
    @classmethod
    def _gateway_models(cls, gateway: Gateway | None, info: ValidationInfo) -> Gateway | None:
        if gateway is None:
            return gateway
        given = (info.context or {}).get("given", set())
        if any(section in given and section not in info.data for section in ("bedrock", "hosting")):
            return gateway  # the section's own errors are reported; checked against it once it is valid
        problems = gateway_problems(gateway, info.data.get("bedrock"), info.data.get("hosting"))
        if problems:
            raise ValueError("\n".join(problems))
        return gateway

    @field_validator("tags")
    @classmethod
    def _reserved_tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        cost_allocation = info.data.get("cost_allocation")
        reserved = set(RESERVED_TAG_KEYS) | ({cost_allocation.tag_key} if cost_allocation else set())
        clash = sorted(reserved & set(tags))
        if clash:
            raise ValueError(f"sets {', '.join(clash)}, which genai-stack sets itself on every resource")
        return tags


# --------------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last), and
    reads digits with a leading zero as text: PyYAML follows YAML 1.1, where `012345670123` is an
    octal number (the account id 012345670123 would become 1402433619); YAML 1.2 has no such octal."""


# Digits with a leading zero resolve as strings, checked before PyYAML's int resolver for "0".
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.yaml_implicit_resolvers["0"].insert(0, ("tag:yaml.org,2002:str", re.compile(r"^0[0-9_]+$")))


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def builtin_profile_names(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(path.stem for path in profiles_dir.glob("*.yaml"))


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or "\\" in name_or_path


def resolve_profile_path(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Path:
    """A built-in profile name or a path to a user's file -> the file to read."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(name_or_path, ["file not found"])
        return path
    path = profiles_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(builtin_profile_names(profiles_dir)) or "none"
        raise ProfileError(
            name_or_path,
            [
                f"no built-in profile of that name (available: {available}, or '{ALL_PROFILES}'); "
                "to use your own file pass its path, e.g. -c profile=path/to/my-profile.yaml"
            ],
        )
    return path


def load_profile(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Profile:
    """Read and validate one profile. Raises ProfileError naming the file, field, value and rule."""
    path = resolve_profile_path(name_or_path, profiles_dir)
    source = _display_path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileError(source, [f"{where}not valid YAML: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(source, [f"cannot be read: {error}"]) from None
    if not isinstance(data, dict):
        raise ProfileError(
            source,
            [
                "a profile is a mapping of keys (name, region, budget, ...), not "
                + ("an empty file" if data is None else f"a {type(data).__name__}")
            ],
        )
    try:
        profile = Profile.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as error:
        problems = [line for e in error.errors(include_url=False) for line in _describe(e).splitlines()]
        raise ProfileError(source, problems) from None
    profile._base_dir = path.parent
    return profile


def load_profiles(selection: str | Sequence[str], profiles_dir: Path = PROFILES_DIR) -> list[Profile]:
    """`all` -> every built-in profile; otherwise one name or path, or a list of them (one synthesis of
    several profiles: `genai-stack diff -p A -p B`). Profile names must be unique."""
    if isinstance(selection, str) and selection != ALL_PROFILES:
        return [load_profile(selection, profiles_dir)]
    names_or_paths = builtin_profile_names(profiles_dir) if selection == ALL_PROFILES else list(selection)
    profiles = [load_profile(name, profiles_dir) for name in names_or_paths]
    names = [profile.name for profile in profiles]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        where = str(profiles_dir) if selection == ALL_PROFILES else ", ".join(names_or_paths)
        raise ProfileError(where, [f"profile name {', '.join(duplicates)} is used by more than one file"])
    return profiles


# --------------------------------------------------------------------------------------------------
# Error messages


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed validation
            text += " (key)"
        else:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class whose fields live at `loc` (used to list the allowed keys)."""
    model: type[BaseModel] = Profile
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *get_args(annotation)] if get_origin(annotation) else [annotation]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" and message.startswith("@"):
        lines = []
        for line in message.splitlines():
            match = _LOCATED.match(line)
            subpath, text = match.groups() if match else ("", line)
            joined = (
                _path(loc) + ("" if subpath.startswith("[") or not loc else ".") + subpath
                if subpath
                else _path(loc)
            )
            lines.append(f"{joined}: {text}")
        return "\n".join(lines)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see profiles/profile.schema.json"
        return f"{_path(loc)}: unknown key (allowed here: {allowed})"
    if kind == "missing":
        return f"{_path(loc)}: required but missing"
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        if message.startswith(("is ", "lists ", "sets ")):  # about the value: show it
            return f"{_path(loc)}: {_value(error['input'])} {message}"
        if message.startswith(("names ", "needs ")):  # about the field as a whole
            return f"{_path(loc)}: {message}"
    return f"{_path(loc)}: {_value(error['input'])} is not allowed: {message[0].lower()}{message[1:]}"


# --------------------------------------------------------------------------------------------------
# JSON schema


def profile_json_schema() -> str:
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$comment"] = (
        "Generated by `python -m genai_stack.config --write-schema` from stacks/config.py; do not edit."
    )
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str]) -> int:
    """`--write-schema` regenerates the JSON schema; `PROFILE...` validates names or files."""
    if list(argv) == ["--write-schema"]:
        SCHEMA_PATH.write_text(profile_json_schema(), encoding="utf-8")
        print(f"wrote {_display_path(SCHEMA_PATH)}")
        return 0
    if not argv:
        print("usage: python -m genai_stack.config --write-schema | PROFILE...", file=sys.stderr)
        return 2
    failed = False
    for name in argv:
        try:
            load_profile(name)
        except ProfileError as error:
            print(error, file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
