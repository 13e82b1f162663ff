"""The gateway's API when deployed (gateway.endpoint): public behind a WAF web ACL, private through the
callers' VPC endpoints only, and execution logging at ERROR into an encrypted group of ours."""

from __future__ import annotations

import json

import pytest

from genai_stack.components.gateway_protection import GatewayProtection
from genai_stack.config import load_profile
from tests.access.conftest import ACCOUNT, deployment_of
from tests.access.evaluator import Policy, Request, ResourcePolicy, evaluate
from tests.support.gateway_stack import gateway_template

PRIVATE = "managed-api"  # the bank's profile
PUBLIC = ("custom-model", "self-hosted")
GATEWAY_PROFILES = (PRIVATE, *PUBLIC)


def one(synthesized, profile: str, resource_type: str) -> tuple[str, dict]:
    (item,) = synthesized.resources(profile, "Orchestration", resource_type).items()
    return item


def api_id(synthesized, profile: str) -> str:
    return one(synthesized, profile, "AWS::ApiGateway::RestApi")[0]


# --- public: the web ACL ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PUBLIC)
def test_a_public_gateway_has_a_regional_web_acl_with_the_managed_groups_and_a_rate_rule(
    synthesized, profile
):
    _, acl = one(synthesized, profile, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"  # API Gateway takes regional web ACLs only
    assert props["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    assert len({rule["Priority"] for rule in rules.values()}) == len(rules) == 3
    rate = rules["RatePerClientIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
        "Limit": load_profile(profile).gateway.waf_rate_limit,
    }
    for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
        statement = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert (statement["VendorName"], statement["Name"]) == ("AWS", group)
        assert rules[group]["OverrideAction"] == {"None": {}}  # the group's own actions (block) apply


def test_the_body_rules_only_count_so_prompts_about_code_and_long_prompts_pass(synthesized):
    """The managed rules that read the body block bodies over 8 KB and text such as <script>,
    ../../etc/passwd or ${jndi:...} (AWS WAF guide, baseline rule groups): a prompt is such a body.
    They count; header, URI and query rules keep blocking."""
    _, acl = one(synthesized, "custom-model", "AWS::WAFv2::WebACL")
    counted = {
        r["Name"]: sorted(
            o["Name"]
            for o in r["Statement"]["ManagedRuleGroupStatement"].get("RuleActionOverrides", [])
            if o["ActionToUse"] == {"Count": {}}
        )
        for r in acl["Properties"]["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert counted == {
        "AWSManagedRulesCommonRuleSet": [
            "CrossSiteScripting_BODY",
            "EC2MetaDataSSRF_BODY",
            "GenericLFI_BODY",
            "GenericRFI_BODY",
            "SizeRestrictions_BODY",
        ],
        "AWSManagedRulesKnownBadInputsRuleSet": ["JavaDeserializationRCE_BODY", "Log4JRCE_BODY"],
    }
    assert all(name.endswith("_BODY") for names in counted.values() for name in names)


@pytest.mark.parametrize("profile", PUBLIC)
def test_the_web_acl_is_associated_with_the_gateway_stage(synthesized, profile):
    acl_id, _ = one(synthesized, profile, "AWS::WAFv2::WebACL")
    stage_id, _ = one(synthesized, profile, "AWS::ApiGateway::Stage")
    _, association = one(synthesized, profile, "AWS::WAFv2::WebACLAssociation")
    props = association["Properties"]
    assert props["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # arn:aws:apigateway:{region}::/restapis/{api-id}/stages/{stage} (AWS WAF API, AssociateWebACL)
    parts = props["ResourceArn"]["Fn::Join"][1]
    assert parts == [
        "arn:aws:apigateway:us-east-1::/restapis/",
        {"Ref": api_id(synthesized, profile)},
        "/stages/",
        {"Ref": stage_id},
    ]


@pytest.mark.parametrize("profile", PUBLIC)
def test_the_web_acl_logs_to_an_encrypted_aws_waf_logs_group_without_the_keys(synthesized, profile):
    acl_id, _ = one(synthesized, profile, "AWS::WAFv2::WebACL")
    _, logging = one(synthesized, profile, "AWS::WAFv2::LoggingConfiguration")
    groups = synthesized.resources(profile, "Orchestration", "AWS::Logs::LogGroup")
    (group_id,) = [
        k
        for k, g in groups.items()
        if str(g["Properties"].get("LogGroupName", "")).startswith("aws-waf-logs-")
    ]
    group = groups[group_id]
    assert group["Properties"]["LogGroupName"] == f"aws-waf-logs-{profile}-gateway"
    (access_logs,) = [g for k, g in groups.items() if k.startswith("GatewayAccessLogs")]
    assert group["Properties"]["KmsKeyId"] == access_logs["Properties"]["KmsKeyId"]  # the platform key
    assert group["Properties"]["RetentionInDays"] == load_profile(profile).foundation.log_retention_days
    assert group["DeletionPolicy"] == "Retain"
    props = logging["Properties"]
    assert props["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # The group's ARN without GetAtt's trailing ':*'.
    (destination,) = props["LogDestinationConfigs"]
    assert destination["Fn::Join"][1][-2:] == [":log-group:", {"Ref": group_id}]
    assert {f["SingleHeader"]["Name"] for f in props["RedactedFields"]} == {"authorization", "x-api-key"}
    # Log delivery may write into the group before logging is switched on (CloudWatch Logs guide,
    # "Logs sent to CloudWatch Logs": the log group resource policy).
    policies = synthesized.resources(profile, "Orchestration", "AWS::Logs::ResourcePolicy")
    (policy_id,) = [k for k in policies if k.startswith("GatewayWafLogsPolicy")]
    assert set(logging["DependsOn"]) >= {policy_id, group_id}
    document = "".join(
        p if isinstance(p, str) else "<" + str(p.get("Ref")) + ">"
        for p in policies[policy_id]["Properties"]["PolicyDocument"]["Fn::Join"][1]
    )
    assert '"Principal":{"Service":"delivery.logs.amazonaws.com"}' in document
    assert '"Action":["logs:CreateLogStream","logs:PutLogEvents"]' in document
    assert f":log-group:<{group_id}>:log-stream:*" in document
    assert '"aws:SourceAccount":"<AWS::AccountId>"' in document


# --- private: the bank's gateway -------------------------------------------------------------------


def private_api(synthesized) -> dict:
    return one(synthesized, PRIVATE, "AWS::ApiGateway::RestApi")[1]["Properties"]


def test_the_bank_s_gateway_is_a_private_api_associated_with_its_vpc_endpoints(synthesized):
    endpoints = load_profile(PRIVATE).gateway.private_vpc_endpoint_ids
    assert private_api(synthesized)["EndpointConfiguration"] == {
        "Types": ["PRIVATE"],
        "VpcEndpointIds": endpoints,
    }
    # No web ACL (nothing reaches it from the internet) and no other way in.
    for resource_type in (
        "AWS::WAFv2::WebACL",
        "AWS::ApiGateway::DomainName",
        "AWS::ApiGateway::BasePathMapping",
    ):
        assert not synthesized.resources(PRIVATE, "Orchestration", resource_type)


INVOKE = "execute-api:Invoke"
METHOD = "execute-api:/api/POST/v1/chat/completions"  # API Gateway expands execute-api:/ to the API's ARN


def decision(policy: dict, **context):
    request = Request(principal="anonymous", action=INVOKE, resource=METHOD, context=context)
    return evaluate(request, [], ResourcePolicy(kind="execute-api", policy=Policy("api", policy)))


def test_only_requests_through_the_listed_vpc_endpoints_are_allowed(synthesized):
    policy = private_api(synthesized)["Policy"]
    (endpoint,) = load_profile(PRIVATE).gateway.private_vpc_endpoint_ids
    assert decision(policy, **{"aws:SourceVpce": endpoint}).allowed
    other = decision(policy, **{"aws:SourceVpce": "vpce-0ffffffffffffffff"})
    assert other.explicit_deny
    assert decision(policy).explicit_deny  # no VPC endpoint at all: from the internet
    deny, allow = policy["Statement"]
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceVpce": [endpoint]}}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceVpce": [endpoint]}}


def test_the_base_url_output_is_the_vpc_endpoint_alias_a_client_in_the_vpc_can_call(synthesized):
    """`{rest-api-id}-{vpce-id}.execute-api.{region}.amazonaws.com/{stage}` (API Gateway guide, "Invoke a
    private API", Route 53 alias); the stage URL resolves only where private DNS is on."""
    (endpoint,) = load_profile(PRIVATE).gateway.private_vpc_endpoint_ids
    stage_id, _ = one(synthesized, PRIVATE, "AWS::ApiGateway::Stage")
    url = synthesized.template(PRIVATE, "Orchestration")["Outputs"]["GatewayBaseUrl"]["Value"]
    assert url["Fn::Join"][1] == [
        "https://",
        {"Ref": api_id(synthesized, PRIVATE)},
        f"-{endpoint}.execute-api.us-east-1.",
        {"Ref": "AWS::URLSuffix"},
        "/",
        {"Ref": stage_id},
        "/v1",
    ]


def test_with_iam_auth_the_private_api_allows_this_account_s_principals_only(tmp_path):
    template = gateway_template(
        tmp_path,
        protection=GatewayProtection(endpoint="private", vpc_endpoint_ids=("vpce-0a1b2c3d4e5f60718",)),
    )
    (api,) = template.find_resources("AWS::ApiGateway::RestApi").values()
    policy = api["Properties"]["Policy"]
    _, allow = policy["Statement"]
    assert allow["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}  # never "*" with IAM auth
    vpce = {"aws:SourceVpce": "vpce-0a1b2c3d4e5f60718"}
    caller = "arn:aws:iam::123456789012:role/app"
    invoke = [Policy("app", {"Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": "*"}]})]
    resource = ResourcePolicy(kind="execute-api", policy=Policy("api", policy))
    # The account root delegates to the account's identity policies: a role allowed to invoke gets in,
    # one that is not does not.
    assert evaluate(Request(caller, INVOKE, METHOD, vpce), invoke, resource).allowed
    assert not evaluate(Request(caller, INVOKE, METHOD, vpce), [], resource).allowed
    assert evaluate(Request(caller, INVOKE, METHOD, {}), invoke, resource).explicit_deny
    template.resource_count_is("AWS::WAFv2::WebACL", 0)


def test_a_private_gateway_without_vpc_endpoints_is_refused():
    with pytest.raises(ValueError, match="at least one execute-api VPC endpoint"):
        GatewayProtection(endpoint="private")


# --- both: execution logging -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_execution_logging_is_errors_only_and_never_bodies(synthesized, profile):
    _, stage = one(synthesized, profile, "AWS::ApiGateway::Stage")
    (settings,) = stage["Properties"]["MethodSettings"]
    assert (settings["HttpMethod"], settings["ResourcePath"]) == ("*", "/*")
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False  # prompts never reach the execution logs


@pytest.mark.parametrize("profile", GATEWAY_PROFILES)
def test_the_execution_log_group_is_ours_encrypted_and_created_before_the_stage(synthesized, profile):
    """API Gateway writes to API-Gateway-Execution-Logs_{rest-api-id}/{stage} and creates it itself,
    unencrypted and never expiring, when it is missing (API Gateway guide, set-up-logging)."""
    _, stage = one(synthesized, profile, "AWS::ApiGateway::Stage")
    groups = synthesized.resources(profile, "Orchestration", "AWS::Logs::LogGroup")
    (group_id,) = [k for k in groups if k.startswith("GatewayExecutionLogs")]
    group = groups[group_id]
    assert group["Properties"]["LogGroupName"] == {
        "Fn::Join": [
            "",
            [
                "API-Gateway-Execution-Logs_",
                {"Ref": api_id(synthesized, profile)},
                "/" + stage["Properties"]["StageName"],
            ],
        ]
    }
    (access_logs,) = [g for k, g in groups.items() if k.startswith("GatewayAccessLogs")]
    assert group["Properties"]["KmsKeyId"] == access_logs["Properties"]["KmsKeyId"]
    assert group["Properties"]["RetentionInDays"] == load_profile(profile).foundation.log_retention_days
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert group_id in stage["DependsOn"]


def test_a_change_of_the_vpc_endpoints_makes_a_new_deployment(tmp_path):
    """API Gateway applies a changed resource policy only with a new deployment ("Create and attach an
    API Gateway resource policy to an API": https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-resource-policies-create-attach.html);
    the deployment's logical id must follow the policy, or the old endpoints would keep working."""

    def deployment(vpce: str) -> str:
        protection = GatewayProtection(endpoint="private", vpc_endpoint_ids=(vpce,))
        template = gateway_template(tmp_path / vpce, protection=protection)
        (logical_id,) = template.find_resources("AWS::ApiGateway::Deployment")
        return logical_id

    assert deployment("vpce-0a1b2c3d4e5f60718") != deployment("vpce-0a1b2c3d4e5f60719")


def test_log_delivery_may_write_waf_logs_into_that_group_only_for_this_account(synthesized):
    """The request CloudWatch Logs' delivery service makes for AWS WAF (CloudWatch Logs guide, "Logs sent
    to CloudWatch Logs": PutLogEvents by delivery.logs.amazonaws.com with aws:SourceAccount and
    aws:SourceArn `arn:aws:logs:{region}:{account}:...`), evaluated against the resolved resource policy."""
    deployment = deployment_of(synthesized, "custom-model")
    stack = "custom-model-orchestration"
    policies = synthesized.resources("custom-model", "Orchestration", "AWS::Logs::ResourcePolicy")
    (policy_id,) = [k for k in policies if k.startswith("GatewayWafLogsPolicy")]
    document = json.loads(
        deployment.resolver.resolve(stack, policies[policy_id]["Properties"]["PolicyDocument"])
    )
    resource = ResourcePolicy(kind="logs", policy=Policy("waf-logs", document))
    group = deployment.arn("logs", "log-group:aws-waf-logs-custom-model-gateway")
    source = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": deployment.arn("logs", "delivery-source:waf")}

    def put(log_stream_arn: str, context: dict) -> bool:
        request = Request("delivery.logs.amazonaws.com", "logs:PutLogEvents", log_stream_arn, context)
        return evaluate(request, [], resource).allowed

    stream = f"{group}:log-stream:us-east-1_gateway_0"
    assert put(stream, source)
    assert not put(stream, {**source, "aws:SourceAccount": "210987654321"})  # another account's delivery
    other_group = deployment.arn("logs", "log-group:/aws/lambda/other:log-stream:x")
    assert not put(other_group, source)
