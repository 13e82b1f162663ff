"""OrchestrationStack (managed-api profile): the gateway API, function, permissions and monitoring."""

from __future__ import annotations

import json
import re

import pytest

from genai_stack.cli.keys import usage_plan_name
from genai_stack.config import load_profile
from lambdas.gateway.config import Settings
from lambdas.gateway_authorizer.keys import AUTHORIZER_CACHE_SECONDS, new_key

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
        r["Properties"]
        for k, r in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith("GatewayHandler")
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
    assert gateway_settings.deadline_seconds < function["Timeout"] <= 29 - 1  # 1 s under API Gateway


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
    listed = policy["Properties"]["PolicyDocument"]["Statement"]
    statements = {s["Sid"]: s for s in listed if "Sid" in s}
    tables: dict[str, set[str]] = {}
    for statement in listed:
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                output = resource["Fn::GetStackOutput"]["OutputName"]
                tables.setdefault(output, set()).update(as_list(statement["Action"]))
    # The cache is read and written whole; the tenants' spend only counted (allowance.py); answers and
    # ratings only read and written (feedback.py): nothing is deleted.
    cache = [actions for output, actions in tables.items() if "GatewayCacheTable" in output]
    spend = [actions for output, actions in tables.items() if "GatewaySpendTable" in output]
    feedback = [actions for output, actions in tables.items() if "GatewayFeedbackTable" in output]
    assert cache == [{"dynamodb:GetItem", "dynamodb:PutItem"}]
    assert spend == [{"dynamodb:UpdateItem"}]
    assert feedback == [{"dynamodb:GetItem", "dynamodb:PutItem"}]
    assert len(tables) == 3
    assert set(statements["UseTheCacheKey"]["Action"]) == {
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
    }
    assert statements["RetrieveFromKnowledgeBases"]["Action"] == "bedrock:Retrieve"
    assert "KnowledgeBase" in json.dumps(statements["RetrieveFromKnowledgeBases"]["Resource"])


def test_the_routes_require_a_bearer_key_and_posts_are_validated(resources):
    methods = of_type(resources, "AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"GET", "POST"}
    assert len(methods) == 5  # chat, embeddings, models, models/{id} and feedback (gateway.feedback)
    (authorizer_id,) = of_type(resources, "AWS::ApiGateway::Authorizer")
    for method in methods.values():
        props = method["Properties"]
        assert props["ApiKeyRequired"] is True  # the authorizer's usage-plan key is still metered
        assert props["AuthorizationType"] == "CUSTOM"
        assert props["AuthorizerId"] == {"Ref": authorizer_id}
        assert props["Integration"]["Type"] == "AWS_PROXY"
        if props["HttpMethod"] == "POST":
            assert "RequestValidatorId" in props
            assert "application/json" in props["RequestModels"]
    paths = {r["Properties"]["PathPart"] for r in of_type(resources, "AWS::ApiGateway::Resource").values()}
    assert paths == {"v1", "chat", "completions", "embeddings", "models", "{id}", "feedback"}


def test_each_tenant_has_a_usage_plan_with_its_limits_named_as_genai_stack_keys_finds_it(
    resources, gateway_settings
):
    plans = [r["Properties"] for r in of_type(resources, "AWS::ApiGateway::UsagePlan").values()]
    assert len(plans) == len(gateway_settings.tenants)
    by_name = {p["UsagePlanName"]: p for p in plans}
    for tenant in gateway_settings.tenants:
        plan = by_name[usage_plan_name(PROFILE, tenant.name)]
        assert plan["Throttle"] == {"BurstLimit": tenant.burst, "RateLimit": tenant.rate_per_second}
        assert plan["Quota"] == {"Limit": tenant.monthly_quota, "Period": "MONTH"}
    # Keys are minted by `genai-stack keys`, never in the template (their values would be in it).
    assert not of_type(resources, "AWS::ApiGateway::ApiKey")
    assert not of_type(resources, "AWS::ApiGateway::UsagePlanKey")


def test_the_key_authorizer_reads_the_bearer_header_and_supplies_the_usage_plan_key(resources, synthesized):
    (api,) = of_type(resources, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    (authorizer,) = of_type(resources, "AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == "TOKEN"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == AUTHORIZER_CACHE_SECONDS > 0
    pattern = re.compile(props["IdentityValidationExpression"])
    assert pattern.match("Bearer " + new_key())  # what `genai-stack keys` mints passes API Gateway's check
    assert not pattern.match("Bearer sk-with-dashes-0123456789")  # never reaches the function
    assert not pattern.match(new_key())  # the header must say Bearer, as OpenAI clients do
    uri = json.dumps(props["AuthorizerUri"])
    (function,) = [
        r["Properties"]
        for k, r in of_type(resources, "AWS::Lambda::Function").items()
        if f'"{k}", "Arn"' in uri
    ]
    assert function["Handler"] == "lambdas.gateway_authorizer.handler.on_event"
    # The key table is in the foundation stack (stateful) and the function reads only it.
    tables = synthesized.resources(PROFILE, "Foundation", "AWS::DynamoDB::Table")
    (table_id,) = {
        t
        for t in tables
        if not t.startswith(("GatewayCacheTable", "GatewaySpendTable", "GatewayFeedbackTable"))
    }
    assert table_id.startswith("GatewayKeysTable")
    assert "GatewayKeyTableName" in synthesized.template(PROFILE, "Foundation")["Outputs"]


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
    table = synthesized.resources(PROFILE, "Foundation", "AWS::DynamoDB::Table")["GatewayCacheTable939219AC"]
    props = table["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_gateway_alarms_and_dashboard_section(resources, synthesized):
    alarms = {k: a["Properties"] for k, a in of_type(resources, "AWS::CloudWatch::Alarm").items()}
    # 5xx share, p90 latency, unhandled errors (caught by the handler, so Lambda's Errors misses
    # them), function errors (timeouts, out of memory), a fallback share per alias with a fallback, and
    # users' satisfaction per chat alias (gateway.feedback).
    kinds = sorted(re.sub(r"[0-9A-F]{8}$", "", k.split("Gateway", 1)[1]) for k in alarms)
    satisfaction = [f"Satisfaction{alias}" for alias in load_profile(PROFILE).gateway.aliases]
    assert kinds == sorted(
        [
            "ServerErrorRate",
            "LatencyP90",
            "UnhandledErrors",
            "FunctionErrors",
            "FallbackSharecopywriter",
            "SemanticCacheErrorsdrafts",  # gateway.semantic_cache's alias
            *satisfaction,
        ]
    )
    for alarm in alarms.values():
        assert alarm["AlarmActions"]
    (rate,) = [a for k, a in alarms.items() if k.startswith("GatewayServerErrorRate")]
    assert rate["Threshold"] == 5
    # Half of drafts' semantic cache lookups failing for 15 minutes: failures over lookups.
    (semantic,) = [a for k, a in alarms.items() if k.startswith("GatewaySemanticCacheErrors")]
    assert (semantic["Threshold"], semantic["EvaluationPeriods"]) == (50, 3)
    (expression,) = [m["Expression"] for m in semantic["Metrics"] if "Expression" in m]
    assert expression == "100 * failed / MAX([lookups, 1])"
    (share,) = [a for k, a in alarms.items() if k.startswith("GatewayFallbackShare")]
    assert share["Threshold"] == 20
    assert share["EvaluationPeriods"] == 3
    # A mean score below 0.6 with at least 10 ratings in the hour: the shortfall 0.6 - mean is above 0.
    (drafts,) = [a for k, a in alarms.items() if k.startswith("GatewaySatisfactiondrafts")]
    assert drafts["Threshold"] == 1e-6
    assert drafts["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (expression,) = [m["Expression"] for m in drafts["Metrics"] if "Expression" in m]
    assert expression == "IF(ratings >= 10, 0.6 - mean, -1)"
    assert drafts["TreatMissingData"] == "notBreaching"
    (dashboard,) = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "## Model gateway" in body
    assert "GenAiStack/Gateway,alias,service,target,tenant" in body
    assert 'service=\\\\\\"managed-api-gateway\\\\\\"' in body  # this profile's gateway only


def test_outputs_give_the_base_url_and_no_keys(synthesized):
    outputs = synthesized.template(PROFILE, "Orchestration")["Outputs"]
    assert "GatewayBaseUrl" in outputs
    assert not [name for name in outputs if "ApiKey" in name]


# --------------------------------------------------------------------------------------------------
# Guardrail versions across the bedrock and orchestration stacks


def test_the_orchestration_template_changes_whenever_the_guardrail_configuration_does(synthesized, tmp_path):
    """The CDK CLI skips a stack whose template did not change, and only a deployed template re-reads
    the guardrail version through Fn::GetStackOutput: a guardrail change must change this template
    too, or the gateway keeps sending the old version."""
    from genai_stack.cli.synth import cdk_app
    from genai_stack.stage import ProfileStacks

    profile = load_profile(PROFILE)
    guardrail = profile.bedrock.guardrail
    changed = profile.model_copy(
        update={
            "bedrock": profile.bedrock.model_copy(
                update={
                    "guardrail": guardrail.model_copy(
                        update={"blocked_input_message": guardrail.blocked_input_message + " (v2)"}
                    )
                }
            )
        }
    )
    app = cdk_app(tmp_path)
    stacks = ProfileStacks(app, changed.name, profile=changed)
    assembly = app.synth()
    before = synthesized.template(PROFILE, "Orchestration")
    after = assembly.get_stack_by_name(stacks.orchestration.stack_name).template
    bedrock_before = synthesized.template(PROFILE, "Bedrock")
    bedrock_after = assembly.get_stack_by_name(stacks.bedrock.stack_name).template
    assert bedrock_before != bedrock_after  # the setting changed the guardrail (a new version)
    assert before != after

    def without_digest(template: dict) -> str:
        return re.sub(r'\\"config\\":\\"[0-9a-f]{16}\\"', "", json.dumps(template))

    assert without_digest(before) == without_digest(after)  # the digest is what changes it


class Account:
    """A deployed world: attribute values per state, and a small evaluator of AWS's documented
    policy logic (an explicit Deny wins; else an Allow whose action, resource and conditions
    match; negated string operators match a missing key)."""

    ACCOUNT = "123456789012"
    GUARDRAIL = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/abcd1234efgh"

    def __init__(self, bedrock: dict) -> None:
        self.bedrock = bedrock
        self.attributes: dict[tuple[str, str], str] = {}

    def resolve(self, value, outputs_of=None):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self.resolve(v, outputs_of) for v in value]
        (function, argument), *_ = value.items()
        if function == "Ref":
            pseudo = {"AWS::AccountId": self.ACCOUNT, "AWS::Region": "us-east-1", "AWS::Partition": "aws"}
            return pseudo.get(argument, f"ref-{argument}")
        if function == "Fn::GetAtt":
            return self.attributes.get(tuple(argument), f"{argument[0]}.{argument[1]}")
        if function == "Fn::Join":
            return argument[0].join(str(self.resolve(part, outputs_of)) for part in argument[1])
        if function == "Fn::GetStackOutput":
            if outputs_of and argument["StackName"] in outputs_of:
                return outputs_of[argument["StackName"]][argument["OutputName"]]
            return f"output-{argument['OutputName']}"
        raise AssertionError(f"unexpected intrinsic {function}")

    def deploy_bedrock(self, version: str, window_event: dict | None) -> None:
        """Attributes after the bedrock stack's update: the published version and what the version
        window custom resource (the real handler, on CloudFormation's event) returned."""
        from lambdas.guardrail_window.handler import handle

        (guardrail,) = [
            k for k, r in self.bedrock["Resources"].items() if r["Type"] == "AWS::Bedrock::Guardrail"
        ]
        (published,) = [
            k for k, r in self.bedrock["Resources"].items() if r["Type"] == "AWS::Bedrock::GuardrailVersion"
        ]
        self.attributes[(guardrail, "GuardrailArn")] = self.GUARDRAIL
        self.attributes[(published, "Version")] = version
        windows = [
            k for k, r in self.bedrock["Resources"].items() if r["Type"] == "Custom::GuardrailVersionWindow"
        ]
        for window in windows:
            assert window_event is not None
            data = handle(window_event)["Data"]
            for name, value in data.items():
                self.attributes[(window, name)] = value

    def outputs(self) -> dict[str, str]:
        return {name: self.resolve(o["Value"]) for name, o in self.bedrock["Outputs"].items()}

    def policy(self) -> list[dict]:
        (policy,) = [
            r
            for i, r in self.bedrock["Resources"].items()
            if r["Type"] == "AWS::IAM::ManagedPolicy" and i.startswith("ModelAccess")
        ]
        return self.resolve_statements(policy["Properties"]["PolicyDocument"]["Statement"])

    def resolve_statements(self, statements: list[dict]) -> list[dict]:
        resolved = []
        for statement in statements:
            conditions = {
                operator: {key: self.resolve(v) for key, v in keys.items()}
                for operator, keys in statement.get("Condition", {}).items()
            }
            resolved.append(
                {
                    "Effect": statement["Effect"],
                    "Action": as_list(statement["Action"]),
                    "Resource": [self.resolve(r) for r in as_list(statement["Resource"])],
                    "Condition": conditions,
                }
            )
        return resolved

    @staticmethod
    def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str]) -> bool:
        from fnmatch import fnmatchcase

        def condition_holds(operator: str, key: str, values) -> bool:
            values = as_list(values)
            present = key in context
            if operator == "StringEquals":
                return present and context[key] in values
            if operator == "StringNotEquals":
                return not present or context[key] not in values
            if operator == "StringLike":
                return present and any(fnmatchcase(context[key], v) for v in values)
            raise AssertionError(f"operator {operator} not modelled")

        def matches(statement: dict) -> bool:
            return (
                any(fnmatchcase(action, a) for a in statement["Action"])
                and any(fnmatchcase(resource, r) for r in statement["Resource"])
                and all(
                    condition_holds(operator, key, values)
                    for operator, keys in statement["Condition"].items()
                    for key, values in keys.items()
                )
            )

        matching = [s for s in statements if matches(s)]
        return bool(matching) and all(s["Effect"] == "Allow" for s in matching)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def window_event(request_type: str, version: str, old_version: str | None = None) -> dict:
    event = {
        "RequestType": request_type,
        "ResourceProperties": {"GuardrailArn": Account.GUARDRAIL, "Version": version},
    }
    if old_version is not None:
        event["OldResourceProperties"] = {"GuardrailArn": Account.GUARDRAIL, "Version": old_version}
    return event


def test_the_gateway_s_guardrail_is_accepted_in_every_state_of_a_rollout(synthesized, function):
    """`cdk deploy --all` after guardrail changes: the bedrock stack is updated first (new version,
    new policy), the orchestration stack after it; the gateway's request must pass the model-access
    policy in every state in between, and after a rollback. The request: Converse with the
    guardrail ARN and version from GATEWAY_CONFIG, which Bedrock evaluates as
    `bedrock:GuardrailIdentifier = ARN:VERSION` (Bedrock user guide, guardrails-permissions-id)."""
    world = Account(synthesized.template(PROFILE, "Bedrock"))
    bedrock_stack = f"{PROFILE}-bedrock"
    raw_config = function["Environment"]["Variables"]["GATEWAY_CONFIG"]
    model = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"

    def gateway_sends(outputs: dict[str, str]) -> str:
        config = json.loads(world.resolve(raw_config, {bedrock_stack: outputs}))
        return f"{config['guardrail']['identifier']}:{config['guardrail']['version']}"

    def allows(identifier: str | None) -> bool:
        context = {} if identifier is None else {"bedrock:GuardrailIdentifier": identifier}
        return Account.allowed(world.policy(), "bedrock:InvokeModel", model, context)

    # First deploy: both stacks at version 1.
    world.deploy_bedrock("1", window_event("Create", "1"))
    sends = gateway_sends(world.outputs())
    assert sends == f"{Account.GUARDRAIL}:1"
    assert allows(sends)
    # A guardrail change: the bedrock stack publishes 2; the orchestration stack is not updated yet.
    world.deploy_bedrock("2", window_event("Update", "2", old_version="1"))
    assert allows(sends), "the gateway still sends version 1 between the two stacks' updates"
    # The orchestration stack is updated (its template changed) and re-reads the version.
    sends = gateway_sends(world.outputs())
    assert sends.endswith(":2")
    assert allows(sends)
    # A second change, and a rollback of the bedrock stack after its policy was updated.
    world.deploy_bedrock("3", window_event("Update", "3", old_version="2"))
    assert allows(sends)
    world.deploy_bedrock("2", window_event("Update", "2", old_version="3"))
    assert allows(sends)
    world.deploy_bedrock("3", window_event("Update", "3", old_version="2"))
    sends = gateway_sends(world.outputs())
    assert allows(sends)
    # What stays refused: no guardrail, the DRAFT (bare ARN), versions older than the previous one,
    # another guardrail.
    assert not allows(None)
    assert not allows(Account.GUARDRAIL)
    assert not allows(f"{Account.GUARDRAIL}:1")
    assert not allows(f"arn:aws:bedrock:us-east-1:{Account.ACCOUNT}:guardrail/other1234567:3")


def test_target_limits_reach_gateway_config_only_when_the_profile_sets_them():
    from genai_stack.config import GatewayTarget
    from genai_stack.orchestration_stack import target_config
    from lambdas.gateway.config import Target

    plain = target_config(GatewayTarget(bedrock="amazon.nova-micro-v1:0"), None)
    assert plain == {"kind": "bedrock", "model": "amazon.nova-micro-v1:0"}  # templates unchanged
    limited = target_config(
        GatewayTarget(sagemaker="support-llm", max_tokens=512, system_prompt="merge"),
        None,
        {"support-llm": "genai-custom-support-llm"},
    )
    assert limited == {
        "kind": "sagemaker",
        "endpoint": "genai-custom-support-llm",
        "max_tokens": 512,
        "system_prompt": "merge",
    }
    assert Target.model_validate(limited).max_tokens == 512


def test_the_self_hosted_gateway_bounds_each_fleet_and_merges_mistral_s_system_prompt(synthesized):
    resources = synthesized.template("self-hosted", "Orchestration")["Resources"]
    (fn,) = [
        r["Properties"]
        for k, r in of_type(resources, "AWS::Lambda::Function").items()
        if k.startswith("GatewayHandler")
    ]
    settings = Settings.model_validate(json.loads(render(fn["Environment"]["Variables"]["GATEWAY_CONFIG"])))
    limits = {
        alias: [(t.kind, t.max_tokens, t.system_prompt) for t in ts] for alias, ts in settings.chat.items()
    }
    assert limits == {
        "llama": [("openai_http", 512, "keep"), ("bedrock", None, "keep")],
        "mistral": [("openai_http", 512, "merge"), ("bedrock", None, "keep")],
    }


def test_api_gateways_own_errors_come_back_as_openai_error_objects(resources):
    """A wrong key, a usage plan's throttle or quota, an oversized body: API Gateway answers these
    itself; OpenAI clients need `{"error": {...}}` to raise their typed errors."""
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["INVALID_API_KEY"]["StatusCode"] == "401"  # OpenAI's invalid_api_key status
    assert responses["THROTTLED"]["StatusCode"] == "429"
    for response_type, props in responses.items():
        body = props["ResponseTemplates"]["application/json"]
        # $context.error.messageString is API Gateway's message, already a quoted JSON string.
        rendered = json.loads(body.replace("$context.error.messageString", '"Forbidden"'))
        assert rendered["error"]["message"] == "Forbidden", response_type
        assert set(rendered["error"]) == {"message", "type", "param", "code"}, response_type
    assert (
        json.loads(
            responses["THROTTLED"]["ResponseTemplates"]["application/json"].replace(
                "$context.error.messageString", '"x"'
            )
        )["error"]["type"]
        == "rate_limit_error"
    )


def test_chat_completions_streams_through_the_gateway_s_own_runtime_loop(resources, synthesized):
    """API Gateway streams only from InvokeWithResponseStream (the 2021-11-15 response-streaming URI)
    and only what the function writes in its streaming format: the chat route streams, the others
    stay buffered, and the function starts lambdas/gateway/runtime.py through the wrapper script,
    which must be in the bundle and executable."""
    from lambdas.gateway.runtime import STREAMED_PATHS

    methods = of_type(resources, "AWS::ApiGateway::Method").values()
    streamed = {
        m["Properties"]["HttpMethod"]: json.dumps(m["Properties"]["Integration"]["Uri"])
        for m in methods
        if m["Properties"]["Integration"].get("ResponseTransferMode") == "STREAM"
    }
    assert list(streamed) == ["POST"]
    assert "/2021-11-15/functions/" in streamed["POST"]
    assert "/response-streaming-invocations" in streamed["POST"]
    assert {"/v1/chat/completions"} == STREAMED_PATHS
    wrapper = "/var/task/lambdas/gateway/bootstrap"
    function = next(
        r for k, r in of_type(resources, "AWS::Lambda::Function").items() if k.startswith("GatewayHandler")
    )
    assert function["Properties"]["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == wrapper
    asset = synthesized.outdir / f"asset.{function['Metadata']['aws:asset:path'].removeprefix('asset.')}"
    script = asset / wrapper.removeprefix("/var/task/")
    assert script.stat().st_mode & 0o111


def test_the_bank_s_gateway_function_runs_in_a_private_vpc_of_its_own(resources, gateway_settings):
    """gateway.network (managed-api): the function that carries prompts runs in private subnets with no
    way out of the VPC; it reaches Bedrock runtime and agent runtime (the knowledge base) through
    interface endpoints open to its own security group only, the cache table and the image store through
    the DynamoDB and S3 gateway endpoints. The key authorizer, which sees no prompt, stays outside."""
    from tests.support.templates import ways_out_of_the_vpc

    assert gateway_settings.network.nat_gateways == 0
    assert len(of_type(resources, "AWS::EC2::VPC")) == 1
    assert ways_out_of_the_vpc(resources) == []
    assert len(of_type(resources, "AWS::EC2::FlowLog")) == 1
    subnets = of_type(resources, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    functions = {k: r["Properties"] for k, r in of_type(resources, "AWS::Lambda::Function").items()}
    (handler,) = [p for k, p in functions.items() if k.startswith("GatewayHandler")]
    (authorizer,) = [p for k, p in functions.items() if k.startswith("GatewayAuthorizer")]
    assert "VpcConfig" not in authorizer
    (group,) = handler["VpcConfig"]["SecurityGroupIds"]
    assert group["Fn::GetAtt"][0].startswith("GatewaySecurityGroup")
    assert sorted(s["Ref"] for s in handler["VpcConfig"]["SubnetIds"]) == sorted(subnets)
    endpoints = of_type(resources, "AWS::EC2::VPCEndpoint")
    by_type: dict[str, set[str]] = {}
    for endpoint in endpoints.values():
        service = render(endpoint["Properties"]["ServiceName"]).rsplit(".", 1)[-1]
        by_type.setdefault(endpoint["Properties"]["VpcEndpointType"], set()).add(service)
    assert by_type == {
        "Gateway": {"s3", "dynamodb"},
        "Interface": {"bedrock-runtime", "bedrock-agent-runtime", "s3vectors"},  # s3vectors: semantic cache
    }
    # Each interface endpoint admits HTTPS from the gateway's group and nothing else.
    ingress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()]
    assert len(ingress) == 3
    for rule in ingress:
        assert (rule["FromPort"], rule["ToPort"]) == (443, 443)
        assert rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] == group["Fn::GetAtt"][0]


def test_the_gateway_calls_in_its_vpc_only_what_its_targets_need():
    """One interface endpoint per AWS API the function calls (each is billed per hour and zone):
    SageMaker runtime only with SageMaker targets, agent runtime only with knowledge bases."""
    from genai_stack.config import Gateway, Network

    gateway = load_profile("custom-model").gateway
    assert gateway.vpc_endpoints == ()  # no network of its own: outside any VPC
    in_vpc = Gateway.model_validate(
        {**gateway.model_dump(exclude_unset=True), "network": Network().model_dump()}
    )
    assert in_vpc.vpc_endpoints == ("BedrockRuntime", "SageMakerRuntime")


def test_every_gateway_with_a_table_may_use_the_tables_key(synthesized):
    """The cache and the spend tables are encrypted with the platform key: a gateway with either (the
    cache alone in custom-model and self-hosted; both in managed-api) has UseTheCacheKey."""
    checked = 0
    for profile in ("managed-api", "custom-model", "self-hosted"):
        settings = load_profile(profile).gateway
        assert settings.cache.enabled
        roles = synthesized.resources(profile, "Orchestration", "AWS::IAM::Policy")
        (policy,) = [p for k, p in roles.items() if k.startswith("GatewayHandlerRole")]
        sids = {s.get("Sid") for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        assert "UseTheCacheKey" in sids, profile
        checked += 1
    assert checked == 3
