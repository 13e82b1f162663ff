"""Stateful resources: retained on delete, and their logical IDs pinned.

A refactor that changes a stateful resource's logical ID makes CloudFormation create a new one and
delete (or, with Retain, orphan) the old: data is lost or split. The committed list below is the
contract; change it only on purpose, in the same pull request that explains why:
`GENAI_STACK_UPDATE_PINS=1 .venv/bin/python -m pytest tests/stacks/test_stateful.py` rewrites it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genai_stack.compliance import STATEFUL_RESOURCE_TYPES

PINS = Path(__file__).with_name("stateful_resources.json")


def stateful(synthesized) -> dict[str, dict[str, dict[str, str]]]:
    found: dict[str, dict[str, dict[str, str]]] = {}
    for profile, templates in sorted(synthesized.templates.items()):
        for stack, template in sorted(templates.items()):
            resources = {
                logical_id: resource["Type"]
                for logical_id, resource in sorted(template["Resources"].items())
                if resource["Type"] in STATEFUL_RESOURCE_TYPES
            }
            if resources:
                found.setdefault(profile, {})[stack] = resources
    return found


def test_every_stateful_resource_is_retained_on_delete_and_on_replacement(synthesized):
    checked = 0
    for profile, templates in synthesized.templates.items():
        for stack, template in templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] in STATEFUL_RESOURCE_TYPES:
                    where = f"{profile}/{stack}/{logical_id}"
                    assert resource.get("DeletionPolicy") == "Retain", f"{where} is not retained on delete"
                    assert resource.get("UpdateReplacePolicy") == "Retain", (
                        f"{where} is not retained on replacement"
                    )
                    checked += 1
    assert checked >= 5


def test_stateful_logical_ids_are_pinned(synthesized):
    current = stateful(synthesized)
    if os.environ.get("GENAI_STACK_UPDATE_PINS") == "1":
        PINS.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(PINS.read_text())
    problems = []
    for profile in sorted(set(pinned) | set(current)):
        for stack in sorted(set(pinned.get(profile, {})) | set(current.get(profile, {}))):
            before = pinned.get(profile, {}).get(stack, {})
            after = current.get(profile, {}).get(stack, {})
            for logical_id in sorted(set(before) - set(after)):
                problems.append(
                    f"{profile}/{stack}/{logical_id} ({before[logical_id]}) would be replaced or dropped"
                )
            for logical_id in sorted(set(after) - set(before)):
                problems.append(f"{profile}/{stack}/{logical_id} ({after[logical_id]}) is new and not pinned")
            for logical_id in sorted(set(before) & set(after)):
                was, now = before[logical_id], after[logical_id]
                if was != now:
                    problems.append(f"{profile}/{stack}/{logical_id} changed type: {was} -> {now}")
    assert not problems, "stateful resources differ from tests/stacks/stateful_resources.json:\n" + "\n".join(
        problems
    )
