"""cfn-lint over every synthesized template: no errors, no warnings (exceptions only in .cfnlintrc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stacks.config import REPO_ROOT

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_cfn_lint_passes_every_template(synthesized):
    paths = [str(p) for p in synthesized.template_paths]
    assert len(paths) >= 2
    result = subprocess.run(  # noqa: S603 - fixed tool, our own file paths
        [str(CFN_LINT), "--format", "parseable", *paths],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert not result.stdout.strip(), result.stdout
    assert result.returncode == 0, result.stderr


def test_cfn_lint_is_live_it_reports_a_broken_template(tmp_path):
    broken = tmp_path / "broken.template.json"
    broken.write_text('{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Colour": "red"}}}}')
    result = subprocess.run(  # noqa: S603 - fixed tool, our own file paths
        [str(CFN_LINT), "--format", "parseable", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "E3002" in result.stdout  # additional property not allowed
