"""The profile's foundation section: the stateful base."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
)

from genai_stack.profile.common import _known_retention, _Strict


class Foundation(_Strict):
    """The stateful base: key, buckets, alarm topic."""

    noncurrent_version_days: int = Field(
        default=90, ge=1, le=3650, description="Days before noncurrent object versions expire"
    )
    log_retention_days: int = Field(default=365, description="Retention of CloudWatch log groups")
    access_log_days: int = Field(default=365, ge=1, le=3650, description="Days to keep S3 access logs")

    _retention = field_validator("log_retention_days")(classmethod(lambda cls, days: _known_retention(days)))
