"""app.py and the real CDK CLI: the profile selection, errors without tracebacks, same templates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genai_stack.config import DEFAULT_PROFILE, builtin_profile_names
from tests.support import REPO_ROOT
from tests.support.background import LOWER_PRIORITY

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
BAD_PROFILE = "name: x\nregion: us-east-1\n"


def run(command: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", **env}
    return subprocess.run(  # noqa: S603 - our own commands
        command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment, check=False, timeout=600
    )


@pytest.fixture
def bad_profile(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PROFILE)
    return path


def test_python_app_reports_a_bad_profile_without_a_traceback(tmp_path, bad_profile):
    result = run(
        [sys.executable, "app.py"],
        tmp_path,
        CDK_CONTEXT_JSON=json.dumps({"profile": str(bad_profile)}),
        CDK_OUTDIR=str(tmp_path / "out"),
    )
    assert result.returncode == 1
    assert f"{bad_profile}: budget: required but missing" in result.stderr
    assert f"{bad_profile}: name: 'x' is not allowed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


WITH_MODULES_REPORTED = (
    "import runpy, sys\n"
    "try:\n"
    "    runpy.run_path('app.py', run_name='__main__')\n"
    "finally:\n"
    "    print('aws_cdk loaded' if 'aws_cdk' in sys.modules else 'aws_cdk not loaded', file=sys.stderr)\n"
)


def test_a_bad_profile_is_reported_before_the_cdk_starts(tmp_path, bad_profile):
    """The profile is validated from the CLI's context (CDK_CONTEXT_JSON, or the overflow file) before
    aws_cdk and its Node.js kernel load: the error comes in a fraction of the time."""
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps({"profile": str(bad_profile)}))
    for context in ({"CDK_CONTEXT_JSON": json.dumps({"profile": str(bad_profile)})},
                    {"CDK_CONTEXT_JSON": "{}", "CONTEXT_OVERFLOW_LOCATION_ENV": str(overflow)}):  # fmt: skip
        result = run([sys.executable, "-c", WITH_MODULES_REPORTED], tmp_path, **context)
        assert result.returncode == 1, result.stderr
        assert f"{bad_profile}: budget: required but missing" in result.stderr
        assert "aws_cdk not loaded" in result.stderr


def test_python_app_lists_the_profiles_for_an_unknown_name(tmp_path):
    result = run(
        [sys.executable, "app.py"],
        tmp_path,
        CDK_CONTEXT_JSON=json.dumps({"profile": "nope"}),
        CDK_OUTDIR=str(tmp_path / "out"),
    )
    assert result.returncode == 1
    available = ", ".join(builtin_profile_names())
    assert f"nope: no built-in profile of that name (available: {available}, or 'all')" in result.stderr
    assert "Traceback" not in result.stderr


def test_cdk_cli_reports_a_bad_profile_without_a_traceback(tmp_path, bad_profile):
    result = run([str(CDK), "synth", "-c", f"profile={bad_profile}", "-o", str(tmp_path / "out")], tmp_path)
    assert result.returncode != 0
    assert f"{bad_profile}: budget: required but missing" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


_CLI_SYNTH: list[tuple[subprocess.Popen, Path]] = []


def start_cli_synth(root: Path) -> None:
    """`cdk synth --quiet` (the README's `make synth`: the default profile) in its own process, started
    once the tests are collected (about 9 s of one core; the test below waits for it)."""
    if not _CLI_SYNTH:
        out = root / "cli.out"
        environment = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
        process = subprocess.Popen(  # noqa: S603 - our own command
            [*LOWER_PRIORITY, str(CDK), "synth", "--quiet", "-o", str(out)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _CLI_SYNTH.append((process, out))


def test_cdk_cli_synthesizes_the_default_profile_to_the_same_templates_as_the_tests(tmp_path, synthesized):
    """The README's `cdk synth` (no context: the default profile, managed-api) with the project's feature
    flags gives exactly the templates the tests assert on. One profile proves the CLI's path (app.py,
    cdk.json, the feature flags) equal to the tests' in-process one (both call stage.add_profiles); the
    session synthesizes every profile, and `genai-stack diff` runs app.py with lists of them."""
    start_cli_synth(tmp_path)  # run alone: start it now
    process, out = _CLI_SYNTH[0]
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    cli_stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert len(cli_stacks) == len(synthesized.templates[DEFAULT_PROFILE])
    for artifact in cli_stacks:
        profile, stack = artifact["displayName"].split(" ")[0].split("/")
        assert profile == DEFAULT_PROFILE
        cli_template = json.loads((out / artifact["properties"]["templateFile"]).read_text())
        assert without_version_reporting(cli_template) == without_version_reporting(
            synthesized.template(profile, stack)
        ), f"{profile}/{stack} differs between cdk synth and the tests"


def without_version_reporting(template: dict) -> dict:
    """Drop only the CDKMetadata resource (version reporting), which the CLI adds and tests leave out."""
    template = json.loads(json.dumps(template))
    template["Resources"].pop("CDKMetadata", None)
    template.get("Conditions", {}).pop("CDKMetadataAvailable", None)
    if not template.get("Conditions", True):
        del template["Conditions"]
    return template
