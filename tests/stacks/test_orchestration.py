"""OrchestrationStack (managed-api profile): the gateway API, function, permissions and monitoring."""

from __future__ import annotations

import json

import pytest

from lambdas.gateway.config import Settings
from stacks.config import load_profile

PROFILE = "managed-api"


@pytest.fixture(scope="module")
def gateway_settings():
    return load_profile(PROFILE).gateway


@pytest.fixture(scope="module")
def resources(synthesized) -> dict:
    return synthesized.template(PROFILE, "Orchestration")["Resources"]


def of_type(resources: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in resources.items() if r["Type"] == resource_type}


def render(value) -> str:
    """A CloudFormation string expression with intrinsics replaced by placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    return "TOKEN"


@pytest.fixture(scope="module")
def function(resources) -> dict:
    (fn,) = [
        r["Properties"] for k, r in of_type(resources, "AWS::Lambda::Function").items() if "Gateway" in k
    ]
    return fn


def test_the_function_configuration_is_what_the_handler_accepts(function, gateway_settings):
    """The stack writes GATEWAY_CONFIG; the Lambda validates it at cold start with the same rules."""
    config = json.loads(render(function["Environment"]["Variables"]["GATEWAY_CONFIG"]))
    settings = Settings.model_validate(config)
    assert set(settings.chat) == set(gateway_settings.aliases)
    assert [t.model for t in settings.chat["copywriter"]] == [
        t.bedrock for t in gateway_settings.aliases["copywriter"]
    ]
    assert settings.guardrail is not None
    assert settings.cache is not None
    assert settings.cache.ttl_seconds == gateway_settings.cache.ttl_seconds
    assert set(settings.knowledge_bases) == {"product-facts"}
    assert settings.max_body_bytes == gateway_settings.max_body_kb * 1024
    assert settings.log_prompts is False
    assert "bedrock:amazon.nova-lite-v1:0" in settings.prices


def test_the_function_times_out_after_the_router_deadline_and_before_api_gateway(function, gateway_settings):
    assert gateway_settings.deadline_seconds < function["Timeout"] < 29


def test_the_function_role_gets_the_profile_s_model_access_policy(resources, synthesized):
    (role,) = [
        r for k, r in of_type(resources, "AWS::IAM::Role").items() if k.startswith("GatewayHandlerRole")
    ]
    (policy_arn,) = role["Properties"]["ManagedPolicyArns"]
    assert policy_arn["Fn::GetStackOutput"]["StackName"] == "managed-api-bedrock"
    assert "ModelAccessPolicy" in policy_arn["Fn::GetStackOutput"]["OutputName"]


def test_the_function_may_use_only_its_cache_table_key_and_knowledge_bases(resources):
    (policy,) = [
        p for k, p in of_type(resources, "AWS::IAM::Policy").items() if k.startswith("GatewayHandlerRole")
    ]
    statements = {s.get("Sid", ""): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    cache = [s for s in statements.values() if "dynamodb:GetItem" in s["Action"]]
    assert len(cache) == 1
    assert set(cache[0]["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert cache[0]["Resource"]["Fn::GetStackOutput"]["StackName"] == "managed-api-foundation"
    assert set(statements["UseTheCacheKey"]["Action"]) == {
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
    }
    assert statements["RetrieveFromKnowledgeBases"]["Action"] == "bedrock:Retrieve"
    assert "KnowledgeBase" in json.dumps(statements["RetrieveFromKnowledgeBases"]["Resource"])


def test_the_three_openai_routes_require_an_api_key_and_posts_are_validated(resources):
    methods = of_type(resources, "AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"GET", "POST"}
    assert len(methods) == 3
    for method in methods.values():
        props = method["Properties"]
        assert props["ApiKeyRequired"] is True
        assert props["Integration"]["Type"] == "AWS_PROXY"
        if props["HttpMethod"] == "POST":
            assert "RequestValidatorId" in props
            assert "application/json" in props["RequestModels"]
    paths = {r["Properties"]["PathPart"] for r in of_type(resources, "AWS::ApiGateway::Resource").values()}
    assert paths == {"v1", "chat", "completions", "embeddings", "models"}


def test_each_tenant_has_a_key_and_a_usage_plan_with_its_limits(resources, gateway_settings):
    plans = [r["Properties"] for r in of_type(resources, "AWS::ApiGateway::UsagePlan").values()]
    assert len(plans) == len(gateway_settings.tenants) == len(of_type(resources, "AWS::ApiGateway::ApiKey"))
    by_description = {p["Description"].split()[-1]: p for p in plans}
    for tenant in gateway_settings.tenants:
        plan = by_description[tenant.name]
        assert plan["Throttle"] == {"BurstLimit": tenant.burst, "RateLimit": tenant.rate_per_second}
        assert plan["Quota"] == {"Limit": tenant.monthly_quota, "Period": "MONTH"}
    assert len(of_type(resources, "AWS::ApiGateway::UsagePlanKey")) == len(gateway_settings.tenants)


def test_the_stage_writes_access_logs_and_traces(resources):
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert '"status":"$context.status"' in props["AccessLogSetting"]["Format"]
    (log_group,) = [
        g for k, g in of_type(resources, "AWS::Logs::LogGroup").items() if k.startswith("GatewayAccessLogs")
    ]
    assert "KmsKeyId" in log_group["Properties"]


def test_the_cache_table_is_stateful_in_the_foundation(synthesized):
    (table,) = synthesized.resources(PROFILE, "Foundation", "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_gateway_alarms_and_dashboard_section(resources, synthesized):
    alarms = {k: a["Properties"] for k, a in of_type(resources, "AWS::CloudWatch::Alarm").items()}
    assert len(alarms) == 3
    for alarm in alarms.values():
        assert alarm["AlarmActions"]
    (rate,) = [a for k, a in alarms.items() if k.startswith("GatewayServerErrorRate")]
    assert rate["Threshold"] == 5
    (dashboard,) = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "## Model gateway" in body
    assert "GenAiStack/Gateway,alias,service,target,tenant" in body


def test_outputs_give_the_base_url_and_the_key_ids(synthesized, gateway_settings):
    outputs = synthesized.template(PROFILE, "Orchestration")["Outputs"]
    assert "GatewayBaseUrl" in outputs
    assert sum(1 for name in outputs if name.startswith("GatewayApiKeyId")) == len(gateway_settings.tenants)
