"""Profiles: the typed models of a profile file and `load_profile`.

A profile is a YAML file that says what to deploy. It is validated here, once, with unknown keys
forbidden; everything downstream (the stage, the stacks, the constructs) receives typed models and
never reads files. Errors name the file, the field path, the bad value and what is allowed, e.g.::

    profiles/my.yaml: budget.monthly_limit_usd: -5 is not allowed: input should be greater than 0

Run ``python -m stacks.config --write-schema`` after changing a model: it regenerates
``profiles/profile.schema.json``, which editors use to complete and check profile files (a test fails
while the committed schema is stale).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES_DIR = REPO_ROOT / "profiles"
SCHEMA_PATH = PROFILES_DIR / "profile.schema.json"
DEFAULT_PROFILE = "managed-api"
ALL_PROFILES = "all"
_DATA_DIR = Path(__file__).resolve().parent / "data"
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


@cache
def supported_regions() -> tuple[str, ...]:
    """Regions where every foundation resource type exists in CloudFormation (see the data file)."""
    data = json.loads((_DATA_DIR / "regions.json").read_text())
    return tuple(data["regions"])


class _Strict(BaseModel):
    """Base of every profile model: unknown keys are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CostAllocation(_Strict):
    """The cost-allocation tag every resource carries; budgets and anomaly monitors filter on it.

    Activate the tag key once in the Billing console (Cost allocation tags) so that Cost Explorer
    and AWS Budgets can filter by it.
    """

    tag_key: TagKey = "genai-stack:cost-center"
    tag_value: TagValue = Field(min_length=1)


class Notifications(_Strict):
    """Who hears about alarms, budget thresholds and cost anomalies."""

    # AWS Budgets accepts at most 10 e-mail subscribers per notification (Budgets quotas).
    emails: list[EmailStr] = Field(default_factory=list, max_length=10)


class BudgetThreshold(_Strict):
    """Notify when ACTUAL or FORECASTED spend crosses `percent` of the monthly limit."""

    percent: float = Field(gt=0, le=1000)
    kind: Literal["ACTUAL", "FORECASTED"]


def _default_thresholds() -> list[BudgetThreshold]:
    return [BudgetThreshold(percent=80, kind="ACTUAL"), BudgetThreshold(percent=100, kind="FORECASTED")]


class Budget(_Strict):
    """A monthly AWS Budgets cost budget on the profile's cost-allocation tag, plus anomaly alerts."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000)
    # AWS Budgets allows at most 5 notifications per budget (Budgets quotas).
    thresholds: list[BudgetThreshold] = Field(default_factory=_default_thresholds, min_length=1, max_length=5)
    anomaly_threshold_usd: float = Field(
        default=25, gt=0, description="Alert on anomalies costing at least this"
    )

    @field_validator("thresholds")
    @classmethod
    def _unique_thresholds(cls, thresholds: list[BudgetThreshold]) -> list[BudgetThreshold]:
        seen = set()
        for threshold in thresholds:
            key = (threshold.percent, threshold.kind)
            if key in seen:
                raise ValueError(f"lists {threshold.kind} {threshold.percent:g}% twice (each threshold once)")
            seen.add(key)
        return thresholds


class Foundation(_Strict):
    """The stateful base: key, buckets, alarm topic."""

    noncurrent_version_days: int = Field(
        default=90, ge=1, le=3650, description="Days before noncurrent object versions expire"
    )
    log_retention_days: int = Field(default=365, description="Retention of CloudWatch log groups")
    access_log_days: int = Field(default=365, ge=1, le=3650, description="Days to keep S3 access logs")

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
            raise ValueError(f"is not a CloudWatch Logs retention period (one of {allowed})")
        return days


class Profile(_Strict):
    """One deployment of genai-stack: what to build, where, and what it may cost."""

    model_config = ConfigDict(title="genai-stack profile")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$",
        description="Lower-case slug; stack names are derived from it (NAME-foundation, ...)",
    )
    description: str = Field(min_length=1, max_length=300)
    region: str = Field(description="AWS region the stacks deploy to")
    account: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="12-digit account id; omit for an environment-agnostic account",
    )
    cost_allocation: CostAllocation
    notifications: Notifications = Field(default_factory=Notifications)
    budget: Budget
    foundation: Foundation = Field(default_factory=Foundation)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=40, description="Extra tags for every resource"
    )

    @field_validator("region")
    @classmethod
    def _supported_region(cls, region: str) -> str:
        regions = supported_regions()
        if region not in regions:
            raise ValueError(f"is not a supported region (one of {', '.join(regions)})")
        return region

    @field_validator("tags")
    @classmethod
    def _reserved_tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        cost_allocation = info.data.get("cost_allocation")
        reserved = set(RESERVED_TAG_KEYS) | ({cost_allocation.tag_key} if cost_allocation else set())
        clash = sorted(reserved & set(tags))
        if clash:
            raise ValueError(f"sets {', '.join(clash)}, which genai-stack sets itself on every resource")
        return tags


# --------------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def builtin_profile_names(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(path.stem for path in profiles_dir.glob("*.yaml"))


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or "\\" in name_or_path


def resolve_profile_path(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Path:
    """A built-in profile name or a path to a user's file -> the file to read."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(name_or_path, ["file not found"])
        return path
    path = profiles_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(builtin_profile_names(profiles_dir)) or "none"
        raise ProfileError(
            name_or_path,
            [
                f"no built-in profile of that name (available: {available}, or '{ALL_PROFILES}'); "
                "to use your own file pass its path, e.g. -c profile=path/to/my-profile.yaml"
            ],
        )
    return path


def load_profile(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Profile:
    """Read and validate one profile. Raises ProfileError naming the file, field, value and rule."""
    path = resolve_profile_path(name_or_path, profiles_dir)
    source = _display_path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileError(source, [f"{where}not valid YAML: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(source, [f"cannot be read: {error}"]) from None
    if not isinstance(data, dict):
        raise ProfileError(
            source,
            [
                "a profile is a mapping of keys (name, region, budget, ...), not "
                + ("an empty file" if data is None else f"a {type(data).__name__}")
            ],
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(source, [_describe(e) for e in error.errors(include_url=False)]) from None


def load_profiles(selection: str, profiles_dir: Path = PROFILES_DIR) -> list[Profile]:
    """`all` -> every built-in profile; otherwise one name or path. Profile names must be unique."""
    if selection != ALL_PROFILES:
        return [load_profile(selection, profiles_dir)]
    profiles = [load_profile(name, profiles_dir) for name in builtin_profile_names(profiles_dir)]
    names = [profile.name for profile in profiles]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProfileError(
            str(profiles_dir), [f"profile name {', '.join(duplicates)} is used by more than one file"]
        )
    return profiles


# --------------------------------------------------------------------------------------------------
# Error messages


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed validation
            text += " (key)"
        else:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class whose fields live at `loc` (used to list the allowed keys)."""
    model: type[BaseModel] = Profile
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *get_args(annotation)] if get_origin(annotation) else [annotation]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see profiles/profile.schema.json"
        return f"{_path(loc)}: unknown key (allowed here: {allowed})"
    if kind == "missing":
        return f"{_path(loc)}: required but missing"
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        if message.startswith(("is ", "lists ", "sets ")):
            return f"{_path(loc)}: {_value(error['input'])} {message}"
    return f"{_path(loc)}: {_value(error['input'])} is not allowed: {message[0].lower()}{message[1:]}"


# --------------------------------------------------------------------------------------------------
# JSON schema


def profile_json_schema() -> str:
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$comment"] = (
        "Generated by `python -m stacks.config --write-schema` from stacks/config.py; do not edit."
    )
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str]) -> int:
    """`--write-schema` regenerates the JSON schema; `PROFILE...` validates names or files."""
    if list(argv) == ["--write-schema"]:
        SCHEMA_PATH.write_text(profile_json_schema(), encoding="utf-8")
        print(f"wrote {_display_path(SCHEMA_PATH)}")
        return 0
    if not argv:
        print("usage: python -m stacks.config --write-schema | PROFILE...", file=sys.stderr)
        return 2
    failed = False
    for name in argv:
        try:
            load_profile(name)
        except ProfileError as error:
            print(error, file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
