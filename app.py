#!/usr/bin/env python3
"""The CDK app: the only place that reads context. `-c profile=NAME|PATH|all` (default: managed-api)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from genai_stack.config import DEFAULT_PROFILE, ProfileError, load_profiles

if TYPE_CHECKING:
    from aws_cdk import App


def build_app(selection: str | None = None, *, app: App | None = None) -> App:
    """An App with the stacks of each selected profile (default: the `profile` context)."""
    from aws_cdk import App

    from genai_stack.stage import FEATURE_FLAGS, add_profiles

    app = app or App(context=FEATURE_FLAGS)
    return add_profiles(app, str(selection or app.node.try_get_context("profile") or DEFAULT_PROFILE))


def cli_context() -> dict:
    """The context the CDK CLI hands the app, read as aws-cdk-lib's App reads it: the JSON in
    CDK_CONTEXT_JSON and, when it is too large for the environment, the file that
    CONTEXT_OVERFLOW_LOCATION_ENV names (aws-cdk-lib core/lib/app.js, readContextFromEnvironment and
    readContextFromTempFile)."""
    context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    if location := os.environ.get("CONTEXT_OVERFLOW_LOCATION_ENV"):
        with open(location, encoding="utf-8") as overflow:
            context.update(json.load(overflow))
    return context


def main() -> int:
    # The profile first: a wrong one is reported before the CDK (and its Node.js kernel) starts.
    selection = str(cli_context().get("profile") or DEFAULT_PROFILE)
    try:
        load_profiles(selection)
        app = build_app(selection)
    except ProfileError as error:
        print(f"genai-stack: profile error\n{error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
