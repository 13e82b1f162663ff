"""checkov (its own environment, offline) over every synthesized template: zero failed checks.

Skips are inline template metadata written by `stacks.compliance.skip_checkov`, each with a reason.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from stacks.config import REPO_ROOT

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# Offline: no download of its policy bundle, no call to the vendor's mapping API (TOOLCHAIN.md trap 9).
OFFLINE_ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


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


@pytest.fixture(scope="module")
def reports(synthesized) -> list[dict]:
    return run_checkov(synthesized.outdir)


def test_checkov_finds_no_failed_check(reports):
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert sum(report["summary"]["passed"] for report in reports) >= 20


def test_every_skip_has_its_reason(reports):
    skipped = [check for report in reports for check in report["results"]["skipped_checks"]]
    assert skipped, "expected the documented skip on the access-log bucket"
    for check in skipped:
        assert len((check.get("check_result", {}).get("suppress_comment") or "").split()) >= 8, check[
            "check_id"
        ]


def test_checkov_is_live_it_fails_a_public_unencrypted_bucket(tmp_path):
    (tmp_path / "bad.template.json").write_text(
        json.dumps(
            {
                "Resources": {
                    "Open": {"Type": "AWS::S3::Bucket", "Properties": {"AccessControl": "PublicRead"}}
                }
            }
        )
    )
    (report,) = run_checkov(tmp_path)
    assert report["summary"]["failed"] >= 1
