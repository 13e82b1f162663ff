"""Fixtures of the access checks: every built-in profile's synthesized stacks as one Deployment
(reusing the session's synthesis, tests/conftest.py `synthesized`)."""

from __future__ import annotations

import pytest
from aws_cdk import Stack

from tests.access.deployment import Deployment

# Any 12-digit account: policies name it through AWS::AccountId, which the resolver fills in.
ACCOUNT = "123456789012"


def deployment_of(synthesized, profile: str, templates: dict[str, dict] | None = None) -> Deployment:
    """The Deployment of one profile; `templates` (by construct id) replaces the synthesized ones."""
    stacks = synthesized.profiles[profile]
    settings = stacks.profile
    by_name = {}
    for child in stacks.node.children:
        if isinstance(child, Stack):
            by_name[child.stack_name] = (templates or synthesized.templates[profile])[child.node.id]
    guardrail = settings.bedrock.guardrail if settings.bedrock else None
    return Deployment(
        profile,
        by_name,
        account=settings.account or ACCOUNT,
        region=settings.region,
        guardrail_enforced=bool(guardrail and guardrail.mandatory),
    )


@pytest.fixture(scope="session")
def deployments(synthesized) -> dict[str, Deployment]:
    return {profile: deployment_of(synthesized, profile) for profile in synthesized.profiles}
