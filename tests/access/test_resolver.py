"""The resolver: documented return values, intrinsic functions across stacks, and a refusal for
anything it does not know."""

from __future__ import annotations

import pytest

from tests.access.resolver import Resolver, UnknownReturnValue, UnresolvableValue

FOUNDATION = {
    "Resources": {
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/app/logs"}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Odd": {"Type": "AWS::Example::Thing", "Properties": {}},
    },
    "Outputs": {
        "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "app-key-arn"}},
    },
}
APP = {
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "cache"}},
    }
}


@pytest.fixture
def resolver():
    return Resolver(
        {"app-foundation": FOUNDATION, "app-main": APP}, account="111122223333", region="eu-west-1"
    )


def test_log_group_ref_is_the_name_and_arn_ends_in_a_wildcard(resolver):
    assert resolver.resolve("app-foundation", {"Ref": "Logs"}) == "/app/logs"
    assert resolver.resolve("app-foundation", {"Fn::GetAtt": ["Logs", "Arn"]}) == (
        "arn:aws:logs:eu-west-1:111122223333:log-group:/app/logs:*"
    )


def test_key_ref_is_the_key_id_and_arn_is_built_from_it(resolver):
    key_id = resolver.resolve("app-foundation", {"Ref": "Key"})
    assert (
        resolver.resolve("app-foundation", {"Fn::GetAtt": ["Key", "Arn"]})
        == f"arn:aws:kms:eu-west-1:111122223333:key/{key_id}"
    )


def test_bucket_arn_has_no_region_or_account(resolver):
    name = resolver.resolve("app-foundation", {"Ref": "Bucket"})
    assert name == name.lower()
    assert resolver.resolve("app-foundation", {"Fn::GetAtt": ["Bucket", "Arn"]}) == f"arn:aws:s3:::{name}"


def test_names_are_deterministic():
    one = Resolver({"s": FOUNDATION}).resolve("s", {"Ref": "Bucket"})
    assert one == Resolver({"s": FOUNDATION}).resolve("s", {"Ref": "Bucket"})


def test_functions_and_pseudo_parameters(resolver):
    value = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":dynamodb:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":table/",
                {"Fn::Select": [1, {"Fn::Split": ["/", "x/cache/y"]}]},
            ],
        ]
    }
    assert resolver.resolve("app-main", value) == "arn:aws:dynamodb:eu-west-1:111122223333:table/cache"
    assert resolver.resolve("app-main", {"Fn::Sub": "${Table}-${AWS::URLSuffix}"}) == "cache-amazonaws.com"
    assert resolver.resolve("app-main", {"Fn::Sub": ["${X}!", {"X": {"Ref": "Table"}}]}) == "cache!"


def test_cross_stack_values(resolver):
    arn = resolver.resolve("app-foundation", {"Fn::GetAtt": ["Key", "Arn"]})
    assert resolver.resolve("app-main", {"Fn::ImportValue": "app-key-arn"}) == arn
    output = {
        "Fn::GetStackOutput": {"StackName": "app-foundation", "Region": "eu-west-1", "OutputName": "KeyArn"}
    }
    assert resolver.resolve("app-main", output) == arn
    with pytest.raises(UnresolvableValue):
        resolver.resolve(
            "app-main", {"Fn::GetStackOutput": {**output["Fn::GetStackOutput"], "OutputName": "Nope"}}
        )


def test_dynamic_references_become_fixed_fake_values(resolver):
    value = resolver.resolve("app-main", "{{resolve:ssm:/aws/service/x}}")
    assert value.startswith("resolved-ssm-")
    assert "{{" not in value


def test_unknown_types_and_attributes_raise_instead_of_guessing(resolver):
    with pytest.raises(UnknownReturnValue):
        resolver.resolve("app-foundation", {"Ref": "Odd"})
    with pytest.raises(UnknownReturnValue):
        resolver.resolve("app-foundation", {"Fn::GetAtt": ["Logs", "Nonsense"]})
