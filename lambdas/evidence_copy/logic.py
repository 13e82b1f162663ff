"""Write-once copies of audit evidence: each new log object read and put into the evidence bucket.

Why copies, not replication or direct delivery:
- S3 server access logs cannot be delivered to a bucket with Object Lock ("S3 buckets with Object Lock
  can't be used as destination buckets for server access logs": S3 user guide, "Object Lock
  considerations", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
- S3 Replication would not lock them either: "for replicated objects, Amazon S3 takes the object lock
  configuration of the source bucket ... If an object is directly uploaded to the destination bucket
  (outside of S3 Replication), it takes the Object Lock set on the destination bucket" (same page,
  "Using Object Lock with S3 Replication"). A copy is such a direct upload: the evidence bucket's
  default retention locks it.
- "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for any request to upload an
  object with a retention period configured using Object Lock" (same page, "Uploading objects to an
  Object Lock enabled bucket"). A PutObject of the object's bytes carries Content-MD5, which S3 also
  uses to check the copy arrived intact; a CopyObject has no body to digest (moto 5.2.5 refuses it
  into a bucket with default retention, and AWS does not document that it is accepted).

The source object is named by its version id, so a copy is of exactly the object the event reported,
even if the key was overwritten since.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

# Log objects are small (server access logs: a few KB; load-balancer logs: a file per node every 5
# minutes; invocation logs: one file per batch of calls); the copy holds one in memory, so a larger one
# is refused by name (and the Errors alarm fires) rather than half-copied.
MAX_BYTES = 256 * 1024 * 1024
# The keys the log writers make: S3 server access logs (`<prefix>YYYY-mm-DD-HH-MM-SS-<id>`), Elastic
# Load Balancing access logs and Bedrock invocation logs (`.../AWSLogs/<account>/...`) use letters,
# digits and `/ . _ - =` only. Anything else is refused rather than guessed at (event keys may be
# URL-encoded).
SAFE_KEY = re.compile(r"^[A-Za-z0-9/._=-]{1,1024}$")


class NotEvidence(ValueError):
    """An event this function must not act on; the message says why."""


@dataclass(frozen=True)
class Source:
    """A bucket whose new objects under `prefixes` (`""`: any key), except under `excluded`, are
    evidence, copied under `destination` + key."""

    bucket: str
    prefixes: tuple[str, ...]
    destination: str
    excluded: tuple[str, ...] = ()

    def covers(self, key: str) -> bool:
        return key.startswith(self.prefixes) and not (self.excluded and key.startswith(self.excluded))


def evidence_key(source: Source, key: str) -> str:
    """Where the copy of `key` goes in the evidence bucket."""
    if not SAFE_KEY.match(key):
        raise NotEvidence(f"key {key!r} has characters no log writer uses; not copied")
    if not source.covers(key):
        raise NotEvidence(f"{source.bucket}/{key} is not evidence of this vault; not copied")
    return source.destination + key


def copy_to_evidence(
    s3: Any, *, evidence_bucket: str, source: Source, key: str, version_id: str | None
) -> dict[str, str]:
    """Read one version of a log object and put it into the evidence bucket with its MD5 (which the
    bucket's default retention then locks); returns the copy's key and version."""
    target = evidence_key(source, key)
    version = {"VersionId": version_id} if version_id else {}
    head = s3.head_object(Bucket=source.bucket, Key=key, **version)
    if head["ContentLength"] > MAX_BYTES:
        raise NotEvidence(
            f"{source.bucket}/{key} is {head['ContentLength']} bytes, above the {MAX_BYTES}-byte copy limit"
        )
    body = s3.get_object(Bucket=source.bucket, Key=key, **version)["Body"].read()
    response = s3.put_object(
        Bucket=evidence_bucket,
        Key=target,
        Body=body,
        ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324 - S3's integrity header
        Metadata={"source": f"{source.bucket}/{key}", "source-version": version_id or "null"},
    )
    return {"key": target, "version": response.get("VersionId", "")}
