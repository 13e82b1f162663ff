"""Rotation of the Aurora vector store's Bedrock login: the four Secrets Manager steps against moto's
Secrets Manager (staging labels as AWS moves them), the Data API side through a botocore Stubber."""

from __future__ import annotations

import json
import uuid
from typing import Literal

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.login_rotation import handler as handler_module
from lambdas.login_rotation import logic as rotation_logic
from lambdas.login_rotation.logic import EXCLUDED_CHARACTERS, Rotation, RotationError, Store
from lambdas.pgvector_schema import logic as schema_logic

REGION = "us-east-1"
CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:vectors"
ADMIN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def client(service: str):
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def secrets():
    with mock_aws():
        yield client("secretsmanager")


@pytest.fixture
def login(secrets) -> str:
    """The Bedrock login as CDK's DatabaseSecret creates it, with rotation turned on (no immediate
    rotation, as the stack configures it)."""
    arn = secrets.create_secret(
        Name="BedrockLogin", SecretString=json.dumps({"username": "bedrock_user", "password": "first"})
    )["ARN"]
    secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    return arn


SALT = bytes(range(16))


@pytest.fixture(autouse=True)
def fixed_salt(monkeypatch):
    """The verifiers' salt is random per rotation; fixed here so that the stubbed SQL can be matched."""
    monkeypatch.setattr(rotation_logic, "new_salt", lambda: SALT)


@pytest.fixture
def rds_data():
    rds = client("rds-data")
    with Stubber(rds) as stub:
        yield rds, stub
        stub.assert_no_pending_responses()


def rotation(
    secrets, rds, login_arn: str, strategy: Literal["alternating_users", "single_user"] = "alternating_users"
) -> Rotation:
    store = Store(
        cluster_arn=CLUSTER,
        admin_secret_arn=ADMIN,
        database="vectors",
        login_secret_arn=login_arn,
        strategy=strategy,
    )
    return Rotation(store, secrets=secrets, rds_data=rds, time_left=lambda: 600.0, sleep=lambda s: None)


def as_admin(sql: str, **extra) -> dict:
    return {"resourceArn": CLUSTER, "secretArn": ADMIN, "database": "vectors", "sql": sql, **extra}


def role_check(username: str) -> dict:
    return as_admin(
        "SELECT rolcanlogin, pg_has_role(oid, :role, 'USAGE') FROM pg_roles WHERE rolname = :name",
        parameters=[
            {"name": "role", "value": {"stringValue": "bedrock_user"}},
            {"name": "name", "value": {"stringValue": username}},
        ],
    )


def role_answer(can_login: bool, member: bool) -> dict:
    return {"records": [[{"booleanValue": can_login}, {"booleanValue": member}]]}


class StartedRotation:
    """moto's Secrets Manager, plus what AWS does when a rotation starts and moto cannot show: the new
    version id (the ClientRequestToken of every step) already carries AWSPENDING, with no value until
    createSecret puts one (RotateSecret: "the AWSPENDING staging label might be attached to an empty
    secret version"; https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html)."""

    def __init__(self, secrets, token: str) -> None:
        self._secrets = secrets
        self.token = token

    def __getattr__(self, name: str):
        return getattr(self._secrets, name)

    def _has_value(self) -> bool:
        return any(
            version["VersionId"] == self.token
            for version in self._secrets.list_secret_version_ids(SecretId=self._arn)["Versions"]
        )

    def describe_secret(self, SecretId: str):
        self._arn = SecretId
        described = self._secrets.describe_secret(SecretId=SecretId)
        stages = dict(described.get("VersionIdsToStages", {}))
        if described.get("RotationEnabled") and not self._has_value():
            stages[self.token] = ["AWSPENDING"]
        return {**described, "VersionIdsToStages": stages}


def started(secrets, login_arn: str) -> StartedRotation:
    return StartedRotation(secrets, str(uuid.uuid4()))


def rotate(secrets, rds, stub, login_arn: str, strategy: str = "alternating_users") -> dict:
    """One whole rotation, with the Data API answers it needs; returns the new current value."""
    secrets = started(secrets, login_arn)
    token = secrets.token
    steps = rotation(secrets, rds, login_arn, strategy)
    steps.run("createSecret", login_arn, token)
    new = json.loads(
        secrets.get_secret_value(SecretId=login_arn, VersionId=token, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    )
    for statement in schema_logic.login_statements(new["username"], new["password"], SALT):
        stub.add_response("execute_statement", {}, as_admin(statement))
    steps.run("setSecret", login_arn, token)
    stub.add_response("execute_statement", role_answer(True, True), role_check(new["username"]))
    steps.run("testSecret", login_arn, token)
    steps.run("finishSecret", login_arn, token)
    return current_value(secrets, login_arn)


def current_value(secrets, login_arn: str) -> dict:
    # By label: moto 5.2.5 answers a GetSecretValue without a stage with the version the secret was
    # created or last put with, not the one UpdateSecretVersionStage made AWSCURRENT.
    return json.loads(secrets.get_secret_value(SecretId=login_arn, VersionStage="AWSCURRENT")["SecretString"])


def test_alternating_users_switch_logins_and_keep_the_previous_one_valid(secrets, login, rds_data):
    rds, stub = rds_data
    first = rotate(secrets, rds, stub, login)
    assert first["username"] == "bedrock_user_clone"
    assert first["password"] != "first"
    assert len(first["password"]) == 32
    assert not set(first["password"]) & set(EXCLUDED_CHARACTERS)
    previous = json.loads(
        secrets.get_secret_value(SecretId=login, VersionStage="AWSPREVIOUS")["SecretString"]
    )
    assert previous == {"username": "bedrock_user", "password": "first"}  # untouched, still valid
    second = rotate(secrets, rds, stub, login)
    assert second["username"] == "bedrock_user"
    assert second["password"] not in ("first", first["password"])


def test_single_user_changes_the_bedrock_login_s_own_password(secrets, login, rds_data):
    rds, stub = rds_data
    after = rotate(secrets, rds, stub, login, strategy="single_user")
    assert after["username"] == "bedrock_user"
    assert after["password"] != "first"


def test_a_repeated_create_step_keeps_the_first_pending_version(secrets, login, rds_data):
    rds, _ = rds_data
    secrets = started(secrets, login)
    token = secrets.token
    steps = rotation(secrets, rds, login)
    assert steps.run("createSecret", login, token).startswith("pending version names")
    value = secrets.get_secret_value(SecretId=login, VersionId=token)["SecretString"]
    assert steps.run("createSecret", login, token) == "pending version exists"
    assert secrets.get_secret_value(SecretId=login, VersionId=token)["SecretString"] == value


def test_the_test_step_fails_when_the_login_lacks_the_bedrock_role_s_rights(secrets, login, rds_data):
    rds, stub = rds_data
    secrets = started(secrets, login)
    token = secrets.token
    steps = rotation(secrets, rds, login)
    steps.run("createSecret", login, token)
    stub.add_response("execute_statement", role_answer(True, False), role_check("bedrock_user_clone"))
    with pytest.raises(RotationError, match="lacks the rights of bedrock_user"):
        steps.run("testSecret", login, token)
    stub.add_response("execute_statement", {"records": []}, role_check("bedrock_user_clone"))
    with pytest.raises(RotationError, match="does not exist"):
        steps.run("testSecret", login, token)
    assert current_value(secrets, login)["password"] == "first"  # nothing moved


def test_a_resuming_cluster_is_waited_for_in_the_set_step(secrets, login, rds_data):
    rds, stub = rds_data
    secrets = started(secrets, login)
    token = secrets.token
    steps = rotation(secrets, rds, login)
    steps.run("createSecret", login, token)
    new = json.loads(secrets.get_secret_value(SecretId=login, VersionId=token)["SecretString"])
    stub.add_client_error("execute_statement", service_error_code="DatabaseResumingException")
    for statement in schema_logic.login_statements(new["username"], new["password"], SALT):
        stub.add_response("execute_statement", {}, as_admin(statement))
    assert steps.run("setSecret", login, token) == "password set for bedrock_user_clone"


def test_only_the_login_secret_and_only_pending_versions_are_rotated(secrets, login, rds_data):
    rds, _ = rds_data
    steps = rotation(secrets, rds, login)
    other = secrets.create_secret(Name="other", SecretString="{}")["ARN"]
    with pytest.raises(RotationError, match=r"rotates .*BedrockLogin.* only"):
        steps.run("createSecret", other, str(uuid.uuid4()))
    with pytest.raises(RotationError, match="does not exist"):
        steps.run("createSecret", login, str(uuid.uuid4()))  # a token Secrets Manager never issued
    current = secrets.describe_secret(SecretId=login)["VersionIdsToStages"]
    (current_version,) = [v for v, labels in current.items() if "AWSCURRENT" in labels]
    assert steps.run("finishSecret", login, current_version) == "already current"


def test_a_secret_whose_rotation_was_turned_off_is_refused(secrets, login, rds_data):
    rds, _ = rds_data
    rotation_on = started(secrets, login)

    class TurnedOff(StartedRotation):
        def describe_secret(self, SecretId: str):
            return {**super().describe_secret(SecretId=SecretId), "RotationEnabled": False}

    turned_off = TurnedOff(secrets, rotation_on.token)
    with pytest.raises(RotationError, match="rotation is not enabled"):
        rotation(turned_off, rds, login).run("createSecret", login, rotation_on.token)


def test_the_configuration_test_secrets_manager_runs_when_the_schedule_is_created_passes(secrets, rds_data):
    """RotateSecret with RotateImmediately false "tests the rotation configuration by running the
    testSecret step ... creates an AWSPENDING version of the secret and then removes it" (Secrets
    Manager API reference, RotateSecret). The pending version then holds the current value, and
    DescribeSecret may not yet say RotationEnabled: the role it names (bedrock_user, which the schema
    resource created before the schedule) passes the check."""
    rds, stub = rds_data
    current = {"username": "bedrock_user", "password": "first"}
    arn = secrets.create_secret(Name="BedrockLogin", SecretString=json.dumps(current))["ARN"]
    token = str(uuid.uuid4())
    secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(current), VersionStages=["AWSPENDING"]
    )
    assert "RotationEnabled" not in secrets.describe_secret(SecretId=arn)
    stub.add_response("execute_statement", role_answer(True, True), role_check("bedrock_user"))
    assert rotation(secrets, rds, arn).run("testSecret", arn, token) == (
        "bedrock_user may log in with the rights of bedrock_user"
    )


def test_a_pending_version_from_another_strategy_is_refused_before_any_change(secrets, login, rds_data):
    rds, _ = rds_data
    secrets = started(secrets, login)
    rotation(secrets, rds, login, strategy="single_user").run("createSecret", login, secrets.token)
    with pytest.raises(RotationError, match="names 'bedrock_user', but after 'bedrock_user' the alternating"):
        rotation(secrets, rds, login).run("setSecret", login, secrets.token)  # no SQL was stubbed: none ran


def test_a_secret_naming_another_role_is_refused_before_any_change(secrets, rds_data):
    rds, _ = rds_data
    arn = secrets.create_secret(
        Name="admin", SecretString=json.dumps({"username": "postgres", "password": "x"})
    )["ARN"]
    secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    secrets = started(secrets, arn)
    with pytest.raises(RotationError, match="not the Bedrock login"):
        rotation(secrets, rds, arn).run("createSecret", arn, secrets.token)
    assert not secrets._has_value()  # no version was put


# --------------------------------------------------------------------------------------------------
# The handler: event parsing and configuration.


class FakeContext:
    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def test_the_handler_runs_a_step_from_a_secrets_manager_event(secrets, login, rds_data, monkeypatch):
    rds, _ = rds_data
    secrets = started(secrets, login)
    monkeypatch.setattr(handler_module, "clients", lambda: (secrets, rds))
    for name, value in {
        "CLUSTER_ARN": CLUSTER,
        "ADMIN_SECRET_ARN": ADMIN,
        "DATABASE": "vectors",
        "LOGIN_SECRET_ARN": login,
        "STRATEGY": "alternating_users",
    }.items():
        monkeypatch.setenv(name, value)
    event = {"Step": "createSecret", "SecretId": login, "ClientRequestToken": secrets.token}
    assert handler_module.on_event(event, FakeContext()) == {
        "Step": "createSecret",
        "Result": "pending version names bedrock_user_clone",
    }
    monkeypatch.setenv("STRATEGY", "every_user")
    with pytest.raises(ValueError, match="STRATEGY is 'every_user'"):
        handler_module.on_event(event, FakeContext())


@pytest.mark.parametrize(
    "event",
    [
        {"Step": "rotateEverything", "SecretId": "x", "ClientRequestToken": str(uuid.uuid4())},
        {"Step": "createSecret", "ClientRequestToken": str(uuid.uuid4())},
        {"Step": "createSecret", "SecretId": "x", "ClientRequestToken": "short"},
    ],
)
def test_what_is_not_a_rotation_event_is_refused_without_a_call(event, monkeypatch):
    monkeypatch.setattr(handler_module, "clients", lambda: pytest.fail("no AWS call on bad input"))
    with pytest.raises(ValueError, match="not a Secrets Manager rotation event"):
        handler_module.on_event(event, FakeContext())
