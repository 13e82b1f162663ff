"""The 0.1 service roles, kept unused in the foundation for one release (stacks/retired_roles.py says why).

retired_roles_0_1.json lists, per built-in profile, the role and policy resources that release 0.1's
foundation held for the approach stacks and the outputs through which those stacks read them (taken from
0.1's synthesized templates). An update from 0.1 must neither replace nor delete any of them, and no
stack of 0.2 may read them: the approach stacks use their own roles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_stack.retired_roles import REMOVE_IN, RETIRED_IN, RETIRED_METADATA
from tests.support.templates import references

RELEASE_0_1 = json.loads(Path(__file__).with_name("retired_roles_0_1.json").read_text())


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _package_version() -> str:
    import tomllib

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["version"]


def test_the_retired_roles_go_in_the_release_after_the_move():
    version = _package_version()
    assert _version(RETIRED_IN) <= _version(version), f"{version} predates the move ({RETIRED_IN})"
    assert _version(version) < _version(REMOVE_IN), (
        f"version {version}: delete stacks/retired_roles.py, its call in stacks/stage.py, "
        "tests/stacks/retired_roles_0_1.json and this test (their release has come)"
    )


@pytest.mark.parametrize("profile", sorted(RELEASE_0_1))
def test_an_update_from_0_1_keeps_every_role_and_output_the_approach_stacks_read(synthesized, profile):
    foundation = synthesized.templates[profile]["Foundation"]
    kept = RELEASE_0_1[profile]
    for logical_id, resource_type in kept["resources"].items():
        resource = foundation["Resources"].get(logical_id)
        assert resource is not None, f"{profile}: {logical_id} would be deleted while 0.1's stacks use it"
        assert resource["Type"] == resource_type
        assert resource["Metadata"][RETIRED_METADATA] == {
            "retired_in": RETIRED_IN,
            "remove_in": REMOVE_IN,
            "why": "stacks/retired_roles.py",
        }
    for output in kept["outputs"]:
        assert output in foundation["Outputs"], (
            f"{profile}: {output} gone: a rolled-back 0.1 approach stack could not read it"
        )
    # Nothing else is retired: a new role has no reason to be.
    retired = {k for k, r in foundation["Resources"].items() if RETIRED_METADATA in r.get("Metadata", {})}
    assert retired == set(kept["resources"])


def test_an_update_from_0_1_swaps_no_role_in_an_instance_profile_that_hosts_run_with(synthesized):
    """0.1's hosts run with instance profiles holding the 0.1 host roles. Updating such a profile to the
    new role would remove the old one from under the running hosts (IAM API reference,
    RemoveRoleFromInstanceProfile); 0.2 gives the new role new profiles (new logical IDs), so the launch
    templates change and the groups' rolling updates replace the hosts."""
    hosting = synthesized.templates["self-hosted"]["Hosting"]["Resources"]
    old = RELEASE_0_1["self-hosted"]["instance_profiles"]
    assert old
    assert not set(old) & set(hosting), "a 0.1 instance profile would have its role swapped in place"
    profiles = [k for k, r in hosting.items() if r["Type"] == "AWS::IAM::InstanceProfile"]
    assert len(profiles) == len(old)
    for template in (r for r in hosting.values() if r["Type"] == "AWS::EC2::LaunchTemplate"):
        (profile,) = references(template["Properties"]["LaunchTemplateData"]["IamInstanceProfile"])
        assert profile in profiles


@pytest.mark.parametrize("profile", sorted(RELEASE_0_1))
def test_no_stack_of_this_release_uses_a_retired_role(synthesized, profile):
    templates = synthesized.templates[profile]
    retired = RELEASE_0_1[profile]
    foundation_name = f"{profile}-foundation"
    for stack, template in templates.items():
        if stack == "Foundation":
            # Only the retired policies attach to a retired role, and nothing else refers to one.
            for logical_id, resource in template["Resources"].items():
                if logical_id in retired["resources"]:
                    continue
                for role_id in retired["resources"]:
                    assert role_id not in json.dumps(resource), f"{logical_id} uses the retired {role_id}"
            continue
        reads = {
            r["OutputName"] for r in _get_stack_outputs(template) if r.get("StackName") == foundation_name
        }
        assert not reads & set(retired["outputs"]), f"{profile}/{stack} reads a retired role"


def _get_stack_outputs(node) -> list[dict]:
    if isinstance(node, dict):
        if "Fn::GetStackOutput" in node:
            return [node["Fn::GetStackOutput"]]
        return [found for value in node.values() for found in _get_stack_outputs(value)]
    if isinstance(node, list):
        return [found for value in node for found in _get_stack_outputs(value)]
    return []
