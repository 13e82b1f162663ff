"""IAM conditions that scope a role's control-plane actions to the resources its construct tags, and
the condition that lets a role use a KMS key only through one AWS service (`through`).

A construct that creates AWS resources with `tags` (and puts them on everything it creates) lets its
role create only with exactly those tags (`request_tags`) and stop, move or delete only what carries one
of them (`tag_scoped`), where the Service Authorization Reference lists aws:RequestTag/aws:TagKeys or
aws:ResourceTag for the action (tests/stacks/test_resource_policies.py checks which actions do).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def via_service(scope: IConstruct, service: str) -> str:
    """kms:ViaService's value for `service` in the scope's region: the key is used only in requests
    that service makes for the caller (AWS KMS developer guide, "kms:ViaService")."""
    return f"{service}.{Stack.of(scope).region}.amazonaws.com"


def through(scope: IConstruct, service: str) -> dict[str, dict[str, str]]:
    """The condition of a key statement used only through `service` (via_service)."""
    return {"StringEquals": {"kms:ViaService": via_service(scope, service)}}


def key_through_s3(scope: IConstruct, key_arn: str, *, sid: str) -> iam.PolicyStatement:
    """Read and write objects of an SSE-KMS bucket encrypted with `key_arn`: GetObject needs
    kms:Decrypt, PutObject kms:GenerateDataKey (Amazon S3 user guide, "Using server-side encryption
    with AWS KMS keys": https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html),
    and only in requests S3 makes for the caller (`through`)."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["kms:Decrypt", "kms:GenerateDataKey"],
        resources=[key_arn],
        conditions=through(scope, "s3"),
    )


def request_tags(tags: Mapping[str, str]) -> dict[str, dict[str, object]] | None:
    """A create (or its tag-on-create) only with exactly `tags`: each as aws:RequestTag, and no other
    key (aws:TagKeys). None without tags."""
    if not tags:
        return None
    return {
        "StringEquals": {f"aws:RequestTag/{key}": value for key, value in sorted(tags.items())},
        "ForAllValues:StringEquals": {"aws:TagKeys": sorted(tags)},
    }


def tag_scoped(
    sid: str, actions: list[str], resources: list[str], tags: Mapping[str, str]
) -> list[iam.PolicyStatement]:
    """Statements that admit only resources carrying one of `tags` (aws:ResourceTag). One statement per
    tag, so any one of them admits: what was created before a tag was added, or before a tag's value
    changed (a cost tag), stays reachable through the others. Without tags, one statement without a
    condition."""
    if not tags:
        return [iam.PolicyStatement(sid=sid, actions=actions, resources=resources)]
    return [
        iam.PolicyStatement(
            sid=sid if index == 0 else f"{sid}{index + 1}",
            actions=actions,
            resources=resources,
            conditions={"StringEquals": {f"aws:ResourceTag/{key}": value}},
        )
        for index, (key, value) in enumerate(sorted(tags.items()))
    ]


def sagemaker_tag_on_create(
    sid: str, resources: list[str], tags: Mapping[str, str], creating: list[str]
) -> iam.PolicyStatement:
    """sagemaker:AddTags for the tags a SageMaker create call carries (SageMaker authorizes a create's
    Tags as AddTags too), only with exactly `tags` and only as part of the `creating` calls
    (sagemaker:TaggingAction names the create operation; Service Authorization Reference, SageMaker AI):
    no tagging of anything afterwards."""
    created = request_tags(tags)
    assert created is not None, "tag-on-create needs tags"
    action = creating[0] if len(creating) == 1 else sorted(creating)
    return iam.PolicyStatement(
        sid=sid,
        actions=["sagemaker:AddTags"],
        resources=resources,
        conditions={
            **created,
            "StringEquals": {**created["StringEquals"], "sagemaker:TaggingAction": action},
        },
    )
