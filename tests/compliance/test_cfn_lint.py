"""cfn-lint over every synthesized template: no errors, no warnings (exceptions only in .cfnlintrc),
and no exception in .cfnlintrc that matches nothing (a stale exception fails).

The one run passes the ignored rules as `--mandatory-checks` (reported whatever the configuration
ignores), so it shows both what the exceptions hide and whether each still hides something.
"""

from __future__ import annotations

import re
import subprocess

from tests.compliance.tools import cfn_lint_args, ignored_checks
from tests.support import REPO_ROOT

# cfn-lint's exit status: a bit per level of the matches found (2 error, 4 warning, 8 informational).
LEVEL_BITS = {"E": 2, "W": 4, "I": 8}
PARSEABLE_RULE = re.compile(r":(?P<rule>[EWI]\d+):")


def run_cfn_lint(paths: list[str], *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed tool, our own file paths
        cfn_lint_args(paths, *options),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,  # reads .cfnlintrc
        check=False,
    )


def test_cfn_lint_passes_every_template_and_each_exception_still_matches(synthesized):
    assert len(synthesized.template_paths) >= 2
    ignored = ignored_checks()
    # The session's run, started when the templates were synthesized, with the ignored rules passed
    # as --mandatory-checks (tests/compliance/tools.py).
    result = synthesized.compliance.cfn_lint.result()
    assert result.returncode != 1, result.stderr  # 1: cfn-lint itself failed
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    rules = [match["rule"] for line in lines if (match := PARSEABLE_RULE.search(line))]
    assert len(rules) == len(lines), result.stdout

    def exception_for(rule: str) -> str | None:
        return next((ignore for ignore in ignored if rule.startswith(ignore)), None)

    open_matches = [line for line, rule in zip(lines, rules, strict=True) if exception_for(rule) is None]
    assert not open_matches, "\n".join(open_matches)
    stale = sorted(set(ignored) - {exception_for(rule) for rule in rules})
    assert not stale, f".cfnlintrc ignores rules that match nothing in any template (remove them): {stale}"
    allowed = sum({LEVEL_BITS[ignore[0]] for ignore in ignored if ignore[:1] in LEVEL_BITS})
    assert result.returncode & ~allowed == 0, result.stderr


def test_cfn_lint_is_live_it_reports_a_broken_template(tmp_path):
    broken = tmp_path / "broken.template.json"
    broken.write_text('{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Colour": "red"}}}}')
    result = run_cfn_lint([str(broken)])
    assert result.returncode != 0
    assert "E3002" in result.stdout  # additional property not allowed


def test_an_ignored_rule_is_reported_when_mandatory_so_a_stale_exception_can_be_seen(tmp_path):
    # A function that DependsOn its role beside Fn::GetAtt of it: the W3005 that .cfnlintrc ignores.
    template = tmp_path / "w3005.template.json"
    template.write_text(
        '{"Resources": {"R": {"Type": "AWS::SNS::Topic"}, "T": {"Type": "AWS::SNS::Topic", "DependsOn": "R",'
        ' "Properties": {"TopicName": {"Fn::GetAtt": ["R", "TopicName"]}}}}}'
    )
    assert "W3005" in ignored_checks()
    assert "W3005" not in run_cfn_lint([str(template)]).stdout
    assert ":W3005:" in run_cfn_lint([str(template)], "--mandatory-checks", "W3005").stdout


def test_the_documented_role_templates_pass_cfn_lint():
    """docs/smoke-role.yaml and docs/e2e-role.yaml are deployed as they are: cfn-lint finds nothing."""
    result = run_cfn_lint(["docs/smoke-role.yaml", "docs/e2e-role.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr
