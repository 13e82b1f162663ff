"""The profile's foundation section: the stateful base."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from genai_stack.profile.common import _known_retention, _Strict


class EvidenceLock(_Strict):
    """Write-once copies of the audit evidence: S3 server access logs of the buckets (and the model
    hosts' load-balancer logs) and Bedrock invocation logs, copied as they arrive into a bucket with S3
    Object Lock, where no one can overwrite or delete them for `retention_days`.

    - GOVERNANCE: principals allowed s3:BypassGovernanceRetention may still delete (an escape hatch
      for mistakes); everyone else cannot.
    - COMPLIANCE: no one, the account's root user included, can delete a copy or shorten its retention
      until it expires; the bucket cannot be emptied before then.
    (S3 user guide, "Locking objects with Object Lock", retention modes.)
    """

    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    retention_days: int = Field(
        default=365, ge=1, le=36500, description="Days each copy is locked (S3 allows up to 100 years)"
    )


class Foundation(_Strict):
    """The stateful base: key, buckets, alarm topic."""

    noncurrent_version_days: int = Field(
        default=90, ge=1, le=3650, description="Days before noncurrent object versions expire"
    )
    log_retention_days: int = Field(default=365, description="Retention of CloudWatch log groups")
    access_log_days: int = Field(default=365, ge=1, le=3650, description="Days to keep S3 access logs")
    evidence_lock: EvidenceLock | None = Field(
        default=None, description="Write-once (S3 Object Lock) copies of the access and invocation logs"
    )

    _retention = field_validator("log_retention_days")(classmethod(lambda cls, days: _known_retention(days)))
