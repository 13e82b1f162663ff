"""Acknowledgement hygiene: a cdk-nag acknowledgement that matches nothing fails.

How cdk-nag 3.0.2 treats an acknowledgement: `Validations.of(scope).acknowledge(...)` records
`{"Annotation::<finding>": reason}` as `aws:cdk:acknowledged-rules` construct metadata (aws-cdk-lib
2.275, core/lib/validation/validations.js), and the synthesized cloud assembly keeps it in each
stack's `<stack>.metadata.json` under the construct path. The pack (NagPack.applyRule) drops a
finding when that id is acknowledged on the resource or any of its ancestors (NagPack.isAcknowledged)
*before* it reports anything: an acknowledged finding appears neither in `validation-report.json`
(no `suppressedViolations` for cdk-nag) nor as an annotation, so the report alone cannot tell a used
acknowledgement from a stale one.

So the test runs the same pack once more over the session's construct tree with another pack name
(`NagPack.packName`, a protected property of cdk-nag's public API): the finding ids become
`Unacknowledged-<rule>...`, which no acknowledgement names, so the pack reports every finding it would
raise without acknowledgements (well under a second: no second synthesis). An acknowledgement is
used when a finding with its exact id is reported on its construct or below it, the rule cdk-nag
itself applies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from genai_stack import compliance
from tests.conftest import cdk_app

ACKNOWLEDGED_RULES = "aws:cdk:acknowledged-rules"  # aws_cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
PACK_NAME = "AwsSolutions"
UNACKNOWLEDGED_PACK_NAME = "Unacknowledged"
# The namespace aws-cdk-lib gives an id acknowledged without one (what compliance.acknowledge writes);
# cdk-nag strips it. Other namespaces (aws-cdk-lib's own `CloudFormation-Validate::` acknowledgements on
# ec2.Vpc) belong to aws-cdk-lib's built-in validation and are not read by cdk-nag.
ANNOTATION_NAMESPACE = re.compile(r"^annotation::", re.IGNORECASE)


def acknowledgements(outdir: Path) -> list[tuple[str, str]]:
    """(finding id, construct path) of every acknowledgement in the cloud assembly at `outdir`."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found: list[tuple[str, str]] = []
    for artifact in manifest["artifacts"].values():
        metadata = dict(artifact.get("metadata") or {})
        if artifact.get("additionalMetadataFile"):
            metadata.update(json.loads((outdir / artifact["additionalMetadataFile"]).read_text()))
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] != ACKNOWLEDGED_RULES:
                    continue
                for qualified_id in entry["data"]:
                    if ANNOTATION_NAMESPACE.match(qualified_id):
                        found.append((ANNOTATION_NAMESPACE.sub("", qualified_id), path.lstrip("/")))
    return found


def unacknowledged_findings(root: IConstruct) -> set[tuple[str, str]]:
    """(finding id, construct path) of every finding of the AWS Solutions pack below `root`, as if
    nothing were acknowledged."""
    pack = AwsSolutionsChecks()
    pack._pack_name = UNACKNOWLEDGED_PACK_NAME  # NagPack.packName: protected, settable by design
    report = pack.validate_scope(root)
    prefix = f"{UNACKNOWLEDGED_PACK_NAME}-"
    findings = {
        (PACK_NAME + "-" + violation.rule_name.removeprefix(prefix), resource.construct_path)
        for violation in report.violations
        for resource in violation.violating_resources
    }
    assert all(finding.startswith(f"{PACK_NAME}-") for finding, _ in findings)
    return findings


def stale_acknowledgements(outdir: Path, root: IConstruct) -> list[str]:
    """Acknowledgements for which cdk-nag reports no finding with that id on that construct or below."""
    findings = unacknowledged_findings(root)
    stale = {
        f"{finding} at {path}"
        for finding, path in acknowledgements(outdir)
        if not any(
            reported == finding and (at == path or at.startswith(f"{path}/")) for reported, at in findings
        )
    }
    return sorted(stale)


def test_every_acknowledgement_of_every_builtin_profile_matches_a_finding(synthesized):
    root = next(iter(synthesized.profiles.values())).node.root
    assert len(acknowledgements(synthesized.outdir)) >= 20, "the assembly holds no acknowledgements"
    stale = stale_acknowledgements(synthesized.outdir, root)
    assert not stale, "cdk-nag acknowledgements that match no finding (remove them):\n" + "\n".join(stale)


# The check itself is live: it tells a used acknowledgement from a stale one on small apps.


def synthesized_app(tmp_path: Path, build) -> tuple[Path, IConstruct]:
    app = cdk_app(tmp_path)
    build(Stack(Stage(app, "hygiene"), "Stack"))
    compliance.enable_checks(app)
    app.synth()  # the gate: raises if a finding were open
    return tmp_path / "assembly-hygiene", app


def reason(text: str) -> str:
    return f"{text}: a test exception with a reason long enough for the reason check."


def test_an_acknowledgement_whose_rule_passes_is_stale_and_one_on_an_ancestor_is_used(tmp_path):
    def build(stack: Stack) -> None:
        bucket = s3.Bucket(stack, "Bare", enforce_ssl=True)  # no access logs (S1); SSL enforced (S10 passes)
        compliance.acknowledge(stack, compliance.Acknowledgement("AwsSolutions-S1", reason("no logs")))
        compliance.acknowledge(bucket, compliance.Acknowledgement("AwsSolutions-S10", reason("ssl")))

    outdir, root = synthesized_app(tmp_path, build)
    assert stale_acknowledgements(outdir, root) == ["AwsSolutions-S10 at hygiene/Stack/Bare"]


@pytest.mark.parametrize("attached", [True, False])
def test_an_acknowledged_managed_policy_that_is_not_attached_is_stale(tmp_path, attached):
    # The case the issue found: an IAM4 acknowledgement for AWSLambdaVPCAccessExecutionRole on a role
    # that never had the policy attached.
    vpc_policy = "service-role/AWSLambdaVPCAccessExecutionRole"
    ack = compliance.Acknowledgement(
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/" + vpc_policy + "]",
        reason("a VPC function's network interfaces"),
    )

    def build(stack: Stack) -> None:
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        if attached:
            role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(vpc_policy))
        compliance.acknowledge(role, ack)

    outdir, root = synthesized_app(tmp_path, build)
    stale = stale_acknowledgements(outdir, root)
    assert stale == ([] if attached else [f"{ack.finding} at hygiene/Stack/Role"])
