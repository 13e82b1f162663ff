#!/usr/bin/env python3
"""The CDK app: the only place that reads context. `-c profile=NAME|PATH|all` (default: managed-api)."""

from __future__ import annotations

import sys

from aws_cdk import App

from stacks.compliance import enable_checks
from stacks.config import DEFAULT_PROFILE, ProfileError, load_profiles
from stacks.stage import ProfileStacks


def build_app(selection: str | None = None, *, app: App | None = None) -> App:
    """An App with the stacks of each selected profile (top-level, so `cdk deploy --all` finds them)."""
    app = app or App()
    chosen = selection or app.node.try_get_context("profile") or DEFAULT_PROFILE
    for profile in load_profiles(str(chosen)):
        ProfileStacks(app, profile.name, profile=profile)
    enable_checks(app)
    return app


def main() -> int:
    try:
        app = build_app()
    except ProfileError as error:
        print(f"genai-stack: profile error\n{error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
