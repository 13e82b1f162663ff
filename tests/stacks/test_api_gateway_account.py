"""API Gateway access logging needs the account-level CloudWatch Logs role (AWS::ApiGateway::Account).

A stage with AccessLogSetting fails in an account and region where no role is set (API Gateway guide,
"Permissions for CloudWatch logging"). The default profile must deploy in a fresh account, so it
creates the role, keeps it on delete, and its stage waits for the account setting.
"""

from __future__ import annotations

from tests.support.gateway_stack import gateway_template

PUSH_TO_LOGS = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def of_type(resources: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in resources.items() if r["Type"] == resource_type}


def test_the_default_profile_sets_the_account_role_and_its_stage_waits_for_it(synthesized):
    resources = synthesized.template("managed-api", "Orchestration")["Resources"]
    ((account_id, account),) = of_type(resources, "AWS::ApiGateway::Account").items()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = resources[role_id]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    (policy,) = role["Properties"]["ManagedPolicyArns"]
    assert PUSH_TO_LOGS in str(policy)
    # Other APIs of the account keep logging after this stack is deleted.
    for resource in (account, role):
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage").values()
    assert "AccessLogSetting" in stage["Properties"]
    assert account_id in stage["DependsOn"]


def test_a_profile_that_relies_on_the_existing_role_creates_none(synthesized):
    for profile in ("self-hosted", "custom-model"):
        resources = synthesized.template(profile, "Orchestration")["Resources"]
        assert of_type(resources, "AWS::ApiGateway::Account") == {}, profile
        assert not any(PUSH_TO_LOGS in str(r) for r in of_type(resources, "AWS::IAM::Role").values())


def test_the_construct_creates_the_account_setting_only_when_asked(tmp_path):
    gateway_template(tmp_path / "a", account_logging_role="create").resource_count_is(
        "AWS::ApiGateway::Account", 1
    )
    gateway_template(tmp_path / "b", account_logging_role="existing").resource_count_is(
        "AWS::ApiGateway::Account", 0
    )
