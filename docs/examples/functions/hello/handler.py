"""A team's own Lambda function, packaged by genai_stack's PythonFunction from docs/examples/functions."""

from __future__ import annotations

import os


def on_event(event: dict, context: object) -> dict:
    return {"greeting": f"hello from {os.environ.get('TEAM', 'a team')}", "keys": sorted(event)}
