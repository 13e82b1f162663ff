"""checkov (its own environment, offline) over every synthesized template: zero failed checks, and no
skip that matches nothing.

Skips are inline template metadata (`Metadata.checkov.skip`) written by `stacks.compliance.skip_checkov`,
each with a reason. checkov runs once, over copies of the templates with that metadata stripped, so
that one run answers both questions: a failed check without a skip on its resource fails the gate, and
a skip whose check does not fail on its resource is stale (DESIGN.md rule 12). That checkov reads the
metadata exactly this way (a skip applies to the check id on the resource that carries it) is shown on
a small template by `test_checkov_is_live_and_honours_the_skips_that_skip_checkov_writes`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3

from stacks import compliance
from stacks.config import REPO_ROOT
from tests.conftest import cdk_app

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# Offline: no download of its policy bundle, no call to the vendor's mapping API (TOOLCHAIN.md trap 9).
OFFLINE_ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}

BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}")  # checkov.common.util.secrets, "general" patterns
Resource = tuple[str, str]  # (template path relative to the scanned directory, logical id)


def run_checkov(directory) -> list[dict]:
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV} is missing: `make setup` installs it")
    result = subprocess.run(  # noqa: S603 - fixed tool, our own directory
        [
            str(CHECKOV),
            "-d",
            str(directory),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=OFFLINE_ENV,
        check=False,
        timeout=600,
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def checks(reports: list[dict], outcome: str) -> set[tuple[str, str, str]]:
    """(template, logical id, check id) of every check with `outcome` (failed_checks, skipped_checks)."""
    return {
        (check["file_path"].lstrip("/"), check["resource"].split(".", 1)[1], check["check_id"])
        for report in reports
        for check in report["results"][outcome]
    }


def skips_in(template: dict) -> dict[str, list[dict]]:
    """The checkov skips of each resource of a template: {logical id: [{"id", "comment"}]}."""
    return {
        logical_id: resource["Metadata"]["checkov"]["skip"]
        for logical_id, resource in template.get("Resources", {}).items()
        if (resource.get("Metadata") or {}).get("checkov", {}).get("skip")
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
def checkov_run(synthesized, tmp_path_factory) -> CheckovRun:
    # checkov parses JSON as YAML and adds the file's path to every mapping as `__file__`; CKV_AWS_45
    # runs its secret patterns over the Lambda environment mapping, `__file__` included, and the
    # base64 pattern `[A-Za-z0-9+/]{40,}` matches a path with 40 such characters before `.template`.
    # A directory name ending in "." keeps that run to the template's own name.
    stripped = tmp_path_factory.mktemp("checkov") / "without-skips."
    skips: dict[Resource, list[dict]] = {}
    paths: dict[Resource, str] = {}
    for path in synthesized.template_paths:
        name = str(path.relative_to(synthesized.outdir))
        template = json.loads(path.read_text())
        for logical_id, entries in skips_in(template).items():
            skips[(name, logical_id)] = entries
        for logical_id, resource in template.get("Resources", {}).items():
            metadata = resource.get("Metadata") or {}
            paths[(name, logical_id)] = metadata.get("aws:cdk:path", logical_id)
            metadata.pop("checkov", None)
        copy = stripped / name
        assert not BASE64_RUN.search(str(copy)), f"{copy}: checkov would take this path for a secret"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(json.dumps(template, indent=1))  # as the CDK writes it: line numbers stay useful
    reports = run_checkov(stripped)
    return CheckovRun(reports=reports, failed=checks(reports, "failed_checks"), skips=skips, paths=paths)


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
