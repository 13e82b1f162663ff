"""genai-stack as a library: the wheel built from this checkout, installed into a fresh virtual
environment outside it, used as a platform team would (tests/support/wheel_check.py does the steps in
the background, started at collection; these tests read its report)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from genai_stack.config import builtin_profile_names
from tests.support import REPO_ROOT
from tests.support.background import BackgroundRun

# The repository's folders and where the wheel puts them (pyproject.toml, [tool.setuptools] package-dir).
FOLDERS = {"stacks": "genai_stack", "lambdas": "genai_stack/lambdas", "profiles": "genai_stack/profiles"}

_RUN: BackgroundRun | None = None


def start_wheel_check(workdir: Path) -> None:
    global _RUN
    if _RUN is None:
        _RUN = BackgroundRun(
            [sys.executable, REPO_ROOT / "tests" / "support" / "wheel_check.py", REPO_ROOT, workdir],
            timeout=900,
        )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    start_wheel_check(tmp_path_factory.mktemp("wheel"))
    done = _RUN.result()
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def step(report: dict, name: str) -> dict:
    result = report["steps"][name]
    assert result["returncode"] == 0, f"{name}: {result['args']}\n{result['stderr'][-3000:]}"
    assert "Traceback" not in result["stderr"], result["stderr"][-3000:]
    return result


def test_the_wheel_builds_without_warnings_and_holds_every_file_of_the_three_folders(report):
    build = step(report, "build")
    assert not re.search(r"(?i)warning|deprecat|ambiguous", build["stderr"]), build["stderr"][-3000:]
    expected = {
        f"{target}/{path.relative_to(REPO_ROOT / folder).as_posix()}"
        for folder, target in FOLDERS.items()
        for path in (REPO_ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    shipped = {name for name in report["wheel"] if ".dist-info/" not in name}
    assert shipped == expected
    # Lambda runs the gateway's wrapper script itself: it must stay executable.
    assert report["executable"] == ["genai_stack/lambdas/gateway/bootstrap"]


def test_the_library_asks_for_version_ranges_not_exact_pins(report):
    requires = [line for line in report["metadata"].splitlines() if line.startswith("Requires-Dist:")]
    library = [line for line in requires if "extra ==" not in line]
    assert any("aws-cdk-lib" in line for line in library)
    assert not [line for line in library if "==" in line]
    assert all("<" in line for line in library), library


def test_the_cli_lists_the_built_in_profiles_and_validates_a_copied_one_outside_the_checkout(report):
    rows = json.loads(step(report, "profiles")["stdout"])
    assert sorted(row["name"] for row in rows) == builtin_profile_names()
    assert all(row["fixed_monthly_usd"] > 0 and row["stacks"] for row in rows)
    assert json.loads(step(report, "validate")["stdout"]) == {"valid": True, "files": {"team.yaml": []}}


def test_an_app_with_its_own_stacks_package_synthesizes_two_constructs_and_a_profile(report):
    """The team's app has a `stacks` package of its own (the clash the old package names had) and
    uses Guardrail and CostControls from genai_stack.constructs, and ProfileStacks for its profile."""
    step(report, "app")
    templates = report["templates"]
    assert "TeamAi.template.json" in templates
    for part in ("Foundation", "Bedrock", "Observability"):
        assert any(name.startswith(f"Team{part}") for name in templates), (part, templates)
    team_ai = json.loads(report["team_ai_template"])
    types = {resource["Type"] for resource in team_ai["Resources"].values()}
    assert {"AWS::Bedrock::Guardrail", "AWS::Budgets::Budget", "AWS::CE::AnomalyMonitor"} <= types


def test_no_function_imports_its_own_package_absolutely():
    """In the wheel the functions are genai_stack.lambdas.*: an absolute `lambdas.` import would work in
    Lambda and in the checkout but fail there. They import relatively."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in (REPO_ROOT / "lambdas").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import) lambdas\b", line)
    ]
    assert offenders == []
