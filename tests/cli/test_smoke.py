"""`genai-stack smoke`: each check passing and failing against botocore stubs, and a whole run over a
built-in profile's real templates with every deployed resource stubbed."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.stub import ANY
from typer.testing import CliRunner

from genai_stack.cli import app
from genai_stack.cli import smoke as sm
from genai_stack.config import load_profile
from tests.support.stubs import Stubs

REGION = "us-east-1"
ACCOUNT = "123456789012"


def stack(template: dict | None = None, name: str = "demo-observability") -> sm.Stack:
    return sm.Stack(name=name, region=REGION, template=template or {"Resources": {}})


# --------------------------------------------------------------------------------------------------
# One check at a time


def test_a_settled_stack_passes_and_its_deployed_names_are_read(stubs):
    cloudformation = stubs("cloudformation")
    stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "demo-observability",
                    "CreationTime": "2026-12-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                }
            ]
        },
        {"StackName": "demo-observability"},
    )
    stubs["cloudformation"].add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": "Throttles",
                    "PhysicalResourceId": "demo-throttles",
                    "ResourceType": "AWS::CloudWatch::Alarm",
                    "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
            ]
        },
        {"StackName": "demo-observability"},
    )
    found = stack()
    (result,) = sm.check_stack(cloudformation, found)
    assert (result.status, result.detail) == ("pass", "UPDATE_COMPLETE")
    assert found.physical == {"Throttles": "demo-throttles"}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE: wait for it to settle, or see its events"),
        (None, "not deployed in us-east-1: run `cdk deploy --all`"),
    ],
)
def test_a_rolled_back_or_missing_stack_fails(stubs, answer, expected):
    cloudformation = stubs("cloudformation")
    if answer:
        stubs["cloudformation"].add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "demo-observability",
                        "CreationTime": "2026-12-01T00:00:00Z",
                        "StackStatus": answer,
                    }
                ]
            },
        )
    else:
        stubs["cloudformation"].add_client_error(
            "describe_stacks", "ValidationError", "Stack with id demo-observability does not exist"
        )
    (result,) = sm.check_stack(cloudformation, stack())
    assert (result.status, result.detail) == ("fail", expected)


def alarm(name: str, state: str) -> dict:
    return {"AlarmName": name, "StateValue": state}


def test_alarms_pass_in_ok_or_insufficient_data_and_fail_in_alarm_or_missing(stubs):
    cloudwatch = stubs("cloudwatch")
    names = ["a", "b", "c"]
    where = {"AlarmNames": names, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    stubs["cloudwatch"].add_response(
        "describe_alarms",
        {"MetricAlarms": [alarm("a", "OK"), alarm("b", "INSUFFICIENT_DATA"), alarm("c", "OK")]},
        where,
    )
    (passed,) = sm.check_alarms(cloudwatch, names)
    assert (passed.status, passed.detail) == ("pass", "1 INSUFFICIENT_DATA, 2 OK")
    stubs["cloudwatch"].add_response(
        "describe_alarms", {"MetricAlarms": [alarm("a", "ALARM"), alarm("b", "OK")]}, where
    )
    (failed,) = sm.check_alarms(cloudwatch, names)
    assert failed.status == "fail"
    assert failed.detail == "in ALARM: a (docs/operations.md says what each means); missing: c"


def test_alarm_names_are_asked_for_a_hundred_at_a_time(stubs):
    cloudwatch = stubs("cloudwatch")
    names = [f"alarm-{i:03}" for i in range(150)]
    for batch in (names[:100], names[100:]):
        stubs["cloudwatch"].add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm(n, "OK") for n in batch]},
            {"AlarmNames": batch, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
        )
    (result,) = sm.check_alarms(cloudwatch, names)
    assert result.detail == "150 OK"


def budget(amount: str) -> dict:
    return {
        "Budget": {
            "BudgetName": "demo-monthly",
            "BudgetLimit": {"Amount": amount, "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        }
    }


def test_a_budget_passes_at_the_profile_s_limit_and_fails_otherwise(stubs):
    budgets = stubs("budgets")
    where = {"AccountId": ACCOUNT, "BudgetName": "demo-monthly"}
    stubs["budgets"].add_response("describe_budget", budget("500.0"), where)
    stubs["budgets"].add_response("describe_budget", budget("50.0"), where)
    stubs["budgets"].add_client_error(
        "describe_budget", "NotFoundException", "not found", expected_params=where
    )
    results = [
        sm.check_budgets(budgets, account=ACCOUNT, expected={"demo-monthly": 500})[0] for _ in range(3)
    ]
    assert [r.status for r in results] == ["pass", "fail", "fail"]
    assert results[1].detail == "limit 50 USD, the profile says 500 USD"
    assert results[2].detail.startswith("missing")


def test_the_anomaly_monitor_must_exist(stubs):
    ce = stubs("ce")
    arn = f"arn:aws:ce::{ACCOUNT}:anomalymonitor/0123"
    monitor = {"MonitorArn": arn, "MonitorName": "demo", "MonitorType": "CUSTOM"}
    stubs["ce"].add_response(
        "get_anomaly_monitors", {"AnomalyMonitors": [monitor]}, {"MonitorArnList": [arn]}
    )
    stubs["ce"].add_response("get_anomaly_monitors", {"AnomalyMonitors": []}, {"MonitorArnList": [arn]})
    assert sm.check_anomaly_monitors(ce, [arn])[0].status == "pass"
    assert sm.check_anomaly_monitors(ce, [arn])[0].detail == f"missing: {arn}"


def endpoint(status: str, instances: int, **extra) -> dict:
    return {
        "EndpointName": "demo-chat",
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/demo-chat",
        "EndpointConfigName": "c",
        "EndpointStatus": status,
        "CreationTime": "2026-12-01T00:00:00Z",
        "LastModifiedTime": "2026-12-01T00:00:00Z",
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": instances}],
        **extra,
    }


def test_an_endpoint_in_service_passes_at_zero_is_skipped_and_failed_fails(stubs):
    sagemaker = stubs("sagemaker")
    for answer in (
        endpoint("InService", 1),
        endpoint("InService", 0),
        endpoint("Failed", 0, FailureReason="CUDA out of memory"),
    ):
        stubs["sagemaker"].add_response("describe_endpoint", answer, {"EndpointName": "demo-chat"})
    stubs["sagemaker"].add_client_error(
        "describe_endpoint", "ValidationException", "Could not find endpoint demo-chat"
    )
    results = [sm.check_endpoints(sagemaker, ["demo-chat"])[0] for _ in range(4)]
    assert [r.status for r in results] == ["pass", "skip", "fail", "fail"]
    assert results[2].detail == "Failed: CUDA out of memory"


def group(desired: int) -> dict:
    return {
        "AutoScalingGroups": [
            {
                "AutoScalingGroupName": "demo-llm",
                "MinSize": 0,
                "MaxSize": 2,
                "DesiredCapacity": desired,
                "DefaultCooldown": 300,
                "AvailabilityZones": ["us-east-1a"],
                "HealthCheckType": "ELB",
                "CreatedTime": "2026-12-01T00:00:00Z",
            }
        ]
    }


def test_hosts_pass_with_a_healthy_target_skip_at_zero_and_fail_without(stubs):
    autoscaling, elbv2 = stubs("autoscaling"), stubs("elbv2")
    tg = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/demo/0123456789abcdef"
    for desired in (1, 0, 1):
        stubs["autoscaling"].add_response(
            "describe_auto_scaling_groups", group(desired), {"AutoScalingGroupNames": ["demo-llm"]}
        )
    stubs["elbv2"].add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [{"Target": {"Id": "i-1"}, "TargetHealth": {"State": "healthy"}}]},
        {"TargetGroupArn": tg},
    )
    stubs["elbv2"].add_response(
        "describe_target_health",
        {
            "TargetHealthDescriptions": [
                {"Target": {"Id": "i-1"}, "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout"}}
            ]
        },
        {"TargetGroupArn": tg},
    )
    results = [sm.check_hosts(autoscaling, elbv2, [("demo-llm", tg)])[0] for _ in range(3)]
    assert [r.status for r in results] == ["pass", "skip", "fail"]
    assert results[2].detail == "no healthy host of 1 (Target.Timeout)"


def test_a_refused_call_is_a_failed_check_not_a_traceback(stubs):
    cloudwatch = stubs("cloudwatch")
    stubs["cloudwatch"].add_client_error(
        "describe_alarms", "AccessDenied", "not authorized: cloudwatch:DescribeAlarms"
    )
    (result,) = sm._guarded("alarms", lambda: sm.check_alarms(cloudwatch, ["a"]))
    assert (result.status, result.detail) == (
        "fail",
        "could not check: AccessDenied not authorized: cloudwatch:DescribeAlarms",
    )


# --------------------------------------------------------------------------------------------------
# A whole run: which checks the templates call for, and with which deployed names

TEMPLATE = {
    "Resources": {
        "Throttles": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        "Monthly": {
            "Type": "AWS::Budgets::Budget",
            "Properties": {"Budget": {"BudgetLimit": {"Amount": 500}}},
        },
        "Monitor": {"Type": "AWS::CE::AnomalyMonitor", "Properties": {}},
        "Chat": {"Type": "AWS::SageMaker::Endpoint", "Properties": {}},
        "Hosts": {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {"TargetGroupARNs": [{"Ref": "Llm"}]},
        },
        "Llm": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {}},
    }
}
DEPLOYED = {
    "Throttles": "demo-throttles",
    "Monthly": "demo-monthly",
    "Monitor": f"arn:aws:ce::{ACCOUNT}:anomalymonitor/0123",
    "Chat": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/demo-chat",
    "Hosts": "demo-llm",
    "Llm": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/demo/0123456789abcdef",
}


def test_a_healthy_deployment_passes_every_check_with_the_deployed_names(stubs):
    stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "demo-all",
                    "CreationTime": "2026-12-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                }
            ]
        },
    )
    stubs["cloudformation"].add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": name,
                    "ResourceType": TEMPLATE["Resources"][logical_id]["Type"],
                    "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                for logical_id, name in DEPLOYED.items()
            ]
        },
    )
    stubs["cloudwatch"].add_response(
        "describe_alarms",
        {"MetricAlarms": [alarm("demo-throttles", "OK")]},
        {"AlarmNames": ["demo-throttles"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
    )
    stubs["budgets"].add_response(
        "describe_budget", budget("500"), {"AccountId": ACCOUNT, "BudgetName": "demo-monthly"}
    )
    monitor = {"MonitorArn": DEPLOYED["Monitor"], "MonitorName": "demo", "MonitorType": "CUSTOM"}
    stubs["ce"].add_response(
        "get_anomaly_monitors", {"AnomalyMonitors": [monitor]}, {"MonitorArnList": [DEPLOYED["Monitor"]]}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint", endpoint("InService", 1), {"EndpointName": "demo-chat"}
    )
    stubs["autoscaling"].add_response(
        "describe_auto_scaling_groups", group(1), {"AutoScalingGroupNames": ["demo-llm"]}
    )
    stubs["elbv2"].add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [{"Target": {"Id": "i-1"}, "TargetHealth": {"State": "healthy"}}]},
        {"TargetGroupArn": DEPLOYED["Llm"]},
    )
    results = sm.run_smoke(
        load_profile("managed-api"), [stack(TEMPLATE, "demo-all")], sm.Clients(stubs), account=ACCOUNT
    )
    assert [(r.check, r.status) for r in results] == [
        ("stack demo-all", "pass"),
        ("alarms", "pass"),
        ("budget demo-monthly", "pass"),
        ("cost anomaly monitor", "pass"),
        ("endpoint demo-chat", "pass"),
        ("hosts demo-llm", "pass"),
    ]


def test_a_stack_not_deployed_skips_the_checks_of_its_resources(stubs):
    stubs["cloudformation"].add_client_error(
        "describe_stacks", "ValidationError", "Stack with id demo-all does not exist"
    )
    results = sm.run_smoke(
        load_profile("managed-api"), [stack(TEMPLATE, "demo-all")], sm.Clients(stubs), account=ACCOUNT
    )
    assert [(r.check, r.status) for r in results] == [("stack demo-all", "fail")]


def test_the_built_in_profiles_templates_name_what_smoke_reads(synthesized):
    """Every alarm, budget, monitor, endpoint and host fleet of the built-in profiles is found by the
    resource types and references smoke reads (with every resource as if deployed)."""
    found: dict[str, set[str]] = {}
    for name, templates in synthesized.templates.items():
        profile = load_profile(name)
        stacks = sm.stacks_of(
            profile, {f"{name}-{construct.lower()}": t for construct, t in templates.items()}
        )
        for each in stacks:
            each.physical = {logical_id: logical_id for logical_id in each.template["Resources"]}
        kinds = {
            kind
            for kind in (
                "AWS::CloudWatch::Alarm",
                "AWS::Budgets::Budget",
                "AWS::CE::AnomalyMonitor",
                "AWS::SageMaker::Endpoint",
            )
            if sm._physical(stacks, kind)
        }
        if sm._fleets(stacks):
            kinds.add("fleets")
        found[name] = kinds
    assert found["self-hosted"] >= {"AWS::CloudWatch::Alarm", "AWS::Budgets::Budget", "fleets"}
    assert "AWS::SageMaker::Endpoint" in found["custom-model"]
    assert all(
        {"AWS::CloudWatch::Alarm", "AWS::Budgets::Budget", "AWS::CE::AnomalyMonitor"} <= k
        for k in found.values()
    )


def test_the_command_prints_json_and_exits_1_on_a_failure(monkeypatch, stubs):
    from genai_stack.cli import synth

    synthesis = synth.Synthesis(load_profile("managed-api"), {"managed-api-all": TEMPLATE})
    monkeypatch.setattr(synth, "synthesize", lambda profile, outdir: [synthesis])
    monkeypatch.setattr(sm, "make_clients", lambda: sm.Clients(stubs))
    stubs["sts"].add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": "arn:aws:iam::123456789012:user/x", "UserId": "AIDEXAMPLE"},
    )
    stubs["cloudformation"].add_client_error(
        "describe_stacks", "ValidationError", "Stack with id managed-api-all does not exist"
    )
    result = CliRunner().invoke(app, ["smoke", "managed-api", "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is False
    assert document["checks"] == [
        {
            "check": "stack managed-api-all",
            "status": "fail",
            "detail": "not deployed in us-east-1: run `cdk deploy --all`",
        }
    ]


# --------------------------------------------------------------------------------------------------
# The gateway, called as an application would


def caller(answers: dict[str, sm.Answer], seen: list | None = None):
    def call(path: str, body: dict) -> sm.Answer:
        if seen is not None:
            seen.append((path, body))
        return answers[path if path != "/chat/completions" else f"{path}:{body['messages'][0]['content']}"]

    return call


CHAT_OK = sm.Answer(
    200,
    {
        "id": "chatcmpl-1",
        "model": "copywriter",
        "choices": [{"message": {"content": "OK"}, "finish_reason": "stop"}],
    },
)
DENIED = sm.Answer(403, {"error": {"message": "Forbidden", "type": "permission_error"}})


def test_chat_passes_with_text_and_fails_with_an_error_or_nothing():
    ok = sm.check_chat(caller({f"/chat/completions:{sm.SMOKE_PROMPT}": CHAT_OK}), "copywriter")
    assert ok == [sm.Result("gateway chat copywriter", "pass", "answered (copywriter, id chatcmpl-1)")]
    denied = sm.check_chat(caller({f"/chat/completions:{sm.SMOKE_PROMPT}": DENIED}), "copywriter")
    assert denied[0].detail == "HTTP 403: Forbidden"
    empty = sm.Answer(200, {"choices": [{"message": {"content": ""}}]})
    assert (
        sm.check_chat(caller({f"/chat/completions:{sm.SMOKE_PROMPT}": empty}), "x")[0].detail
        == "HTTP 200 without any text"
    )


def test_an_embedding_passes_as_a_vector_and_fails_otherwise():
    vector = sm.Answer(200, {"data": [{"embedding": [0.1, 0.2, 0.3]}]})
    assert sm.check_embedding(caller({"/embeddings": vector}), "embedder")[0].detail == "3 dimensions"
    failed = sm.check_embedding(
        caller({"/embeddings": sm.Answer(400, {"error": {"message": "unknown model"}})}), "x"
    )
    assert (failed[0].status, failed[0].detail) == ("fail", "HTTP 400: unknown model")


def test_the_guardrail_check_passes_only_when_the_prompt_is_blocked():
    prompt = "/chat/completions:Tell me about crypto."
    probe = "Tell me about crypto."
    blocked = sm.Answer(
        200, {"choices": [{"message": {"content": "No."}, "finish_reason": "content_filter"}]}
    )
    answered = sm.Answer(
        200, {"choices": [{"message": {"content": "Crypto is..."}, "finish_reason": "stop"}]}
    )
    assert (
        sm.check_guardrail_blocks(caller({prompt: blocked}), "copywriter", probe, "No.")[0].status == "pass"
    )
    (failed,) = sm.check_guardrail_blocks(caller({prompt: answered}), "copywriter", probe, "No.")
    assert failed.detail == (
        "'Tell me about crypto.' was answered (finish_reason 'stop', a model answer): is the guardrail on, "
        "and does it cover this language?"
    )


def test_the_guardrail_is_probed_with_every_word_and_topic_example_in_their_languages():
    guardrail = load_profile("marketing-copy-apac").bedrock.guardrail
    probes = sm.guardrail_probes(guardrail)
    assert probes[:2] == ["Tell me about risk-free.", "Tell me about guaranteed returns."]
    examples = [e for topic in guardrail.denied_topics for e in topic.examples]
    assert probes[2:] == examples
    assert any("\u4e00" <= ch <= "\u9fff" for example in examples for ch in example)  # Chinese examples too
    # A Chinese word is asked about in Chinese.
    chinese = guardrail.model_copy(update={"words": ["零風險"], "denied_topics": []})
    assert sm.guardrail_probes(chinese) == ["請介紹零風險。"]


def test_the_gateway_checks_cover_every_alias_and_every_guardrail_probe():
    profile = load_profile("custom-model")
    seen: list = []

    def call(path, body):
        seen.append((path, body["model"]))
        if path == "/embeddings":
            return sm.Answer(200, {"data": [{"embedding": [1.0]}]})
        return CHAT_OK

    results = sm.gateway_checks(profile, call)
    aliases = list(profile.gateway.aliases)
    assert [model for path, model in seen if path == "/chat/completions"][: len(aliases)] == aliases
    assert [model for path, model in seen if path == "/embeddings"] == list(profile.gateway.embeddings)
    probes = sm.guardrail_probes(profile.bedrock.guardrail)
    blocks = [r for r in results if r.check == "guardrail blocks"]
    if probes:
        assert [r.status for r in blocks] == ["fail"] * len(probes)  # CHAT_OK is not a blocked answer
        assert seen[-len(probes) :] == [("/chat/completions", aliases[0])] * len(probes)
    else:
        assert [r.status for r in blocks] == ["skip"]


def test_a_private_gateway_is_skipped_with_the_reason():
    profile = load_profile("managed-api")  # gateway.endpoint: private
    (result,) = sm.run_gateway(profile, [], sm.Clients(lambda service, region: None))
    assert result.status == "skip"
    assert "execute-api VPC endpoints" in result.detail


def public(profile_name: str, **gateway):
    profile = load_profile(profile_name)
    return profile.model_copy(update={"gateway": profile.gateway.model_copy(update=gateway)})


def orchestration(profile) -> sm.Stack:
    found = sm.Stack(f"{profile.name}-orchestration", REGION, {"Resources": {}})
    found.outputs = {"GatewayBaseUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/v1"}
    return found


def test_an_api_key_gateway_is_called_with_a_fresh_key_that_is_revoked_even_when_a_check_breaks(monkeypatch):
    from genai_stack.cli import keys

    profile = public("managed-api", endpoint="public", network=None)
    events = []

    class Manager:
        def __init__(self, **kwargs):
            events.append(("manager", kwargs["profile"], kwargs["table"]))

        def create(self, tenant):
            events.append(("create", tenant))
            return "gsk-secret", keys.IssuedKey(tenant, "k123", "2026-12-02T00:00:00Z")

        def revoke(self, tenant, *, key_id):
            events.append(("revoke", tenant, key_id))

    monkeypatch.setattr(keys, "KeyManager", Manager)
    monkeypatch.setattr(keys, "key_table_name", lambda cloudformation, name: "key-table")
    headers_seen = []

    def make_caller(base_url, headers):
        def call(path, body):
            headers_seen.append(headers(base_url + path, b"{}"))
            raise RuntimeError("the network broke")

        return call

    with pytest.raises(RuntimeError, match="the network broke"):
        sm.run_gateway(
            profile,
            [orchestration(profile)],
            sm.Clients(lambda s, r: None),
            make_caller=make_caller,
            sleep=lambda s: None,
        )
    tenant = profile.gateway.tenants[0].name
    assert events == [("manager", "managed-api", "key-table"), ("create", tenant), ("revoke", tenant, "k123")]
    assert headers_seen == [{"Authorization": "Bearer gsk-secret"}]


def test_an_iam_gateway_is_called_with_signed_requests():
    from botocore.credentials import Credentials

    profile = public("custom-model", auth="iam", endpoint="public")
    signed = []

    def make_caller(base_url, headers):
        def call(path, body):
            signed.append(headers(base_url + path, b"{}"))
            return CHAT_OK if path != "/embeddings" else sm.Answer(200, {"data": [{"embedding": [1.0]}]})

        return call

    clients = sm.Clients(lambda s, r: None, lambda: Credentials("AKIDEXAMPLE", "secret"))
    results = sm.run_gateway(profile, [orchestration(profile)], clients, make_caller=make_caller)
    assert all(r.status in ("pass", "skip", "fail") for r in results)
    assert signed
    assert signed[0]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/execute-api/aws4_request" in signed[0]["Authorization"]


def test_the_http_caller_posts_json_and_reads_openai_errors():
    import http.server
    import threading

    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers["Authorization"], body))
            status, answer = (
                (200, CHAT_OK.body) if body["model"] == "ok" else (429, {"error": {"message": "slow down"}})
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-RequestId", "a1b2c3")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        call = sm.http_caller(
            f"http://127.0.0.1:{server.server_address[1]}/v1", lambda url, body: {"Authorization": "Bearer k"}
        )
        ok = call("/chat/completions", {"model": "ok"})
        assert (ok.status, ok.body, ok.request_id) == (200, CHAT_OK.body, "a1b2c3")
        busy = call("/chat/completions", {"model": "busy"})
        assert (busy.status, busy.body) == (429, {"error": {"message": "slow down"}})
    finally:
        server.shutdown()
    assert received[0][:2] == ("/v1/chat/completions", "Bearer k")


def signal_stubs(stubs: Stubs, *, logged: bool, counted: bool, rounds: int = 1) -> None:
    for _ in range(rounds):
        if not logged or _ == 0:
            stubs["logs"].add_response(
                "filter_log_events",
                {"events": [{"message": '{"message":"answered","correlation_id":"r-1"}'}] if logged else []},
            )
        if not counted or _ == 0:
            stubs["cloudwatch"].add_response(
                "get_metric_statistics", {"Datapoints": [{"Sum": 1.0}] if counted else []}
            )


def test_the_answer_s_log_line_and_metric_pass_once_they_arrive(stubs):
    logs, cloudwatch = stubs("logs"), stubs("cloudwatch")
    signal_stubs(stubs, logged=True, counted=True)
    results = sm.check_signals(
        logs,
        cloudwatch,
        log_group="g",
        request_id="r-1",
        alias="copywriter",
        service="p-gateway",
        since=1_000.0,
        sleep=pytest.fail,
    )
    assert [r.status for r in results] == ["pass", "pass"]


def test_signals_that_never_arrive_fail_after_the_bounded_wait(stubs):
    logs, cloudwatch = stubs("logs"), stubs("cloudwatch")
    now = [1_000.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    signal_stubs(stubs, logged=False, counted=False, rounds=4)  # at 0, 20, 40, 60 s
    results = sm.check_signals(
        logs,
        cloudwatch,
        log_group="g",
        request_id="r-1",
        alias="copywriter",
        service="p-gateway",
        since=1_000.0,
        wait=60,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert waits == [20.0, 20.0, 20.0]
    assert [(r.check, r.status) for r in results] == [
        ("gateway log line", "fail"),
        ("gateway metrics", "fail"),
    ]
    assert results[0].detail == "no answered line for r-1 within 60 s"


def test_signals_are_looked_for_in_the_gateway_function_s_log_group_under_its_service(stubs, synthesized):
    template = synthesized.template("self-hosted", "Orchestration")
    stack = sm.Stack("self-hosted-orchestration", REGION, template)
    stack.physical = {logical_id: f"physical-{logical_id}" for logical_id in template["Resources"]}
    (function,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Properties"].get("Handler") == sm.GATEWAY_HANDLER
    ]
    seen = {}

    def check_signals(logs, cloudwatch, **kwargs):
        seen.update(kwargs)
        return []

    answer = sm.Answer(200, {}, {"X-Amzn-RequestId": "r-9"})
    original = sm.check_signals
    sm.check_signals = check_signals
    try:
        sm._signals(stack, sm.Clients(stubs), [("coder", answer)], 5.0, None)
    finally:
        sm.check_signals = original
    assert seen["log_group"] == f"physical-{function['LoggingConfig']['LogGroup']['Ref']}"
    assert seen["service"] == "self-hosted-gateway"
    assert (seen["request_id"], seen["alias"], seen["since"]) == ("r-9", "coder", 5.0)


# --------------------------------------------------------------------------------------------------
# A knowledge base ingests a document and answers from it

TARGET = sm.KnowledgeBaseTarget(
    "product-facts", "KB12345678", "DS12345678", "data-bucket", "knowledge-bases/product-facts/"
)
KEY = "knowledge-bases/product-facts/genai-stack-smoke-t0k3n.txt"


def kb_stubs(stubs: Stubs, statuses: list[str | None], retrieved: str | None) -> None:
    import datetime as dt

    stubs["s3"].add_response(
        "put_object", {}, {"Bucket": "data-bucket", "Key": KEY, "Body": ANY, "ContentType": "text/plain"}
    )
    for status in statuses:
        jobs = (
            [
                {
                    "knowledgeBaseId": "KB12345678",
                    "dataSourceId": "DS12345678",
                    "ingestionJobId": "J1",
                    "status": status,
                    "startedAt": dt.datetime(2026, 12, 2, 5, 0, 30, tzinfo=dt.UTC),
                    "updatedAt": dt.datetime(2026, 12, 2, 5, 1, 0, tzinfo=dt.UTC),
                }
            ]
            if status
            else []
        )
        stubs["bedrock-agent"].add_response("list_ingestion_jobs", {"ingestionJobSummaries": jobs})
    if retrieved is not None:
        stubs["bedrock-agent-runtime"].add_response(
            "retrieve", {"retrievalResults": [{"content": {"text": retrieved}}]}
        )
    stubs["s3"].add_response("delete_object", {}, {"Bucket": "data-bucket", "Key": KEY})


def run_kb(stubs: Stubs, wait: float = 900) -> sm.Result:
    import datetime as dt

    now = [dt.datetime(2026, 12, 2, 5, 0, 28, tzinfo=dt.UTC).timestamp()]

    def sleep(seconds):
        now[0] += seconds

    (result,) = sm.check_knowledge_base(
        stubs("s3"),
        stubs("bedrock-agent"),
        stubs("bedrock-agent-runtime"),
        TARGET,
        token="t0k3n",
        wait=wait,
        clock=lambda: now[0],
        sleep=sleep,
    )
    return result


def test_a_document_ingested_and_retrieved_passes_and_is_removed(stubs):
    kb_stubs(stubs, ["IN_PROGRESS", "COMPLETE"], "The verification code is t0k3n.")
    result = run_kb(stubs)
    assert (result.status, result.detail) == ("pass", "ingested and retrieved in 20 s")


def test_a_failed_ingestion_or_a_missed_retrieval_fails_and_the_document_is_still_removed(stubs):
    kb_stubs(stubs, ["FAILED"], None)
    assert (
        run_kb(stubs).detail == "the ingestion job is FAILED 0 s after the upload (see the ingestion alarm)"
    )
    kb_stubs(stubs, ["COMPLETE"], "something else entirely")
    assert run_kb(stubs).detail == "ingested, but Retrieve did not return the document (1 results)"
    kb_stubs(stubs, [None, None], None)
    assert (
        run_kb(stubs, wait=20).detail
        == "no ingestion job started 20 s after the upload (see the ingestion alarm)"
    )


def test_knowledge_bases_are_found_with_their_deployed_ids(synthesized):
    for name in ("managed-api", "customer-service"):
        profile = load_profile(name)
        stacks = sm.stacks_of(
            profile, {f"{name}-{c.lower()}": t for c, t in synthesized.templates[name].items()}
        )
        for each in stacks:
            each.physical = {k: f"id-{k}" for k in each.template["Resources"]}
            for k, _ in each.of_type("AWS::Bedrock::DataSource"):
                each.physical[k] = f"id-KB|DS-{k}"
        targets = sm.knowledge_base_targets(profile, stacks)
        assert [t.name for t in targets] == [kb.name for kb in profile.bedrock.knowledge_bases]
        for target in targets:
            assert target.bucket.startswith("id-DataBucket")
            assert target.data_source_id.startswith("DS-")
            assert target.prefix == f"knowledge-bases/{target.name}/"


def test_an_image_alias_must_answer_a_png_and_say_who_made_it():
    png = base64.b64encode(sm.PNG_SIGNATURE + b"pixels").decode()
    made = sm.Answer(200, {"data": [{"b64_json": png}]}, {"x-genai-target": "sagemaker:imagery-brand-sdxl"})
    seen: list = []
    (result,) = sm.check_image(caller({"/images/generations": made}, seen), "brand")
    assert result.status == "pass"
    assert "from sagemaker:imagery-brand-sdxl" in result.detail
    assert seen[0][1]["response_format"] == "b64_json"
    not_png = sm.Answer(200, {"data": [{"b64_json": base64.b64encode(b"GIF89a").decode()}]})
    assert sm.check_image(caller({"/images/generations": not_png}), "brand")[0].status == "fail"
    refused = sm.Answer(400, {"error": {"message": "blocked by the content policy"}})
    (failed,) = sm.check_image(caller({"/images/generations": refused}), "brand")
    assert failed.status == "fail"
    assert "blocked by the content policy" in failed.detail


def test_the_gateway_checks_make_one_image_per_image_alias():
    profile = load_profile("product-imagery")
    seen: list = []

    def call(path, body):
        seen.append((path, body["model"]))
        if path == "/images/generations":
            return sm.Answer(200, {"data": [{"b64_json": base64.b64encode(sm.PNG_SIGNATURE).decode()}]})
        return CHAT_OK

    results = sm.gateway_checks(profile, call)
    assert [m for p, m in seen if p == "/images/generations"] == ["lifestyle", "brand"]
    assert [r.status for r in results if r.check.startswith("gateway image")] == ["pass", "pass"]
