"""Profile loading: the built-in profiles are valid, and every kind of bad input gets a clear error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from genai_stack.config import (
    PROFILES_DIR,
    SCHEMA_PATH,
    Profile,
    ProfileError,
    builtin_profile_names,
    load_profile,
    load_profiles,
    profile_json_schema,
)

VALID = textwrap.dedent(
    """\
    name: team-a
    description: A test profile.
    region: eu-west-1
    cost_allocation: {tag_value: team-a}
    notifications: {emails: [ops@example.com]}
    budget: {monthly_limit_usd: 100}
    """
)


def write(tmp_path: Path, text: str, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str) -> ProfileError:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    return caught.value


def test_every_builtin_profile_loads_and_its_name_is_its_file_name():
    names = builtin_profile_names()
    assert "managed-api" in names
    for name in names:
        assert load_profile(name).name == name


def test_a_minimal_profile_gets_the_documented_defaults(tmp_path):
    profile = load_profile(str(write(tmp_path, VALID)))
    assert profile.cost_allocation.tag_key == "genai-stack:cost-center"
    assert [(t.percent, t.kind) for t in profile.budget.thresholds] == [(80, "ACTUAL"), (100, "FORECASTED")]
    assert profile.foundation.log_retention_days == 365
    assert profile.account is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("colour: blue", "colour: unknown key (allowed here: name, description, region, account,"),
        (
            "budget: {monthly_limit_usd: 100, limit: 5}",
            "budget.limit: unknown key (allowed here: monthly_limit_usd,",
        ),
        (
            "budget: {monthly_limit_usd: lots}",
            "budget.monthly_limit_usd: 'lots' is not allowed: input should be a valid number",
        ),
        (
            "budget: {monthly_limit_usd: -5}",
            "budget.monthly_limit_usd: -5 is not allowed: input should be greater than 0",
        ),
        (
            "notifications: {emails: [not-an-email]}",
            "notifications.emails[0]: 'not-an-email' is not allowed: value is not a valid email",
        ),
        (
            "region: eu-north-9",
            "region: 'eu-north-9' is not a supported region: it is not an AWS commercial region",
        ),
        ("account: '1234'", "account: '1234' is not allowed: string should match pattern"),
        (
            "foundation: {log_retention_days: 8}",
            "foundation.log_retention_days: 8 is not a CloudWatch Logs retention period",
        ),
        (
            "budget: {monthly_limit_usd: 9, thresholds: [{percent: 80, kind: MAYBE}]}",
            "budget.thresholds[0].kind: 'MAYBE' is not allowed: input should be 'ACTUAL' or 'FORECASTED'",
        ),
        ("tags: {project: mine}", 'tags: {"project": "mine"} sets project, which genai-stack sets itself'),
        (
            "tags: {'aws:owner': me}",
            "tags.aws:owner (key): 'aws:owner' is not allowed: tag keys starting with 'aws:' are reserved",
        ),
    ],
)
def test_a_bad_field_is_named_with_its_value_and_rule(tmp_path, change, expected):
    key = change.split(":")[0]
    kept = [line for line in VALID.splitlines() if not line.startswith(f"{key}:")]
    error = error_for(tmp_path, "\n".join([*kept, change]) + "\n")
    message = str(error)
    assert expected in message
    assert message.startswith(str(tmp_path / "profile.yaml") + ": ") or message.startswith("profile.yaml")
    assert "Traceback" not in message


def test_duplicate_thresholds_are_reported_as_such(tmp_path):
    twice = "[{percent: 80, kind: ACTUAL}, {percent: 80, kind: ACTUAL}]"
    text = VALID.replace(
        "budget: {monthly_limit_usd: 100}", f"budget: {{monthly_limit_usd: 9, thresholds: {twice}}}"
    )
    assert "lists ACTUAL 80% twice" in str(error_for(tmp_path, text))


def test_a_missing_field_is_named(tmp_path):
    text = "\n".join(line for line in VALID.splitlines() if not line.startswith("budget"))
    assert "budget: required but missing" in str(error_for(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path):
    text = VALID.replace("eu-west-1", "mars-1").replace("100", "-1")
    error = error_for(tmp_path, text)
    assert len(error.problems) == 2
    assert {p.split(":")[0] for p in error.problems} == {"region", "budget.monthly_limit_usd"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "not an empty file"),
        ("- a\n- b\n", "not a list"),
        ("name: [unclosed\n", "line 2, column 1: not valid YAML"),
        ("name: a\nname: b\n", "key 'name' is given twice"),
    ],
)
def test_a_file_that_is_not_a_profile_mapping_is_rejected(tmp_path, text, expected):
    assert expected in str(error_for(tmp_path, text))


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ProfileError, match=r"nope\.yaml: file not found"):
        load_profile(str(missing))


def test_an_unknown_name_lists_the_available_profiles():
    with pytest.raises(ProfileError) as caught:
        load_profile("does-not-exist")
    message = str(caught.value)
    assert message.startswith("does-not-exist: no built-in profile of that name")
    for name in builtin_profile_names():
        assert name in message
    assert "'all'" in message


def test_all_loads_every_builtin_profile_and_rejects_duplicate_names(tmp_path):
    assert [p.name for p in load_profiles("all")] == builtin_profile_names()
    write(tmp_path, VALID, "one.yaml")
    write(tmp_path, VALID, "two.yaml")
    with pytest.raises(ProfileError, match="profile name team-a is used by more than one file"):
        load_profiles("all", profiles_dir=tmp_path)


def test_profiles_are_immutable_once_loaded():
    profile = load_profile("managed-api")
    with pytest.raises(ValueError, match="frozen"):
        profile.budget.monthly_limit_usd = 1  # type: ignore[misc]  # the assignment is what is tested


def test_the_committed_json_schema_is_current():
    assert SCHEMA_PATH.read_text() == profile_json_schema(), (
        "profiles/profile.schema.json is stale: run `make schema` and commit it"
    )


def test_the_json_schema_forbids_unknown_keys_and_names_every_top_level_field():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(Profile.model_fields)
    assert set(schema["required"]) == {"name", "description", "region", "cost_allocation", "budget"}


def test_builtin_profiles_point_editors_at_the_schema():
    for path in sorted(PROFILES_DIR.glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=profile.schema.json"), path
        assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.parametrize(
    ("line", "account"),
    [
        ("account: 012345670123", "012345670123"),  # YAML 1.1 octal: was read as 1402433619
        ("account: 012345678901", "012345678901"),  # a leading zero and digits 8, 9
        ("account: 123456789012", "123456789012"),  # unquoted, no leading zero: a number
        ("account: '012345670123'", "012345670123"),
    ],
)
def test_an_unquoted_account_id_keeps_its_twelve_digits(tmp_path, line, account):
    assert load_profile(str(write(tmp_path, VALID + line + "\n"))).account == account


def test_a_short_account_id_is_still_refused(tmp_path):
    error = error_for(tmp_path, VALID + "account: 12345\n")
    assert "account" in str(error)


def test_write_once_evidence_is_off_unless_asked_and_takes_a_mode_and_days(tmp_path):
    assert load_profile(str(write(tmp_path, VALID))).foundation.evidence_lock is None
    locked = VALID + "foundation: {evidence_lock: {mode: COMPLIANCE, retention_days: 2555}}\n"
    lock = load_profile(str(write(tmp_path, locked))).foundation.evidence_lock
    assert (lock.mode, lock.retention_days) == ("COMPLIANCE", 2555)
    message = str(error_for(tmp_path, VALID + "foundation: {evidence_lock: {mode: FOREVER}}\n"))
    assert "foundation.evidence_lock.mode: " in message
    assert "'GOVERNANCE' or 'COMPLIANCE'" in message
    message = str(error_for(tmp_path, VALID + "foundation: {evidence_lock: {retention_days: 36501}}\n"))
    assert "foundation.evidence_lock.retention_days: " in message
    assert "less than or equal to 36500" in message
