"""The profile's bedrock section: the managed-API approach (Amazon Bedrock)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from genai_stack.catalog import (
    bedrock_catalog,
    guardrail_languages,
    guardrail_profile,
    guardrail_profile_sources,
    missing_types,
    topic_definition_limit,
)
from genai_stack.lambdas.pgvector_schema.logic import ALTERNATE as BEDROCK_ALTERNATE
from genai_stack.lambdas.pgvector_schema.logic import ROLE as BEDROCK_ROLE
from genai_stack.profile.common import (
    _SCHEDULE,
    Slug,
    TagKey,
    TagValue,
    _known_retention,
    _Strict,
    located,
    repeated_names,
)
from genai_stack.profile.imagery import ImageBatch

# --------------------------------------------------------------------------------------------------
# Managed API: Amazon Bedrock

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
        # CloudFormation sets no tier for the contextual grounding check (AWS::Bedrock::Guardrail has no
        # grounding tier property), so it runs on the CLASSIC tier, which reads English, French and
        # Spanish only (Bedrock API reference, GuardrailContextualGroundingTierConfig): on answers in
        # another language it judges text it cannot read ("Guardrails are ineffective with languages
        # that aren't supported", guardrails-supported-languages.html).
        unread = [lang for lang in self.languages if lang not in guardrail_languages("CLASSIC")]
        if self.contextual_grounding is not None and unread:
            problems.append(
                located(
                    "contextual_grounding",
                    f"runs on the CLASSIC tier (CloudFormation sets no other), which cannot read "
                    f"{', '.join(unread)}: remove it, or those languages",
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


# Regions of Amazon Kendra GenAI Enterprise Edition indices, the only Kendra indices a Bedrock
# knowledge base takes (Kendra developer guide, "Quotas": "only available in the US East (N. Virginia),
# US West (Oregon), Europe (Ireland), and Asia Pacific (Sydney) Regions").
KENDRA_GENAI_REGIONS = ("ap-southeast-2", "eu-west-1", "us-east-1", "us-west-2")


class KnowledgeBase(_Strict):
    """A knowledge base over the data bucket prefix `knowledge-bases/<name>/`, or over an existing
    Amazon Kendra GenAI index (`vector_store: kendra`)."""

    name: Slug
    description: str = Field(min_length=1, max_length=200)
    embedding_model: str | None = Field(default=None, description="Required unless vector_store is kendra")
    dimensions: int | None = Field(default=None, gt=0, description="Required unless vector_store is kendra")
    vector_store: Literal["s3_vectors", "aurora_pgvector", "kendra"] = Field(
        default="s3_vectors",
        description="s3_vectors: pay per use, no idle compute; aurora_pgvector: Aurora PostgreSQL "
        "Serverless v2 with pgvector, pausing at 0 ACU when idle; kendra: an existing Kendra GenAI "
        "index (kendra_index_id), which embeds and syncs its own documents",
    )
    kendra_index_id: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{35}$",
        description="With vector_store: kendra, the id of a GenAI Enterprise Edition index of this account "
        "and region (Kendra takes no new customers: the profile does not create one)",
    )
    chunking: Chunking = Field(default_factory=FixedChunking)
    ingestion_schedule: str = Field(default="rate(1 day)", pattern=_SCHEDULE)

    @model_validator(mode="after")
    def _store_fields(self) -> KnowledgeBase:
        if self.vector_store == "kendra":
            given = [f for f in ("embedding_model", "dimensions") if getattr(self, f) is not None]
            if self.kendra_index_id is None:
                raise ValueError(located("kendra_index_id", "is required with vector_store: kendra"))
            given += [f for f in ("chunking", "ingestion_schedule") if f in self.model_fields_set]
            if given:
                raise ValueError(
                    located(
                        given[0],
                        "is not used with vector_store: kendra (the Kendra index chunks, embeds and "
                        "syncs its documents itself)",
                    )
                )
            return self
        missing = [f for f in ("embedding_model", "dimensions") if getattr(self, f) is None]
        if missing:
            raise ValueError(located(missing[0], f"is required with vector_store: {self.vector_store}"))
        if self.kendra_index_id is not None:
            raise ValueError(located("kendra_index_id", "is only for vector_store: kendra"))
        return self

    @property
    def on_kendra(self) -> bool:
        return self.vector_store == "kendra"

    @property
    def prefix(self) -> str:
        return f"knowledge-bases/{self.name}/"

    @property
    def table_name(self) -> str:
        """The pgvector table of an aurora_pgvector knowledge base."""
        return self.name.replace("-", "_")


# Names refused for the cluster's master user: the engine's default and the names a password-guessing
# attacker tries first. PostgreSQL reserves role names beginning with `pg_` ("Database Roles": "role
# names beginning with pg_ are reserved", https://www.postgresql.org/docs/16/database-roles.html); RDS
# keeps `rdsadmin` and `rds_*` roles for itself.
GUESSABLE_ADMIN_NAMES = frozenset({"postgres", "admin", "administrator", "root", "master", "sa", "user"})
LEGACY_ADMIN = "postgres"  # the admin 0.1 created
RESERVED_ROLE_PREFIXES = ("pg_", "rds")
# The Bedrock login and the alternate that alternating-users rotation creates beside it
# (lambdas/login_rotation/logic.py).
BEDROCK_LOGINS = frozenset({BEDROCK_ROLE, BEDROCK_ALTERNATE})


class LoginRotation(_Strict):
    """How the cluster's two logins are rotated, on one schedule.

    - The admin (master user) password is managed by Aurora in Secrets Manager (ManageMasterUserPassword):
      Aurora rotates it itself ("managed rotation", no Lambda function, no network path to the cluster).
    - The Bedrock login is rotated by this project's function over the RDS Data API, as the admin:
      `alternating_users` (the default) keeps two login roles, `bedrock_user` and `bedrock_user_clone`,
      and changes the password of the one not in use, so Bedrock's current credentials keep working
      through a rotation; `single_user` changes `bedrock_user`'s own password, and a query that reads the
      old password between the change and the secret's update fails once.
    """

    every_days: int = Field(
        default=30,
        ge=1,
        le=1000,
        description="Days between rotations, for both logins (Secrets Manager rotation rules: 1 to 1000)",
    )
    bedrock_login: Literal["alternating_users", "single_user"] = "alternating_users"


class AuroraVectorStore(_Strict):
    """The Aurora PostgreSQL Serverless v2 cluster shared by the aurora_pgvector knowledge bases."""

    min_capacity: float = Field(
        default=0, ge=0, le=256, multiple_of=0.5, description="ACUs; 0 pauses when idle"
    )
    max_capacity: float = Field(default=2, ge=1, le=256, multiple_of=0.5)
    auto_pause_minutes: int = Field(default=10, ge=5, le=1440, description="Idle time before pausing (min 0)")
    admin_username: str = Field(
        default="vectors_admin",
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="The cluster's master user (1 to 63 lower-case letters, digits or underscores, first "
        "a letter); not a name an attacker tries first (postgres, admin, root, ...)",
    )
    legacy_admin_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Only for a cluster deployed by 0.1, whose admin is `postgres`: a master user's name "
        "cannot change, so such a profile keeps `admin_username: postgres` and says why here",
    )
    rotation: LoginRotation = Field(default_factory=LoginRotation)

    @field_validator("admin_username")
    @classmethod
    def _not_a_reserved_admin(cls, name: str) -> str:
        if name.startswith(RESERVED_ROLE_PREFIXES):
            raise ValueError(
                f"{name!r}: role names starting with pg_ or rds are reserved by PostgreSQL and RDS"
            )
        if name in BEDROCK_LOGINS:
            raise ValueError(f"{name!r} is the name of the Bedrock login (and its alternate)")
        return name

    @model_validator(mode="after")
    def _not_a_guessable_admin(self) -> AuroraVectorStore:
        name = self.admin_username
        if name == LEGACY_ADMIN and self.legacy_admin_reason:
            return self
        if name in GUESSABLE_ADMIN_NAMES:
            keep = (
                " A cluster deployed by 0.1 has the admin 'postgres' and keeps it (a master user's name "
                "cannot change): say so with legacy_admin_reason."
                if name == LEGACY_ADMIN
                else ""
            )
            raise ValueError(
                located(
                    "admin_username",
                    f"{name!r} is a default or commonly guessed admin name; choose another (e.g. "
                    f"vectors_admin).{keep}",
                )
            )
        if self.legacy_admin_reason:
            raise ValueError(
                located("legacy_admin_reason", f"is only for admin_username {LEGACY_ADMIN!r} (0.1's admin)")
            )
        return self

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
    image_batch: ImageBatch | None = Field(
        default=None, description="batches of product photos turned into images (image-to-image)"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Bedrock:
        problems = repeated_names(self, "knowledge_bases", "application_inference_profiles", "prompts")
        for field in ("models", "inference_profiles"):
            ids = getattr(self, field)
            problems += [
                located(field, f"lists {i!r} more than once")
                for i in sorted({i for i in ids if ids.count(i) > 1})
            ]
        if not self.models and not self.inference_profiles:
            problems.append(located("models", "is empty: list at least one model or inference profile"))
        if self.image_batch is not None and self.image_batch.model not in self.models:
            problems.append(
                located("image_batch.model", f"{self.image_batch.model!r} is not listed under models")
            )
        if self.image_batch is not None and self.guardrail is None:
            problems.append(
                located(
                    "image_batch",
                    "needs the guardrail: every generated image is checked with it before it is written",
                )
            )
        elif self.image_batch is not None and not any(
            "IMAGE" in f.modalities for f in self.guardrail.content_filters
        ):
            problems.append(
                located(
                    "image_batch",
                    "needs a guardrail content filter whose modalities include IMAGE: only those read images",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


def bedrock_catalog_problems(bedrock: Bedrock, region: str) -> list[str]:
    """Model ids against the catalog: known, offered in the region, the right kind for their use."""
    lacking = sorted(t for t in missing_types(region) if t.startswith("AWS::Bedrock::"))
    if "AWS::Bedrock::Guardrail" in lacking or "AWS::Bedrock::KnowledgeBase" in lacking:
        # Where CloudFormation has no Bedrock resources, Bedrock itself is not offered (ap-east-1, Hong
        # Kong: no bedrock-runtime endpoint either, "Amazon Bedrock endpoints and quotas"); every model
        # error would repeat this one.
        with_apac = sorted(r for r in guardrail_profile_sources() if not missing_types(r) & set(lacking))
        return [
            f"needs Amazon Bedrock, which is not offered in {region}: CloudFormation there lacks "
            f"{', '.join(t.removeprefix('AWS::') for t in lacking)}. Deploy the bedrock section to a "
            f"region that has it (with a STANDARD-tier guardrail: {', '.join(with_apac)}; docs/regions.md)"
        ]
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
        if kb.on_kendra:
            if region not in KENDRA_GENAI_REGIONS:
                problems.append(
                    located(
                        f"{where}.vector_store",
                        f"'kendra' needs a Kendra GenAI index, which {region} does not offer "
                        f"(offered in {', '.join(KENDRA_GENAI_REGIONS)})",
                    )
                )
            continue
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
