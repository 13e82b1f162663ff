"""The evaluator against AWS's documented policy logic, rule by rule, each with an allow and a
deny case (pages cited in tests/access/evaluator.py)."""

from __future__ import annotations

import pytest

from tests.access.evaluator import (
    Policy,
    Request,
    ResourcePolicy,
    UnsupportedPolicy,
    action_matches,
    arn_matches,
    condition_holds,
    evaluate,
)

ROLE = "arn:aws:iam::123456789012:role/worker"
ROOT = "arn:aws:iam::123456789012:root"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET = "arn:aws:s3:::data-bucket"


def policy(*statements, source="identity"):
    return Policy(source, {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def request(action="s3:GetObject", resource=f"{BUCKET}/key", **context):
    return Request(ROLE, action, resource, context)


# -- default deny, allow, explicit deny ------------------------------------------------------------
def test_nothing_is_allowed_by_default():
    assert not evaluate(request(), []).allowed
    assert evaluate(request(), []).reason.startswith("implicit deny")


def test_an_allow_allows_and_an_explicit_deny_wins_over_it():
    assert evaluate(request(), [policy(allow("s3:GetObject", "*"))]).allowed
    decision = evaluate(request(), [policy(allow("s3:GetObject", "*")), policy(deny("s3:*", "*"))])
    assert not decision.allowed
    assert decision.explicit_deny


# -- Action / NotAction ---------------------------------------------------------------------------
def test_action_names_are_case_insensitive_with_wildcards():
    assert action_matches("S3:getobject", "s3:GetObject")
    assert action_matches("s3:Get*", "s3:GetObject")
    assert action_matches("s3:?etObject", "s3:GetObject")
    assert not action_matches("s3:Put*", "s3:GetObject")
    assert not action_matches("bedrock:Converse", "bedrock:InvokeModel")


def test_not_action_applies_to_every_other_action():
    statement = {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}
    assert evaluate(request("s3:GetObject"), [policy(statement)]).allowed
    assert not evaluate(request("s3:DeleteObject"), [policy(statement)]).allowed


# -- Resource / NotResource -----------------------------------------------------------------------
def test_resource_arns_are_case_sensitive_and_wildcards_stay_in_their_segment():
    assert arn_matches("arn:aws:s3:::data-bucket/*", f"{BUCKET}/a/b")
    assert not arn_matches("arn:aws:s3:::Data-Bucket/*", f"{BUCKET}/a")
    assert arn_matches("arn:aws:logs:*:*:log-group:g:*", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s")
    # The region wildcard cannot swallow the account segment.
    assert not arn_matches(
        "arn:aws:logs:*:log-group:g:*", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s"
    )


def test_a_log_group_arn_with_log_stream_appended_matches_no_log_stream():
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:my-group:*"  # GetAtt LogGroup.Arn
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:my-group:log-stream:2026/12/01/[$LATEST]abcd"
    assert not arn_matches(f"{group_arn}:log-stream:*", stream)
    assert arn_matches("arn:aws:logs:us-east-1:123456789012:log-group:my-group:log-stream:*", stream)
    assert arn_matches(group_arn, stream)


def test_not_resource_applies_to_every_other_resource():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/secret/*"}
    assert evaluate(request(resource=f"{BUCKET}/public/a"), [policy(statement)]).allowed
    assert not evaluate(request(resource=f"{BUCKET}/secret/a"), [policy(statement)]).allowed


def test_policy_variables_are_refused_not_guessed():
    with pytest.raises(UnsupportedPolicy):
        evaluate(request(), [policy(allow("s3:GetObject", "arn:aws:s3:::${aws:username}/*"))])


# -- Condition operators --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operator", "policy_value", "context_value", "holds"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "ABC", False),
        ("StringNotEquals", "abc", "abd", True),
        ("StringNotEquals", "abc", "abc", False),
        ("StringEqualsIgnoreCase", "abc", "ABC", True),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", False),
        ("StringLike", "a*c?", "abbcd", True),
        ("StringLike", "a*c?", "abbc", False),
        ("StringNotLike", "a*", "ba", True),
        ("StringNotLike", "a*", "ab", False),
        ("NumericLessThan", "1.2", "1.0", True),
        ("NumericLessThan", "1.2", "1.2", False),
        ("NumericLessThanEquals", "1.2", "1.2", True),
        ("NumericGreaterThan", "5", "6", True),
        ("NumericGreaterThanEquals", "5", "4", False),
        ("NumericEquals", "5", "5.0", True),
        ("NumericNotEquals", "5", "5", False),
        ("Bool", "false", False, True),
        ("Bool", "false", True, False),
        ("Bool", "true", "true", True),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("IpAddress", "10.0.0.0/8", "192.168.0.1", False),
        ("NotIpAddress", "10.0.0.0/8", "192.168.0.1", True),
        (
            "ArnLike",
            "arn:aws:bedrock:*:123456789012:*",
            "arn:aws:bedrock:us-east-1:123456789012:guardrail/x",
            True,
        ),
        (
            "ArnLike",
            "arn:aws:bedrock:*:123456789012:*",
            "arn:aws:bedrock:us-east-1:999999999999:guardrail/x",
            False,
        ),
        ("ArnEquals", "arn:aws:sns:us-east-1:1:t", "arn:aws:sns:us-east-1:1:t", True),
        ("ArnNotEquals", "arn:aws:sns:us-east-1:1:t", "arn:aws:sns:us-east-1:1:t", False),
        ("ArnNotLike", "arn:aws:sns:*:1:t", "arn:aws:sns:us-east-1:2:t", True),
    ],
)
def test_condition_operators(operator, policy_value, context_value, holds):
    assert condition_holds(operator, "k:Key", policy_value, {"k:Key": context_value}) is holds


def test_condition_key_names_are_case_insensitive():
    assert condition_holds("StringEquals", "AWS:SourceAccount", "1", {"aws:sourceaccount": "1"})


def test_a_missing_key_fails_positive_operators_and_passes_negated_ones():
    assert not condition_holds("StringEquals", "bedrock:GuardrailIdentifier", "g:1", {})
    assert condition_holds("StringNotEquals", "bedrock:GuardrailIdentifier", "g:1", {})
    assert condition_holds("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::b", {})


def test_if_exists_passes_when_the_key_is_missing_and_checks_it_when_present():
    assert condition_holds("StringEqualsIfExists", "k:Key", "a", {})
    assert condition_holds("StringEqualsIfExists", "k:Key", "a", {"k:Key": "a"})
    assert not condition_holds("StringEqualsIfExists", "k:Key", "a", {"k:Key": "b"})


def test_null_checks_presence():
    assert condition_holds("Null", "k:Key", "true", {})
    assert not condition_holds("Null", "k:Key", "true", {"k:Key": "a"})
    assert condition_holds("Null", "k:Key", "false", {"k:Key": "a"})
    assert not condition_holds("Null", "k:Key", "false", {})


def test_several_values_for_one_key_are_ored_and_negated_operators_match_none_of_them():
    assert condition_holds("StringEquals", "k:Key", ["a", "b"], {"k:Key": "b"})
    assert not condition_holds("StringEquals", "k:Key", ["a", "b"], {"k:Key": "c"})
    assert condition_holds("StringNotEquals", "k:Key", ["a", "b"], {"k:Key": "c"})
    assert not condition_holds("StringNotEquals", "k:Key", ["a", "b"], {"k:Key": "b"})


def test_several_keys_and_several_operators_are_anded():
    block = {"StringEquals": {"k:A": "1", "k:B": "2"}, "Bool": {"aws:SecureTransport": "true"}}
    statement = allow("s3:GetObject", "*", Condition=block)
    both = request(**{"k:A": "1", "k:B": "2", "aws:SecureTransport": True})
    assert evaluate(both, [policy(statement)]).allowed
    one = request(**{"k:A": "1", "k:B": "3", "aws:SecureTransport": True})
    assert not evaluate(one, [policy(statement)]).allowed
    insecure = request(**{"k:A": "1", "k:B": "2", "aws:SecureTransport": False})
    assert not evaluate(insecure, [policy(statement)]).allowed


def test_set_operators_on_multivalued_keys():
    tags = {"aws:TagKeys": ["team", "cost"]}
    assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["cost"], tags)
    assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["owner"], tags)
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team", "cost", "owner"], tags)
    assert not condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], tags)
    # ForAllValues is vacuously true for a missing key, ForAnyValue false.
    assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["team"], {})
    assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], {})


def test_a_multivalued_key_without_a_set_operator_is_refused():
    with pytest.raises(UnsupportedPolicy):
        condition_holds("StringEquals", "aws:TagKeys", "team", {"aws:TagKeys": ["team", "cost"]})


def test_unknown_operators_are_refused():
    with pytest.raises(UnsupportedPolicy):
        condition_holds("DateLessThan", "aws:CurrentTime", "2026-01-01T00:00:00Z", {"aws:CurrentTime": "x"})


# -- Resource policies ------------------------------------------------------------------------------
def key_policy(*statements):
    return ResourcePolicy("kms", Policy("key policy", {"Statement": list(statements)}))


def test_kms_needs_the_key_policy_an_iam_allow_alone_is_not_enough():
    iam = [policy(allow("kms:Decrypt", KEY))]
    decrypt = request("kms:Decrypt", KEY)
    only_service = key_policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert not evaluate(decrypt, iam, only_service).allowed


def test_kms_key_policy_for_the_account_root_delegates_to_iam():
    root = key_policy({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"})
    assert evaluate(request("kms:Decrypt", KEY), [policy(allow("kms:Decrypt", KEY))], root).allowed
    assert not evaluate(request("kms:Decrypt", KEY), [], root).allowed


def test_kms_key_policy_naming_the_role_allows_without_iam():
    direct = key_policy(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    assert evaluate(request("kms:Decrypt", KEY), [], direct).allowed
    assert not evaluate(request("kms:Encrypt", KEY), [], direct).allowed


def test_a_bucket_policy_deny_wins_over_an_identity_allow():
    bucket = ResourcePolicy(
        "s3",
        Policy(
            "bucket policy",
            {
                "Statement": [
                    deny(
                        "s3:*",
                        [BUCKET, f"{BUCKET}/*"],
                        Principal={"AWS": "*"},
                        Condition={"Bool": {"aws:SecureTransport": "false"}},
                    )
                ]
            },
        ),
    )
    iam = [policy(allow("s3:GetObject", f"{BUCKET}/*"))]
    assert evaluate(request(**{"aws:SecureTransport": True}), iam, bucket).allowed
    assert evaluate(request(**{"aws:SecureTransport": False}), iam, bucket).explicit_deny


def test_a_same_account_resource_policy_naming_the_role_allows_on_its_own():
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    grant = ResourcePolicy(
        "sns", Policy("topic policy", {"Statement": [allow("sns:Publish", topic, Principal={"AWS": ROLE})]})
    )
    assert evaluate(request("sns:Publish", topic), [], grant).allowed
    for_service = ResourcePolicy(
        "sns",
        Policy(
            "topic policy",
            {"Statement": [allow("sns:Publish", topic, Principal={"Service": "cloudwatch.amazonaws.com"})]},
        ),
    )
    assert not evaluate(request("sns:Publish", topic), [], for_service).allowed


def test_not_principal_is_refused():
    odd = ResourcePolicy(
        "s3", Policy("bucket policy", {"Statement": [deny("s3:*", "*", NotPrincipal={"AWS": ROLE})]})
    )
    with pytest.raises(UnsupportedPolicy):
        evaluate(request(), [], odd)
