"""Profiles: the typed models of a profile file and `load_profile`.

A profile is a YAML file that says what to deploy. It is validated once, with unknown keys forbidden;
everything downstream (the stage, the stacks, the constructs) receives typed models and never reads
files. Errors name the file, the field path, the bad value and what is allowed, e.g.::

    profiles/my.yaml: budget.monthly_limit_usd: -5 is not allowed: input should be greater than 0

The models live in `genai_stack.profile`, one module per section (budget, foundation, bedrock,
hosting, inference, training, gateway; `document` holds the whole profile and the checks across
sections, `loading` reads files). This module is the one place that imports them all: the stacks,
the CLI and apps of your own import profile types from here.

Run ``python -m genai_stack.config --write-schema`` after changing a model: it regenerates
``profiles/profile.schema.json``, which editors use to complete and check profile files (a test fails
while the committed schema is stale).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from genai_stack import PROFILES_DIR
from genai_stack.profile.assistant import Assistant
from genai_stack.profile.bedrock import (
    ApplicationInferenceProfile,
    AuroraVectorStore,
    Bedrock,
    BedrockAlarms,
    Chunking,
    ContentFilter,
    ContentFilterType,
    ContextualGrounding,
    DeniedTopic,
    DriftMonitoring,
    FixedChunking,
    Guardrail,
    HierarchicalChunking,
    InvocationLogging,
    KnowledgeBase,
    PiiEntity,
    PiiEntityType,
    PromptTemplate,
    RegexFilter,
    SemanticChunking,
    Strength,
    bedrock_catalog_problems,
)
from genai_stack.profile.budget import (
    Budget,
    BudgetThreshold,
    CostAllocation,
    Notifications,
    StopInvocations,
)
from genai_stack.profile.common import (
    ALL_PROFILES,
    DEFAULT_PROFILE,
    LOG_RETENTION_DAYS,
    PROFILE_TAG,
    PROJECT_TAG,
    RESERVED_TAG_KEYS,
    SCHEMA_PATH,
    ProfileError,
    Slug,
    TagKey,
    TagValue,
    VpcEndpointId,
    located,
)
from genai_stack.profile.document import Profile
from genai_stack.profile.evaluation import Evaluation
from genai_stack.profile.foundation import Foundation
from genai_stack.profile.gateway import (
    API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS,
    GATEWAY_API_MARGIN_SECONDS,
    GATEWAY_IMAGE_RETENTION_DAYS,
    GATEWAY_MAX_DEADLINE_SECONDS,
    GATEWAY_TIMEOUT_HEADROOM_SECONDS,
    SEMANTIC_CACHE_INDEX,
    Gateway,
    GatewayAlarms,
    GatewayCache,
    GatewayFeedback,
    GatewaySemanticCache,
    GatewayTarget,
    GatewayTenant,
    ImageEndpointAlias,
    gateway_function_timeout_seconds,
    gateway_problems,
)
from genai_stack.profile.hosting import (
    Hosting,
    HostTls,
    ModelHost,
    ModelSize,
    ModelWeights,
    Network,
    OffHours,
    host_startup_budget,
    sizing_problems,
)
from genai_stack.profile.inference import AsyncInference, Inference, InferenceEndpoint, inference_problems
from genai_stack.profile.loading import (
    _display_path,
    builtin_profile_names,
    load_profile,
    load_profiles,
    resolve_profile_path,
)
from genai_stack.profile.training import (
    NAME_PREFIX_LIMIT,
    BedrockCustomization,
    SpotTraining,
    Training,
    TrainingMetric,
    TrainingPipeline,
    training_problems,
)

__all__ = [
    "ALL_PROFILES",
    "API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS",
    "DEFAULT_PROFILE",
    "GATEWAY_API_MARGIN_SECONDS",
    "GATEWAY_IMAGE_RETENTION_DAYS",
    "GATEWAY_MAX_DEADLINE_SECONDS",
    "GATEWAY_TIMEOUT_HEADROOM_SECONDS",
    "LOG_RETENTION_DAYS",
    "NAME_PREFIX_LIMIT",
    "PROFILES_DIR",
    "PROFILE_TAG",
    "PROJECT_TAG",
    "RESERVED_TAG_KEYS",
    "SCHEMA_PATH",
    "SEMANTIC_CACHE_INDEX",
    "ApplicationInferenceProfile",
    "Assistant",
    "AsyncInference",
    "AuroraVectorStore",
    "Bedrock",
    "BedrockAlarms",
    "BedrockCustomization",
    "Budget",
    "BudgetThreshold",
    "Chunking",
    "ContentFilter",
    "ContentFilterType",
    "ContextualGrounding",
    "CostAllocation",
    "DeniedTopic",
    "DriftMonitoring",
    "Evaluation",
    "FixedChunking",
    "Foundation",
    "Gateway",
    "GatewayAlarms",
    "GatewayCache",
    "GatewayFeedback",
    "GatewaySemanticCache",
    "GatewayTarget",
    "GatewayTenant",
    "Guardrail",
    "HierarchicalChunking",
    "HostTls",
    "Hosting",
    "ImageEndpointAlias",
    "Inference",
    "InferenceEndpoint",
    "InvocationLogging",
    "KnowledgeBase",
    "ModelHost",
    "ModelSize",
    "ModelWeights",
    "Network",
    "Notifications",
    "OffHours",
    "PiiEntity",
    "PiiEntityType",
    "Profile",
    "ProfileError",
    "PromptTemplate",
    "RegexFilter",
    "SemanticChunking",
    "Slug",
    "SpotTraining",
    "StopInvocations",
    "Strength",
    "TagKey",
    "TagValue",
    "Training",
    "TrainingMetric",
    "TrainingPipeline",
    "VpcEndpointId",
    "bedrock_catalog_problems",
    "builtin_profile_names",
    "gateway_function_timeout_seconds",
    "gateway_problems",
    "host_startup_budget",
    "inference_problems",
    "load_profile",
    "load_profiles",
    "located",
    "profile_json_schema",
    "resolve_profile_path",
    "sizing_problems",
    "training_problems",
]


def profile_json_schema() -> str:
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$comment"] = (
        "Generated by `python -m genai_stack.config --write-schema` from stacks/profile/; do not edit."
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
