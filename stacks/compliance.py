"""Compliance: the cdk-nag rule pack and every acknowledgement of a finding, each with its reason.

Stacks call `acknowledge(resource, ACK)` next to the resource the finding is about; the finding id
and the reason live here so that a reviewer sees every exception to the rules in one file.
checkov skips work the same way (`skip_checkov(resource, SKIP)`): they are written into the resource's
template metadata, where checkov reads them and where a template diff shows them. cfn-lint exceptions,
if any, live in `.cfnlintrc` with their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnResource, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# Resource types that hold data or identity: retained on stack deletion, logical IDs pinned by
# tests/stacks/test_stateful.py (a changed logical ID means CloudFormation replaces the resource).
STATEFUL_RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::S3Vectors::VectorBucket",
        "AWS::S3Vectors::Index",
        "AWS::OpenSearchServerless::Collection",
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::EFS::FileSystem",
        "AWS::Logs::LogGroup",
        "AWS::SageMaker::ModelPackageGroup",
    }
)


@dataclass(frozen=True)
class Acknowledgement:
    """One accepted cdk-nag finding: the exact rule id (with `[finding]` where the rule has several)."""

    finding: str
    reason: str


# The acknowledgements in force. Each is defined here with its finding and reason and applied with
# `acknowledge(...)` next to its resource. None so far: the foundation passes the AWS Solutions pack
# as it is (the access-log bucket counts as compliant for S1 because it is a log delivery target).


@dataclass(frozen=True)
class CheckovSkip:
    """One accepted checkov failure: the check id and why it does not apply to that resource."""

    check: str
    reason: str


ACCESS_LOG_BUCKET_NOT_LOGGED = CheckovSkip(
    check="CKV_AWS_18",
    reason=(
        "This bucket is the target of the other buckets' S3 server access logs; logging it into itself "
        "would log its own log deliveries, and a second log bucket would only move the finding."
    ),
)


def enable_checks(scope: IConstruct) -> None:
    """Run the AWS Solutions pack on every resource below `scope` at synth (cdk-nag 3 plugin API).

    A finding that is not acknowledged fails the synthesis with the validation report.
    """
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def acknowledge(scope: IConstruct, *acknowledgements: Acknowledgement) -> None:
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=a.finding, reason=a.reason) for a in acknowledgements)
    )


def skip_checkov(resource: CfnResource, *skips: CheckovSkip) -> None:
    """Write checkov's inline skip metadata (`Metadata.checkov.skip`) onto one resource."""
    existing = (resource.get_metadata("checkov") or {}).get("skip", [])
    resource.add_metadata(
        "checkov", {"skip": [*existing, *({"id": s.check, "comment": s.reason} for s in skips)]}
    )
