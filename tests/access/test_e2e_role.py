"""The e2e workflow's role (docs/e2e-role.yaml): it deploys only through the CDK bootstrap's roles,
assumes the smoke role, and removes only what the runs' stacks retain (tagged genai-stack:profile
e2e*), as .github/scripts/e2e_cleanup.py does it."""

from __future__ import annotations

from functools import cache

import pytest

from genai_stack.catalog import registry_account, registry_regions, sagemaker_data
from tests.access.evaluator import Request, evaluate
from tests.access.rows import Call
from tests.access.test_smoke_role import rendered_policy
from tests.support import REPO_ROOT

ACCOUNT, REGION = "123456789012", "us-east-1"
RUN = {"aws:ResourceTag/genai-stack:profile": "e2e4242"}
OTHER = {"aws:ResourceTag/genai-stack:profile": "team"}


def arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


CALLS = [
    Call(
        "sts:AssumeRole",
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-deploy-role-{ACCOUNT}-{REGION}",
        "cdk deploy",
    ),
    Call(
        "sts:AssumeRole",
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-file-publishing-role-{ACCOUNT}-{REGION}",
        "cdk assets",
    ),
    Call("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/genai-stack-smoke-e2e", "the smoke step"),
    Call(
        "cloudformation:UpdateTerminationProtection",
        arn("cloudformation", "stack/e2e4242-foundation/0a1b"),
        "before cdk destroy",
    ),
    Call("tag:GetResources", "*", "e2e_cleanup.tagged"),
    Call(
        "s3:ListBucketVersions", "arn:aws:s3:::e2e4242-foundation-databucket-abc", "empty_and_delete_bucket"
    ),
    Call(
        "s3:DeleteObjectVersion",
        "arn:aws:s3:::e2e4242-foundation-databucket-abc/locked.txt",
        "empty_and_delete_bucket",
    ),
    Call(
        "s3:BypassGovernanceRetention",
        "arn:aws:s3:::e2e4242-foundation-databucket-abc/locked.txt",
        "governance locks",
    ),
    Call("s3:DeleteBucket", "arn:aws:s3:::e2e4242-foundation-databucket-abc", "empty_and_delete_bucket"),
    Call(
        "s3:DeleteObject",
        "arn:aws:s3:::e2e4242-foundation-databucket-abc/plain.txt",
        "DeleteObjects needs it too",
    ),
    Call("sns:DeleteTopic", arn("sns", "e2e4242-foundation-AlarmsTopic-abc"), "remover", RUN),
    Call(
        "s3vectors:DeleteVectorBucket",
        arn("s3vectors", "bucket/e2e4242-vectors"),
        "delete_vector_bucket",
        RUN,
    ),
    Call(
        "sagemaker:DeleteModelPackageGroup",
        arn("sagemaker", "model-package-group/e2e4242-support-tuning"),
        "delete_package_group",
        RUN,
    ),
    Call("logs:DeleteLogGroup", arn("logs", "log-group:e2e4242-foundation-flowlogs"), "remover", RUN),
    Call("dynamodb:DeleteTable", arn("dynamodb", "table/e2e4242-foundation-keys"), "remover", RUN),
    Call("secretsmanager:DeleteSecret", arn("secretsmanager", "secret:e2e4242-login-AbCdEf"), "remover", RUN),
    Call("kms:ScheduleKeyDeletion", arn("kms", "key/0a1b"), "remover", RUN),
    Call("rds:DeleteDBCluster", arn("rds", "cluster:e2e4242-foundation-cluster"), "delete_cluster", RUN),
    Call("bedrock:ListFoundationModels", "*", "catalog refresh"),
    Call("bedrock:ListInferenceProfiles", "*", "catalog refresh"),
    Call("pricing:GetProducts", "*", "catalog refresh"),
    Call("cloudformation:ListTypes", "*", "catalog refresh: regions.json check"),
    *(
        Call(
            "ecr:DescribeImages",
            f"arn:aws:ecr:{region}:{registry_account(region)}:repository/{image['repository']}",
            f"catalog refresh: the {name} image in {region}",
        )
        for name, image in sagemaker_data()["images"].items()
        for region in registry_regions()
    ),
    Call(
        "ecr:DescribeImages",
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-private-images",
        "no other repository",
        expect="deny",
    ),
    # What it must not do.
    Call(
        "sts:AssumeRole",
        f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole",
        "no other role",
        expect="deny",
    ),
    Call(
        "cloudformation:UpdateTerminationProtection",
        arn("cloudformation", "stack/team-foundation/0a1b"),
        "another profile",
        expect="deny",
    ),
    Call(
        "s3:DeleteBucket",
        "arn:aws:s3:::team-foundation-databucket-def",
        "another profile's bucket",
        expect="deny",
    ),
    Call(
        "s3:DeleteObjectVersion",
        "arn:aws:s3:::team-foundation-databucket-def/x",
        "another profile's data",
        expect="deny",
    ),
    Call(
        "logs:DeleteLogGroup",
        arn("logs", "log-group:team-flowlogs"),
        "another profile's logs",
        OTHER,
        expect="deny",
    ),
    Call("kms:ScheduleKeyDeletion", arn("kms", "key/0a1c"), "another profile's key", OTHER, expect="deny"),
    Call("rds:DeleteDBCluster", arn("rds", "cluster:prod"), "an untagged cluster", expect="deny"),
    Call(
        "cloudformation:DeleteStack",
        arn("cloudformation", "stack/e2e4242-foundation/0a1b"),
        "stacks only through the CDK roles",
        expect="deny",
    ),
    Call("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/x", "no IAM changes", expect="deny"),
]


@cache
def e2e_policy():
    """The role's policy as CloudFormation renders it (read once: one row per case below)."""
    return rendered_policy(
        REPO_ROOT / "docs" / "e2e-role.yaml",
        "E2ePolicy",
        {"NamePrefix": "e2e", "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"},
    )


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.expect}-{c.action}-{c.why}")
def test_the_e2e_role_may_do_what_the_workflow_does_and_nothing_else(call):
    policy = e2e_policy()
    principal = f"arn:aws:iam::{ACCOUNT}:role/genai-stack-e2e"
    decision = evaluate(Request(principal, call.action, call.resource, dict(call.context)), [policy])
    assert decision.allowed == (call.expect == "allow"), f"{call.describe()}: {decision.reason}"
