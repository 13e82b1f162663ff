"""FoundationStack: key, buckets and alarm topic, asserted on the synthesized templates."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from genai_stack.components.alarm_topic import ALARM_PUBLISHERS

PROFILE = "managed-api"


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_json(synthesized.template(PROFILE, "Foundation"))


@pytest.fixture(scope="module")
def buckets(synthesized) -> dict[str, dict]:
    found = synthesized.resources(PROFILE, "Foundation", "AWS::S3::Bucket")
    return {
        name: found[logical]
        for logical in found
        for name in ("AccessLogs", "Data", "Artifacts")
        if logical.startswith(name)
    }


def test_the_key_rotates_and_is_retained(template):
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_the_key_lets_only_the_alarm_publishers_and_this_regions_logs_use_it(synthesized):
    (key,) = synthesized.resources(PROFILE, "Foundation", "AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    for publisher in ALARM_PUBLISHERS:
        statement = statements[publisher.sid]
        assert statement["Principal"] == {"Service": publisher.service}
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
        if publisher.key_source_account:
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            }
        else:  # EventBridge, Cost Anomaly Detection (alarm_topic.ALARM_PUBLISHERS says why)
            assert "Condition" not in statement
    deny = statements["DenyGrantsNotForAwsResources"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "kms:CreateGrant"
    assert deny["Condition"] == {
        "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
    }
    logs = statements["AllowCloudWatchLogs"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


def test_three_buckets_private_versioned_and_retained(buckets):
    assert set(buckets) == {"AccessLogs", "Data", "Artifacts"}
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
        assert rules["expire-noncurrent-versions"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 7
        }


def test_data_and_artifacts_use_the_key_and_the_log_bucket_uses_sse_s3(buckets):
    for name in ("Data", "Artifacts"):
        (rule,) = buckets[name]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith(
            "PlatformKey"
        )
        assert rule["BucketKeyEnabled"] is True
    (rule,) = buckets["AccessLogs"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_data_and_artifacts_log_into_the_access_log_bucket_which_expires_logs(buckets, synthesized):
    log_bucket_id = next(
        k
        for k in synthesized.resources(PROFILE, "Foundation", "AWS::S3::Bucket")
        if k.startswith("AccessLogs")
    )
    for name, prefix in (("Data", "data/"), ("Artifacts", "artifacts/")):
        logging = buckets[name]["Properties"]["LoggingConfiguration"]
        assert logging == {"DestinationBucketName": {"Ref": log_bucket_id}, "LogFilePrefix": prefix}
    rules = {r["Id"]: r for r in buckets["AccessLogs"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-objects"]["ExpirationInDays"] == 365


def test_every_bucket_denies_requests_without_tls(synthesized):
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::S3::BucketPolicy")
    assert len(policies) == len(synthesized.resources(PROFILE, "Foundation", "AWS::S3::Bucket")) >= 3
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        tls = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"}
        ]
        assert tls, "bucket policy without the TLS-only deny"
        assert any(
            s.get("Condition", {}).get("NumericLessThan") == {"s3:TlsVersion": 1.2} for s in statements
        )


def bucket_policy_allows(synthesized, bucket_prefix: str) -> list[dict]:
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"]["Ref"].startswith(bucket_prefix)]
    return [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def test_only_the_s3_logging_service_may_write_to_the_log_bucket(synthesized):
    allows = bucket_policy_allows(synthesized, "AccessLogs")
    assert allows
    for statement in allows:
        assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert statement["Action"] == "s3:PutObject"


def test_bedrock_may_write_invocation_logs_only_under_its_prefix_of_the_data_bucket(synthesized):
    (statement,) = bucket_policy_allows(synthesized, "Data")
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    resource = json.dumps(statement["Resource"])
    assert "/bedrock-invocation-logs/AWSLogs/" in resource
    assert resource.endswith('"/BedrockModelInvocationLogs/*"]]}')
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]
    assert bucket_policy_allows(synthesized, "Artifacts") == []


def test_the_alarm_topic_is_encrypted_tls_only_and_retained(template, synthesized):
    template.has_resource(
        "AWS::SNS::Topic",
        {
            "Properties": {
                "KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^PlatformKey"), "Arn"]}
            },
            "DeletionPolicy": "Retain",
        },
    )
    (policy,) = synthesized.resources(PROFILE, "Foundation", "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    publishers = {s["Principal"]["Service"]: s for s in statements if s["Effect"] == "Allow"}
    assert set(publishers) == {p.service for p in ALARM_PUBLISHERS}
    assert all(s["Action"] == "sns:Publish" for s in publishers.values())
    account = {"Ref": "AWS::AccountId"}
    assert publishers["budgets.amazonaws.com"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": {"Fn::Join": ["", ["arn:aws:budgets::", account, ":*"]]}},
    }
    # Every publisher is held to its own account (and, where the service sends it, its source ARN).
    for service, statement in publishers.items():
        conditions = json.dumps(statement["Condition"])
        assert "aws:SourceAccount" in conditions or "aws:SourceArn" in conditions, service


def test_each_profile_email_subscribes_to_the_topic(synthesized):
    expected = set(synthesized.profiles[PROFILE].profile.notifications.emails)
    subscriptions = synthesized.resources(PROFILE, "Foundation", "AWS::SNS::Subscription").values()
    assert {
        s["Properties"]["Endpoint"] for s in subscriptions if s["Properties"]["Protocol"] == "email"
    } == expected


def test_the_stack_has_termination_protection(synthesized):
    assert synthesized.profiles[PROFILE].foundation.termination_protection is True
