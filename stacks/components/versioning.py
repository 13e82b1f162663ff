"""Content-addressed versions: a version resource whose description carries a digest of the
configuration it snapshots, so any change publishes a new numbered version (the description is a
create-only property of AWS::Bedrock::GuardrailVersion and AWS::Bedrock::PromptVersion), while the
old version is retained for callers that pinned it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aws_cdk import CfnResource, RemovalPolicy, Stack


def config_digest(scope_resource: CfnResource, properties: dict[str, Any]) -> str:
    """A short digest of the resolved properties (tokens resolved in their stack, so it is stable)."""
    resolved = Stack.of(scope_resource).resolve(properties)
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def keep_published_versions(version: CfnResource) -> None:
    """A replaced or deleted version stays: callers may pin it (DeletionPolicy/UpdateReplacePolicy Retain)."""
    version.apply_removal_policy(RemovalPolicy.RETAIN)
