"""docs/security.md lists every accepted exception to the rule sets, generated from the code
(genai_stack.compliance_report): a new acknowledgement or skip fails here until the page lists it
(`make docs-security` rewrites the section), and one the templates carry but the collection misses
fails too."""

from __future__ import annotations

import json
import os

import pytest

from genai_stack import compliance_report
from genai_stack.compliance_report import (
    AcceptedException,
    cfn_lint_exceptions,
    code_exceptions,
    exceptions_markdown,
    replace_section,
)
from tests.compliance.test_acknowledgements import ACKNOWLEDGED_RULES, ANNOTATION_NAMESPACE
from tests.support import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "security.md"


def _all_exceptions() -> list[AcceptedException]:
    return code_exceptions() + cfn_lint_exceptions(REPO_ROOT / ".cfnlintrc")


def test_the_page_lists_every_accepted_exception_in_the_code():
    section = exceptions_markdown(_all_exceptions())
    page = PAGE.read_text(encoding="utf-8")
    if os.environ.get("WRITE_SECURITY_DOCS") == "1":
        page = replace_section(page, section)
        PAGE.write_text(page, encoding="utf-8")
    assert section in page, "docs/security.md's accepted exceptions are out of date: run `make docs-security`"


def test_the_collection_misses_none_the_built_in_templates_carry(synthesized):
    """Every cdk-nag acknowledgement (the assembly's acknowledged-rules metadata, with its reason) and
    every checkov skip (template metadata) of the built-in profiles is in the code's list."""
    listed = {(e.tool, e.rule, e.reason) for e in code_exceptions()}
    in_force: set[tuple[str, str, str]] = set()
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        metadata = dict(artifact.get("metadata") or {})
        if artifact.get("additionalMetadataFile"):
            metadata.update(json.loads((synthesized.outdir / artifact["additionalMetadataFile"]).read_text()))
        for entries in metadata.values():
            for entry in entries:
                if entry["type"] == ACKNOWLEDGED_RULES:
                    for qualified_id, reason in entry["data"].items():
                        if ANNOTATION_NAMESPACE.match(qualified_id):
                            finding = ANNOTATION_NAMESPACE.sub("", qualified_id).split("[", 1)[0]
                            in_force.add(("cdk-nag", finding, reason))
    for templates in synthesized.templates.values():
        for template in templates.values():
            for resource in template["Resources"].values():
                for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
                    in_force.add(("checkov", skip["id"], skip["comment"]))
    assert len(in_force) >= 20
    missing = sorted(in_force - listed)
    assert not missing, f"in the templates but not found in the code's list: {missing}"


def test_an_exception_whose_reason_is_computed_is_refused(tmp_path):
    (tmp_path / "module.py").write_text(
        "from genai_stack.compliance import Acknowledgement\n"
        "WHY = 'because'\n"
        "ACK = Acknowledgement(finding='AwsSolutions-IAM5', reason=WHY)\n"
    )
    with pytest.raises(ValueError, match=r"module.py:3: Acknowledgement needs a literal rule and reason"):
        compliance_report.code_exceptions(tmp_path)


def test_a_cfn_lint_rule_ignored_without_a_reason_is_refused(tmp_path):
    config = tmp_path / ".cfnlintrc"
    config.write_text("ignore_checks:\n  # why W1 is off\n  - W1\n  - W2\n")
    with pytest.raises(ValueError, match="W2 is ignored without a comment"):
        cfn_lint_exceptions(config)
    config.write_text("ignore_checks:\n  # why W1 is off\n  - W1\n")
    assert cfn_lint_exceptions(config) == [AcceptedException("cfn-lint", "W1", "why W1 is off", ".cfnlintrc")]
