#!/usr/bin/env python3
"""The CDK app: the only place that reads context. `-c profile=NAME|PATH|all` (default: managed-api)."""

from __future__ import annotations

import sys

from aws_cdk import App

from stacks.config import DEFAULT_PROFILE, ProfileError
from stacks.stage import add_profiles


def build_app(selection: str | None = None, *, app: App | None = None) -> App:
    """An App with the stacks of each selected profile (default: the `profile` context)."""
    app = app or App()
    return add_profiles(app, str(selection or app.node.try_get_context("profile") or DEFAULT_PROFILE))


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
