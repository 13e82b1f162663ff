"""Write-once evidence: each new log object is copied into a bucket with S3 Object Lock, against a moto
server (S3 over HTTP, which enforces the lock and the upload headers it requires)."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.evidence_copy import handler as handler_module
from lambdas.evidence_copy.logic import MAX_BYTES, NotEvidence, Source, copy_to_evidence
from tests.support.moto_server import moto_server

LOGS, DATA, EVIDENCE = "access-logs", "data", "evidence"
ACCESS_LOG_KEY = "data/2026-12-02-04-10-11-0123456789ABCDEF"
INVOCATION_KEY = (
    "bedrock-invocation-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/02/04/"
    "20261202T041000123Z_0123456789abcdef.json.gz"
)
ACCESS_LOGS = Source(LOGS, ("",), "access-logs/", excluded=("evidence/",))
INVOCATIONS = Source(DATA, ("bedrock-invocation-logs/",), "")


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(endpoint):
    """Fresh buckets: two versioned log buckets and the evidence bucket with Object Lock and a default
    retention, as EvidenceVault creates it (moto's state is reset first)."""
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(reset).close()  # noqa: S310 - this module's moto server
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (LOGS, DATA):
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.create_bucket(Bucket=EVIDENCE, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=EVIDENCE,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
        },
    )
    return client


def test_a_copy_is_locked_by_the_bucket_s_default_retention_and_cannot_be_deleted(s3):
    version = s3.put_object(Bucket=LOGS, Key=ACCESS_LOG_KEY, Body=b"bucket owner GET /data/x 200\n")[
        "VersionId"
    ]
    copied = copy_to_evidence(
        s3, evidence_bucket=EVIDENCE, source=ACCESS_LOGS, key=ACCESS_LOG_KEY, version_id=version
    )
    assert copied["key"] == f"access-logs/{ACCESS_LOG_KEY}"
    head = s3.head_object(Bucket=EVIDENCE, Key=copied["key"], VersionId=copied["version"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["Metadata"] == {"source": f"{LOGS}/{ACCESS_LOG_KEY}", "source-version": version}
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=EVIDENCE, Key=copied["key"], VersionId=copied["version"])
    body = s3.get_object(Bucket=EVIDENCE, Key=copied["key"])["Body"].read()
    assert body == b"bucket owner GET /data/x 200\n"


def test_the_copy_is_of_the_version_the_event_named_even_after_an_overwrite(s3):
    first = s3.put_object(Bucket=DATA, Key=INVOCATION_KEY, Body=b'{"modelId": "a"}\n')["VersionId"]
    s3.put_object(Bucket=DATA, Key=INVOCATION_KEY, Body=b"tampered\n")
    copied = copy_to_evidence(
        s3, evidence_bucket=EVIDENCE, source=INVOCATIONS, key=INVOCATION_KEY, version_id=first
    )
    assert copied["key"] == INVOCATION_KEY  # as Bedrock wrote it
    assert s3.get_object(Bucket=EVIDENCE, Key=INVOCATION_KEY)["Body"].read() == b'{"modelId": "a"}\n'


def test_an_upload_without_a_digest_is_refused_by_a_locked_bucket(s3):
    """Why the copy is a PutObject with Content-MD5: S3 refuses an upload into a bucket with default
    retention that carries neither Content-MD5 nor a checksum algorithm (moto enforces it as AWS
    documents), and a CopyObject has no body to digest."""
    version = s3.put_object(Bucket=LOGS, Key=ACCESS_LOG_KEY, Body=b"line\n")["VersionId"]
    with pytest.raises(ClientError, match="MissingUploadObjectWithObjectLockHeaders"):
        s3.copy_object(
            Bucket=EVIDENCE,
            Key=f"access-logs/{ACCESS_LOG_KEY}",
            CopySource={"Bucket": LOGS, "Key": ACCESS_LOG_KEY, "VersionId": version},
        )


@pytest.mark.parametrize(
    ("source", "key", "why"),
    [
        (ACCESS_LOGS, "evidence/2026-12-02-04-10-11-0123456789ABCDEF", "not evidence of this vault"),
        (INVOCATIONS, "knowledge-bases/faq/doc.pdf", "not evidence of this vault"),
        (ACCESS_LOGS, "data/report 2026.txt", "characters no log writer uses"),
        (ACCESS_LOGS, "data/%2E%2E/x", "characters no log writer uses"),
    ],
)
def test_what_is_not_evidence_is_refused_before_any_call(source, key, why):
    class NoCalls:
        def __getattr__(self, name):
            pytest.fail(f"no S3 call for {key}: {name}")

    with pytest.raises(NotEvidence, match=why):
        copy_to_evidence(NoCalls(), evidence_bucket=EVIDENCE, source=source, key=key, version_id=None)


def test_an_object_above_the_copy_limit_is_refused_by_name():
    class Huge:
        def head_object(self, **_):
            return {"ContentLength": MAX_BYTES + 1}

        def get_object(self, **_):
            pytest.fail("a too large object is not read")

    with pytest.raises(NotEvidence, match="above the 268435456-byte copy limit"):
        copy_to_evidence(
            Huge(), evidence_bucket=EVIDENCE, source=ACCESS_LOGS, key=ACCESS_LOG_KEY, version_id="v"
        )


# --------------------------------------------------------------------------------------------------
# The handler: the EventBridge event S3 sends, and its configuration.


def event(bucket: str, key: str, version: str | None) -> dict:
    """An "Object Created" event as S3 sends it to EventBridge (S3 user guide, "EventBridge message
    structure")."""
    obj = {
        "key": key,
        "size": 5,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "sequencer": "0062E99A88DC407460",
    }
    if version:
        obj["version-id"] = version
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-02T04:10:11Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
    }


@pytest.fixture
def configured(s3, monkeypatch):
    monkeypatch.setattr(handler_module, "s3_client", lambda: s3)
    monkeypatch.setenv("EVIDENCE_BUCKET", EVIDENCE)
    monkeypatch.setenv(
        "SOURCES",
        json.dumps(
            {
                LOGS: {"prefixes": [""], "excluded": ["evidence/"], "destination": "access-logs/"},
                DATA: {"prefixes": ["bedrock-invocation-logs/"], "destination": ""},
            }
        ),
    )
    return s3


def test_the_handler_copies_the_object_an_event_names(configured):
    version = configured.put_object(Bucket=LOGS, Key=ACCESS_LOG_KEY, Body=b"line\n")["VersionId"]
    result = handler_module.on_event(event(LOGS, ACCESS_LOG_KEY, version), None)
    assert result["key"] == f"access-logs/{ACCESS_LOG_KEY}"
    assert configured.head_object(Bucket=EVIDENCE, Key=result["key"])["ObjectLockMode"] == "GOVERNANCE"


def test_the_handler_refuses_other_buckets_and_other_events(configured):
    with pytest.raises(NotEvidence, match="bucket someone-else is not a source of evidence"):
        handler_module.on_event(event("someone-else", ACCESS_LOG_KEY, None), None)
    deleted = {**event(LOGS, ACCESS_LOG_KEY, None), "detail-type": "Object Deleted"}
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        handler_module.on_event(deleted, None)
