"""Synthesis for the command line: the app of app.py, with the project's feature flags and the CLI's
metadata settings, so that templates are the ones `cdk synth` writes. It runs in-process: an installed
wheel needs neither the repository's cdk.json nor the CDK CLI."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App

from genai_stack.config import Profile, load_profiles
from genai_stack.stage import FEATURE_FLAGS, add_profiles

# What the CDK CLI adds to the context of every synth: construct paths and asset locations in the
# templates' metadata (API Gateway deployment logical IDs hash them).
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}


def cdk_context() -> dict:
    return {**FEATURE_FLAGS, **CLI_CONTEXT}


def cdk_app(outdir: Path) -> App:
    """An App with the project's feature flags and the CLI's metadata settings, like `cdk synth`."""
    return App(outdir=str(outdir), context=cdk_context())


@dataclass
class Synthesis:
    """The stacks of one profile: templates by stack name (the CloudFormation stack name)."""

    profile: Profile
    templates: dict[str, dict]


# Per process, per profile: a profile (by content) synthesizes to the same templates alone or with
# others (its stacks are its own), so a process that asks twice (a shell session of plan and cost
# through one interpreter, the test suite after its session synthesis of every profile) pays once.
_SYNTHESIZED: dict[str, Synthesis] = {}


def _key(profile: Profile) -> str:
    return profile.model_dump_json()


def synthesize_app(selection: str, outdir: Path) -> tuple[App, Any, list[Synthesis]]:
    """Synthesize the selected profiles in-process into `outdir`: the App, its cloud assembly and the
    templates by profile, which later `synthesize` calls of this process reuse. Raises ProfileError."""
    profiles = {p.name: p for p in load_profiles(selection)}
    app = add_profiles(cdk_app(outdir), selection)
    assembly = app.synth()
    by_profile: dict[str, dict[str, dict]] = {name: {} for name in profiles}
    for artifact in assembly.stacks:
        profile = artifact.hierarchical_id.split("/")[0]
        by_profile[profile][artifact.stack_name] = artifact.template
    result = [Synthesis(profiles[name], templates) for name, templates in by_profile.items()]
    for synthesis in result:
        _SYNTHESIZED[_key(synthesis.profile)] = copy.deepcopy(synthesis)
    return app, assembly, result


def synthesize(selection: str, outdir: Path) -> list[Synthesis]:
    """Synthesize the selected profiles in-process into `outdir` (cdk-nag runs, as with `cdk synth`).
    Raises ProfileError for a bad profile. A selection whose profiles this process synthesized
    before, with the same content, returns copies of those templates (`outdir` stays empty)."""
    profiles = load_profiles(selection)
    if all(_key(profile) in _SYNTHESIZED for profile in profiles):
        return [copy.deepcopy(_SYNTHESIZED[_key(profile)]) for profile in profiles]
    return synthesize_app(selection, outdir)[2]
