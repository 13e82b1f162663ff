"""What every section of a profile shares: tags, log retention, the strict base model and
the error type."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
)

from genai_stack import PROFILES_DIR

SCHEMA_PATH = PROFILES_DIR / "profile.schema.json"
DEFAULT_PROFILE = "managed-api"
ALL_PROFILES = "all"
# Tags the stage puts on every resource (besides the profile's cost-allocation tag).
PROJECT_TAG = "project"
PROFILE_TAG = "genai-stack:profile"
RESERVED_TAG_KEYS = (PROJECT_TAG, PROFILE_TAG)

# CloudWatch Logs accepts only these retention periods (AWS::Logs::LogGroup RetentionInDays).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# Tag keys and values: letters, digits, spaces and + - = . _ : / @ (AWS tagging rules); "aws:" is reserved.
# (ASCII letters only: CloudFormation allows Unicode letters, but not every service that is tagged does.)
def _not_reserved(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise ValueError("is not allowed: tag keys starting with 'aws:' are reserved by AWS")
    return key


TagKey = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9 _.:/=+@-]+$", min_length=1, max_length=128),
    AfterValidator(_not_reserved),
]
TagValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9 _.:/=+@-]*$", max_length=256)]


class ProfileError(Exception):
    """A profile that cannot be used. The message is meant for people: no traceback needed."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


_LOCATED = re.compile(r"^@([^@]+)@ (.*)$")


def located(subpath: str, message: str) -> str:
    """A validator message about a field below the one being validated: the error then names
    `<field>.<subpath>` (see `_describe`)."""
    return f"@{subpath}@ {message}"


def repeated_names(owner: object, *fields: str) -> list[str]:
    """A problem for each name given twice within each of `owner`'s list fields (items with `name`)."""
    problems = []
    for field in fields:
        names = [item.name for item in getattr(owner, field)]
        problems += [
            located(field, f"names {n!r} more than once")
            for n in sorted({n for n in names if names.count(n) > 1})
        ]
    return problems


def _known_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        raise ValueError(f"is not a CloudWatch Logs retention period (one of {allowed})")
    return days


class _Strict(BaseModel):
    """Base of every profile model: unknown keys are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
# An interface VPC endpoint id: vpce- and 17 hex digits (8 in older ids), as VPC ids are.
VpcEndpointId = Annotated[str, Field(pattern=r"^vpce-[0-9a-f]{8,17}$")]
_SLUG_SCHEMA = TypeAdapter(Slug).json_schema()

# EventBridge schedule expressions: rate(N unit) or cron(6 fields).
# An S3 key prefix of the profile's buckets: segments of letters, digits, '.', '_' and '-', ending in '/'.
S3_PREFIX = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/$"


def prefixes_overlap(first: str, second: str) -> bool:
    """Whether one S3 prefix holds the other (a listing of one would include the other's objects)."""
    return first.startswith(second) or second.startswith(first)


_SCHEDULE = r"^(rate\((1 (minute|hour|day)|[1-9][0-9]* (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$"
