#!/usr/bin/env python3
"""The CDK app: the only place that reads context. `-c profile=NAME|PATH|all` (default: managed-api);
a list of names and paths in CDK_CONTEXT_JSON synthesizes several in one process (genai-stack diff)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from genai_stack.config import DEFAULT_PROFILE, ProfileError, load_profiles

if TYPE_CHECKING:
    from aws_cdk import App

# `genai-stack diff` looks for this line: a tree whose app.py has it takes a list of profiles in one
# synthesis (stacks/cli/diff.py takes_lists); older trees get one process per profile.
PROFILE_LISTS = True


def build_app(selection: str | list[str] | None = None, *, app: App | None = None) -> App:
    """An App with the stacks of each selected profile (default: the `profile` context)."""
    from aws_cdk import App

    from genai_stack.stage import FEATURE_FLAGS, add_profiles

    app = app or App(context=FEATURE_FLAGS)
    selection = selection or app.node.try_get_context("profile") or DEFAULT_PROFILE
    return add_profiles(app, selection if isinstance(selection, list) else str(selection))


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
    selection = cli_context().get("profile") or DEFAULT_PROFILE
    selection = selection if isinstance(selection, list) else str(selection)
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
