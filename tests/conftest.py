"""Shared fixtures. Every built-in profile is synthesized once per session, offline.

The Node guard is installed before anything imports aws_cdk, so the jsii kernel (a Node process)
runs the whole session with network access forbidden; the session synthesis itself also runs with
Python sockets forbidden (tests/test_offline.py checks both guards bite).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.access.recording import RECORDING, install_call_recording
from tests.support.offline import forbid_python_network, install_node_guard

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
install_node_guard()
install_call_recording()  # boto3 calls of our Lambda code, checked against access rows at the end

from genai_stack.cli.synth import cdk_app, synthesize_app  # noqa: E402, F401 - after the Node guard; cdk_app for the tests
from genai_stack.config import builtin_profile_names  # noqa: E402 - after the Node guard
from genai_stack.stage import ProfileStacks  # noqa: E402 - after the Node guard
from tests.compliance.tools import ComplianceJobs, start_compliance_jobs  # noqa: E402 - after the Node guard


@dataclass
class Synthesized:
    """The cloud assembly of every built-in profile: templates by profile and stack construct id."""

    outdir: Path
    profiles: dict[str, ProfileStacks]
    templates: dict[str, dict[str, dict]] = field(default_factory=dict)
    template_paths: list[Path] = field(default_factory=list)
    # checkov and cfn-lint over these templates, running in the background (tests/compliance/tools.py)
    compliance: ComplianceJobs | None = None

    def template(self, profile: str, stack: str) -> dict:
        return self.templates[profile][stack]

    def resources(self, profile: str, stack: str, resource_type: str) -> dict[str, dict]:
        return {
            logical_id: resource
            for logical_id, resource in self.template(profile, stack)["Resources"].items()
            if resource["Type"] == resource_type
        }


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    with forbid_python_network():
        # The CLI's own in-process synthesis (as app.py's build_app): later CLI commands of this
        # session (`genai-stack profiles`, `plan`) reuse these templates instead of synthesizing again.
        app, assembly, _ = synthesize_app("all", outdir)
    profiles = {child.node.id: child for child in app.node.children if isinstance(child, ProfileStacks)}
    result = Synthesized(outdir=outdir, profiles=profiles)
    for stack_artifact in assembly.stacks:
        profile, construct_id = stack_artifact.hierarchical_id.split("/")
        result.templates.setdefault(profile, {})[construct_id] = stack_artifact.template
        result.template_paths.append(Path(stack_artifact.template_full_path))
    # The scanners need only the templates: they start now and run beside the Python tests, whose
    # compliance tests come last and wait for them (pytest_collection_modifyitems below).
    result.compliance = start_compliance_jobs(result, tmp_path_factory.mktemp("checkov") / "without-skips.")
    return result


@pytest.fixture(scope="session")
def profile_names() -> list[str]:
    return builtin_profile_names()


# The access check of recorded boto3 calls (tests/access/test_recorded_calls.py) runs last, after
# every Lambda test of the session has had its calls recorded.
RECORDED_CALLS_CHECK = "tests/access/test_recorded_calls.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that wait for a background job (the compliance scanners, `genai-stack diff`'s
    scenarios, the wheel's install, cfn-lint over a module's templates: marked `waits`) run after the
    others, so the jobs run meanwhile, and the recorded-calls check runs last of all."""
    items.sort(
        key=lambda item: (
            item.nodeid.startswith(RECORDED_CALLS_CHECK),
            item.nodeid.startswith(
                ("tests/compliance/", "tests/cli/test_diff.py::", "tests/test_package.py::")
            )
            or item.get_closest_marker("waits") is not None,
        )
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """`genai-stack diff`'s scenarios (tests/cli/test_diff.py) synthesize two trees each, and the CDK
    CLI's synth of the default profile (tests/test_app.py) and the wheel's build, install and use
    (tests/test_package.py) take processes of their own: start them now, in the background, when any
    test that reads them will run."""
    if any(item.nodeid.startswith("tests/cli/test_diff.py::") for item in session.items):
        from tests.cli import test_diff

        test_diff.start_scenarios(session.config._tmp_path_factory.mktemp("diff-scenarios"))
    if any(item.nodeid.startswith("tests/test_package.py::") for item in session.items):
        from tests import test_package

        test_package.start_wheel_check(session.config._tmp_path_factory.mktemp("wheel"))
    if any(item.nodeid.startswith("tests/test_app.py::test_cdk_cli_synthesizes") for item in session.items):
        from tests import test_app

        test_app.start_cli_synth(session.config._tmp_path_factory.mktemp("cli-synth"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.nodeid.startswith("tests/lambdas/"):
        RECORDING.lambda_tests_run += 1


@pytest.fixture
def stubs():
    """Stubbed clients per (service, region) (tests/support/stubs.py Stubs); the test fails if a queued
    answer was never asked for."""
    from tests.support.stubs import Stubs

    found = Stubs()
    yield found
    found.verify()
