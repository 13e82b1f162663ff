"""checkov (its own environment, offline) over every synthesized template: zero failed checks, and no
skip that matches nothing.

Skips are inline template metadata (`Metadata.checkov.skip`) written by `stacks.compliance.skip_checkov`,
each with a reason. checkov runs once, over copies of the templates with that metadata stripped, so
that one run answers both questions: a failed check without a skip on its resource fails the gate, and
a skip whose check does not fail on its resource is stale and fails too. That checkov reads the
metadata exactly this way (a skip applies to the check id on the resource that carries it) is shown on
a small template by `test_checkov_is_live_and_honours_the_skips_that_skip_checkov_writes`.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3

from genai_stack import compliance
from tests.compliance.tools import CHECKOV, CHECKOV_ENV, Resource, checkov_args, skips_in
from tests.conftest import cdk_app


def checkov_reports(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def run_checkov(directory) -> list[dict]:
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV} is missing: `make setup` installs it")
    return checkov_reports(
        subprocess.run(  # noqa: S603 - fixed tool, our own directory
            checkov_args(directory), capture_output=True, text=True, env=CHECKOV_ENV, check=False, timeout=600
        )
    )


def checks(reports: list[dict], outcome: str) -> set[tuple[str, str, str]]:
    """(template, logical id, check id) of every check with `outcome` (failed_checks, skipped_checks)."""
    return {
        (check["file_path"].lstrip("/"), check["resource"].split(".", 1)[1], check["check_id"])
        for report in reports
        for check in report["results"][outcome]
    }


@dataclass
class CheckovRun:
    """checkov over the templates without their skips, and the skips the templates carry."""

    reports: list[dict]
    failed: set[tuple[str, str, str]]
    skips: dict[Resource, list[dict]]
    paths: dict[Resource, str]  # construct path of each resource, for messages

    def where(self, template: str, logical_id: str) -> str:
        return f"{self.paths.get((template, logical_id), logical_id)} ({template})"


@pytest.fixture(scope="module")
def checkov_run(synthesized) -> CheckovRun:
    """The session's checkov run (started when the templates were synthesized: tests/compliance/tools.py)."""
    jobs = synthesized.compliance
    if jobs.checkov is None:
        pytest.fail(jobs.missing)
    reports = checkov_reports(jobs.checkov.result())
    return CheckovRun(
        reports=reports, failed=checks(reports, "failed_checks"), skips=jobs.skips, paths=jobs.paths
    )


def test_checkov_finds_no_failed_check_without_a_skip(checkov_run):
    open_checks = sorted(
        f"{check} {checkov_run.where(template, logical_id)}"
        for template, logical_id, check in checkov_run.failed
        if check not in {s["id"] for s in checkov_run.skips.get((template, logical_id), [])}
    )
    assert not open_checks, "checkov failed checks:\n" + "\n".join(open_checks)
    assert sum(report["summary"]["passed"] for report in checkov_run.reports) >= 20


def test_every_checkov_skip_names_a_check_that_fails_on_its_resource(checkov_run):
    stale = sorted(
        f"{skip['id']} {checkov_run.where(template, logical_id)}"
        for (template, logical_id), entries in checkov_run.skips.items()
        for skip in entries
        if (template, logical_id, skip["id"]) not in checkov_run.failed
    )
    assert not stale, "checkov skips of checks that pass there (remove them):\n" + "\n".join(stale)


def test_every_skip_has_its_reason(checkov_run):
    assert checkov_run.skips, "expected the documented skip on the access-log bucket"
    for (template, logical_id), entries in checkov_run.skips.items():
        for skip in entries:
            assert len((skip.get("comment") or "").split()) >= 8, f"{skip['id']} {template} {logical_id}"


def test_checkov_is_live_and_honours_the_skips_that_skip_checkov_writes(tmp_path):
    app = cdk_app(tmp_path)
    stack = Stack(app, "Live")
    bucket = s3.CfnBucket(stack, "Open")  # no access logs, no versioning, no replication
    compliance.skip_checkov(bucket, compliance.ACCESS_LOG_BUCKET_NOT_LOGGED)
    template_path = Path(app.synth().get_stack_artifact(stack.artifact_id).template_full_path)
    reports = run_checkov(tmp_path)
    assert sum(report["summary"]["failed"] for report in reports) >= 1
    skipped = checks(reports, "skipped_checks")
    # checkov skips exactly what the metadata names, on the resource that carries it, as the suite assumes.
    name = template_path.name
    assert skipped == {
        (name, logical_id, s["id"])
        for logical_id, entries in skips_in(json.loads(template_path.read_text())).items()
        for s in entries
    }
    assert skipped == {(name, "Open", compliance.ACCESS_LOG_BUCKET_NOT_LOGGED.check)}
    assert (name, "Open", "CKV_AWS_18") not in checks(reports, "failed_checks")
