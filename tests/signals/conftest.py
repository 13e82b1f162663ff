"""Fixtures of the signal contract: per built-in profile, its Deployment (the access harness's
resolved view of the synthesized stacks), the metrics its alarms and widgets read, and the metrics
its code emits (captured by running it)."""

from __future__ import annotations

import pytest
from aws_cdk import Stack

from tests.access.conftest import deployment_of
from tests.access.deployment import Deployment
from tests.signals.emitters import Emitted, emitters_of
from tests.signals.readers import Reader, alarm_readers, dashboard_readers


def stack_names(synthesized, profile: str) -> dict[str, str]:
    """Construct id -> CloudFormation stack name."""
    return {
        child.node.id: child.stack_name
        for child in synthesized.profiles[profile].node.children
        if isinstance(child, Stack)
    }


def readers_of(
    synthesized, profile: str, deployment: Deployment, templates: dict | None = None
) -> list[Reader]:
    templates = templates or synthesized.templates[profile]
    names = stack_names(synthesized, profile)
    found: list[Reader] = []
    for construct_id, template in templates.items():
        name = names[construct_id]
        found += alarm_readers(profile, construct_id, name, template, deployment.resolver)
        found += dashboard_readers(profile, construct_id, name, template, deployment.resolver)
    return found


def keyed(readers: list[Reader]) -> dict[str, Reader]:
    """Readers by key; a key seen again (two widgets of one title) gets `#2`, `#3`..."""
    result: dict[str, Reader] = {}
    for reader in readers:
        key, n = reader.key, 1
        while key in result:
            n += 1
            key = f"{reader.key}#{n}"
        result[key] = reader
    return result


@pytest.fixture(scope="session")
def signal_deployments(synthesized) -> dict[str, Deployment]:
    return {profile: deployment_of(synthesized, profile) for profile in synthesized.profiles}


@pytest.fixture(scope="session")
def readers(synthesized, signal_deployments) -> dict[str, dict[str, Reader]]:
    return {
        profile: keyed(readers_of(synthesized, profile, deployment))
        for profile, deployment in signal_deployments.items()
    }


@pytest.fixture(scope="session")
def emitted(signal_deployments) -> dict[str, list[Emitted]]:
    return {profile: emitters_of(deployment) for profile, deployment in signal_deployments.items()}
