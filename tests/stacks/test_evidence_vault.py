"""Write-once evidence (foundation.evidence_lock, on in the bank's managed-api profile): a bucket with
S3 Object Lock receives a copy of every new access-log and invocation-log object."""

from __future__ import annotations

import json

import pytest

from genai_stack.config import load_profile
from tests.support.templates import identity_statements

PROFILE = "managed-api"


@pytest.fixture(scope="module")
def lock():
    return load_profile(PROFILE).foundation.evidence_lock


def foundation(synthesized) -> dict:
    return synthesized.template(PROFILE, "Foundation")["Resources"]


def evidence_bucket(synthesized) -> dict:
    (bucket,) = [
        r
        for k, r in foundation(synthesized).items()
        if k.startswith("EvidenceBucket") and r["Type"] == "AWS::S3::Bucket"
    ]
    return bucket


def test_the_evidence_bucket_locks_every_object_for_the_profile_s_retention(synthesized, lock):
    bucket = evidence_bucket(synthesized)
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": lock.mode, "Days": lock.retention_days}},
    }
    assert (lock.mode, lock.retention_days) == ("GOVERNANCE", 365)
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": ["PlatformKey1C4A1A63", "Arn"]
    }
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    # Its own access logs go to the access-log bucket under evidence/, which is not copied back.
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "evidence/"
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    # Expired one day after the lock (a lifecycle rule could not delete a locked copy anyway).
    assert rules["expire-objects"]["ExpirationInDays"] == lock.retention_days + 1


def rules(synthesized) -> dict[str, dict]:
    found = {}
    for logical_id, resource in foundation(synthesized).items():
        if resource["Type"] == "AWS::Events::Rule" and logical_id.startswith("EvidenceNewEvidence"):
            pattern = resource["Properties"]["EventPattern"]
            found[pattern["detail"]["bucket"]["name"][0]["Ref"]] = resource["Properties"]
    return found


def test_every_new_access_log_and_invocation_log_object_is_copied(synthesized):
    by_bucket = rules(synthesized)
    access_logs = next(v for k, v in by_bucket.items() if k.startswith("AccessLogsBucket"))
    data = next(v for k, v in by_bucket.items() if k.startswith("DataBucket"))
    assert access_logs["EventPattern"]["detail"]["object"] == {
        "key": [{"anything-but": {"prefix": "evidence/"}}]
    }
    assert data["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "bedrock-invocation-logs/"}]}
    for rule in (access_logs, data):
        assert rule["EventPattern"]["detail-type"] == ["Object Created"]
        assert rule["Targets"][0]["RetryPolicy"] == {
            "MaximumRetryAttempts": 185,
            "MaximumEventAgeInSeconds": 86400,
        }
    # S3 sends the access-log bucket's events to EventBridge only once the bucket says so.
    (log_bucket,) = [
        r
        for k, r in foundation(synthesized).items()
        if k.startswith("AccessLogsBucket") and r["Type"] == "AWS::S3::Bucket"
    ]
    assert log_bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_the_copy_function_can_neither_delete_nor_unlock(synthesized):
    actions = set()
    for logical_id, statement in identity_statements(synthesized.template(PROFILE, "Foundation")):
        if logical_id.startswith("EvidenceCopyRole"):
            listed = statement["Action"]
            actions |= set(listed if isinstance(listed, list) else [listed])
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sqs:SendMessage",  # the lost queue (its on-failure destination)
    }


def test_a_failed_copy_raises_the_alarm(synthesized):
    (alarm,) = [r for k, r in foundation(synthesized).items() if k.startswith("EvidenceCopyFailed")]
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "EvidenceCopyFunctionD0DB173C"}}]
    assert props["AlarmActions"] == [{"Ref": "AlarmsTopic3A2DFEBA"}]


def test_profiles_without_the_option_have_no_locked_bucket(synthesized):
    for profile, stacks in synthesized.templates.items():
        locked = [
            k
            for template in stacks.values()
            for k, r in template["Resources"].items()
            if r["Type"] == "AWS::S3::Bucket" and r["Properties"].get("ObjectLockEnabled")
        ]
        expected = load_profile(profile).foundation.evidence_lock is not None
        assert bool(locked) == expected, (profile, locked)
        assert json.dumps(stacks).count("evidence_copy") == (1 if expected else 0)


def test_a_copy_that_keeps_failing_is_parked_in_the_lost_queue_with_an_alarm(synthesized):
    """Lambda retries an asynchronous event twice and then drops it unless a destination takes it
    (Lambda developer guide, "How Lambda handles errors and retries with asynchronous invocation")."""
    resources = foundation(synthesized)
    (config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert config["FunctionName"] == {"Ref": "EvidenceCopyFunctionD0DB173C"}
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (2, 6 * 3600)
    lost = config["DestinationConfig"]["OnFailure"]["Destination"]
    (queue_id,) = [
        k for k in resources if k.startswith("EvidenceLost") and resources[k]["Type"] == "AWS::SQS::Queue"
    ]
    assert lost == {"Fn::GetAtt": [queue_id, "Arn"]}
    queue = resources[queue_id]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": ["PlatformKey1C4A1A63", "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (alarm,) = [r["Properties"] for k, r in resources.items() if k.startswith("EvidenceCopyLost")]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmsTopic3A2DFEBA"}]
