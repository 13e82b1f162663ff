"""The CLI's in-process synthesis is memoised per process by profile content (stacks/cli/synth.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from genai_stack.cli import synth
from tests.support import REPO_ROOT


@dataclass
class _Artifact:
    hierarchical_id: str
    stack_name: str
    template: dict


@dataclass
class _App:
    profile: str
    calls: list = field(default_factory=list)

    def synth(self):
        return type(
            "Assembly", (), {"stacks": [_Artifact(f"{self.profile}/Foundation", "f", {"Resources": {}})]}
        )


def test_the_same_profile_synthesizes_once_and_callers_get_copies(tmp_path, monkeypatch):
    calls = []

    def add_profiles(app, selection):
        calls.append(selection)
        return _App(profile=yaml.safe_load(Path(selection).read_text())["name"])

    monkeypatch.setattr(synth, "add_profiles", add_profiles)
    monkeypatch.setattr(synth, "_SYNTHESIZED", {})
    source = (REPO_ROOT / "profiles" / "managed-api.yaml").read_text()
    path = tmp_path / "managed-api.yaml"
    path.write_text(source)
    shutil.copytree(REPO_ROOT / "profiles" / "prompts", tmp_path / "prompts")  # its prompt files
    shutil.copytree(REPO_ROOT / "profiles" / "evaluation", tmp_path / "evaluation")  # its evaluation sets
    first = synth.synthesize(str(path), tmp_path / "a")
    first[0].templates["f"]["Resources"]["Mutated"] = {}
    second = synth.synthesize(str(path), tmp_path / "b")
    assert calls == [str(path)]
    assert second[0].templates["f"] == {"Resources": {}}  # a copy: the caller's edit did not leak
    path.write_text(source.replace("monthly_limit_usd: ", "monthly_limit_usd: 1"))  # other content
    synth.synthesize(str(path), tmp_path / "c")
    assert calls == [str(path), str(path)]


def test_a_profile_synthesized_with_all_the_others_is_not_synthesized_again_alone(tmp_path, monkeypatch):
    """The test session synthesizes every built-in profile at once; a later `plan managed-api` in the
    same process used to synthesize managed-api again (the memo was keyed by the whole selection)."""
    calls = []
    names = synth.load_profiles("all")

    def add_profiles(app, selection):
        calls.append(selection)
        stacks = [_Artifact(f"{p.name}/Foundation", f"{p.name}-foundation", {"Resources": {}}) for p in names]
        return type("App", (), {"synth": lambda self: type("Assembly", (), {"stacks": stacks})})()

    monkeypatch.setattr(synth, "add_profiles", add_profiles)
    monkeypatch.setattr(synth, "_SYNTHESIZED", {})
    everything = synth.synthesize("all", tmp_path / "all")
    (one,) = synth.synthesize("managed-api", tmp_path / "one")
    assert calls == ["all"]
    assert one.templates == {"managed-api-foundation": {"Resources": {}}}
    assert {s.profile.name for s in everything} >= {"managed-api", "self-hosted"}
