"""The compliance scanners as the suite runs them: checkov (its own environment, offline) and cfn-lint,
each once over every synthesized template, started in the background as soon as the session's
templates exist (`start_compliance_jobs`, called by the `synthesized` fixture)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tests.support import REPO_ROOT
from tests.support.background import BackgroundRun

if TYPE_CHECKING:
    from tests.conftest import Synthesized

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# Offline: no download of its policy bundle, no call to the vendor's mapping API.
CHECKOV_ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}")  # checkov.common.util.secrets, "general" patterns
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

Resource = tuple[str, str]  # (template path relative to the scanned directory, logical id)


def checkov_args(directory: Path) -> list[str]:
    return [
        str(CHECKOV), "-d", str(directory), "--framework", "cloudformation", "--skip-download",
        "--output", "json",
    ]  # fmt: skip


def ignored_checks(config: Path = REPO_ROOT / ".cfnlintrc") -> list[str]:
    return list(yaml.safe_load(config.read_text()).get("ignore_checks") or [])


_LINTS: dict[tuple[str, ...], BackgroundRun] = {}


def cfn_lint_later(paths: Iterable[str | Path]) -> BackgroundRun:
    """cfn-lint (with .cfnlintrc) over a test module's own templates, started by the module's fixture
    as soon as they are synthesized: it runs on the other core while the module's tests run, and the
    module's lint test waits for the result. One run per set of templates."""
    key = tuple(sorted(str(path) for path in paths))
    if key not in _LINTS:
        _LINTS[key] = BackgroundRun([CFN_LINT, "--format", "parseable", *key], cwd=REPO_ROOT)
    return _LINTS[key]


def cfn_lint_args(paths: list[str], *options: str) -> list[str]:
    return [str(CFN_LINT), "--format", "parseable", *options, "--", *paths]


def skips_in(template: dict) -> dict[str, list[dict]]:
    """The checkov skips of each resource of a template: {logical id: [{"id", "comment"}]}."""
    return {
        logical_id: resource["Metadata"]["checkov"]["skip"]
        for logical_id, resource in template.get("Resources", {}).items()
        if (resource.get("Metadata") or {}).get("checkov", {}).get("skip")
    }


@dataclass
class ComplianceJobs:
    """The two scanner runs, and what the checkov run needs to judge the skips."""

    checkov: BackgroundRun | None  # None: checkov is not installed (`missing` says where)
    missing: str | None
    cfn_lint: BackgroundRun
    skips: dict[Resource, list[dict]]
    paths: dict[Resource, str]  # construct path of each resource, for messages


def start_compliance_jobs(synthesized: Synthesized, stripped: Path) -> ComplianceJobs:
    """Start cfn-lint over the templates and checkov over copies of them without their checkov skips
    (so one checkov run shows both the open failures and the stale skips). `stripped` must end in "."
    (see the comment below)."""
    # checkov parses JSON as YAML and adds the file's path to every mapping as `__file__`; CKV_AWS_45
    # runs its secret patterns over the Lambda environment mapping, `__file__` included, and the
    # base64 pattern `[A-Za-z0-9+/]{40,}` matches a path with 40 such characters before `.template`.
    # A directory name ending in "." keeps that run to the template's own name.
    assert stripped.name.endswith("."), stripped
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
    ignored = ignored_checks()
    cfn_lint = BackgroundRun(
        cfn_lint_args(
            [str(p) for p in synthesized.template_paths],
            *(["--mandatory-checks", *ignored] if ignored else []),
        ),
        cwd=REPO_ROOT,  # reads .cfnlintrc
    )
    if not CHECKOV.is_file():
        return ComplianceJobs(None, f"{CHECKOV} is missing: `make setup` installs it", cfn_lint, skips, paths)
    checkov = BackgroundRun(checkov_args(stripped), env=CHECKOV_ENV)
    return ComplianceJobs(checkov, None, cfn_lint, skips, paths)
