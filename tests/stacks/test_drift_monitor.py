"""DriftMonitor, synthesized in a small app with cdk-nag on (a foundation stack with the key and the
buckets, a consuming stack with the monitor: the buckets are read across stacks, as in the profiles),
and the profiles: no built-in profile may use SageMaker Model Monitor, and the custom-model profile
gets the drift job instead."""

from __future__ import annotations

import fnmatch
import json

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_sns as sns

from genai_stack import compliance
from genai_stack.cli.synth import cdk_app
from genai_stack.components.drift_monitor import ALL_MODELS, NAMESPACE, DriftMonitor, DriftSource
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.platform_key import PlatformKey
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.config import DriftMonitoring
from lambdas.drift_monitor import logic

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "test-chat"
CAPTURE_PREFIX = f"data-capture/{ENDPOINT}/AllTraffic/"
BASELINE = f"monitoring/{ENDPOINT}/drift/baseline.json"
LOG_PREFIX = f"bedrock-invocation-logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/"
LOG_BASELINE = "monitoring/bedrock-invocations/drift/baseline.json"
SETTINGS = DriftMonitoring(schedule="rate(1 hour)", distance_threshold=0.3, refusal_rate_percent=15)


class Built:
    templates: dict[str, dict]
    monitor: DriftMonitor
    foundation: Stack
    consumer: Stack


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    app = cdk_app(tmp_path_factory.mktemp("cdk.out"))
    env = Environment(account=ACCOUNT, region=REGION)
    foundation = Stack(app, "Foundation", env=env)
    key = PlatformKey(foundation, "PlatformKey", description="test key").key
    logs = SecureBucket(foundation, "AccessLogs", noncurrent_version_days=30, expiration_days=30).bucket
    compliance.skip_checkov(logs.node.default_child, compliance.ACCESS_LOG_BUCKET_NOT_LOGGED)
    buckets = {
        name: SecureBucket(
            foundation,
            name,
            encryption_key=key,
            access_logs_bucket=logs,
            access_logs_prefix=f"{name.lower()}/",
            noncurrent_version_days=30,
        ).bucket
        for name in ("Artifacts", "Data")
    }
    topic = sns.Topic(foundation, "Alarms", master_key=key)
    consumer = Stack(app, "Consumer", env=env)
    monitor = DriftMonitor(
        consumer,
        "Drift",
        profile_name="test",
        sources=[
            DriftSource(
                name=ENDPOINT,
                source="sagemaker",
                bucket=buckets["Artifacts"],
                prefix=CAPTURE_PREFIX,
                baseline_bucket=buckets["Artifacts"],
                baseline_key=BASELINE,
                alarm_targets=(ENDPOINT,),
            ),
            DriftSource(
                name="bedrock",
                source="bedrock",
                bucket=buckets["Data"],
                prefix=LOG_PREFIX,
                baseline_bucket=buckets["Data"],
                baseline_key=LOG_BASELINE,
                alarm_targets=(ALL_MODELS,),
            ),
        ],
        settings=SETTINGS,
        encryption_key=key,
        log_retention_days=90,
        hub=MonitoringHub(alarm_topic=topic),
    )
    compliance.enable_checks(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    result = Built()
    result.templates = {a.hierarchical_id: a.template for a in assembly.stacks}
    result.monitor, result.foundation, result.consumer = monitor, foundation, consumer
    return result


def resources(built: Built, resource_type: str, stack: str = "Consumer") -> dict[str, dict]:
    return {k: r for k, r in built.templates[stack]["Resources"].items() if r["Type"] == resource_type}


def text(value) -> str:
    """A policy resource as one string: cross-stack bucket ARNs become `arn:aws:s3:::<bucket logical id>`."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(text(v) for v in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetStackOutput" in value:
        name = value["Fn::GetStackOutput"]["OutputName"]
        for prefix in ("Artifacts", "Data"):
            if f"FnGetAtt{prefix}" in name:
                return f"arn:aws:s3:::{prefix.lower()}-bucket"
        return f"<{name}>"
    return json.dumps(value)


def statements(built: Built) -> dict[str, dict]:
    (policy,) = [
        p
        for p in resources(built, "AWS::IAM::Policy").values()
        if "Drift" in json.dumps(p["Properties"]["Roles"])
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def allowed(built: Built, action: str, resource: str) -> bool:
    """Whether an identity statement allows `action` on `resource` (Allow only; conditions checked by
    the tests that need them)."""
    for statement in statements(built).values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if action in actions and any(fnmatch.fnmatchcase(resource, text(t)) for t in targets):
            return True
    return False


# ------------------------------------------------------------------------------------- schedule


def test_an_eventbridge_rule_runs_the_function_on_the_profile_schedule(built):
    (rule,) = resources(built, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    function_id = built.consumer.get_logical_id(built.monitor.function.function.node.default_child)
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    (permission,) = resources(built, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"


def test_the_function_is_told_exactly_what_to_read(built):
    function = resources(built, "AWS::Lambda::Function")[
        built.consumer.get_logical_id(built.monitor.function.function.node.default_child)
    ]
    environment = function["Properties"]["Environment"]["Variables"]
    assert function["Properties"]["Handler"] == "lambdas.drift_monitor.handler.on_event"
    assert environment["DRIFT_NAMESPACE"] == NAMESPACE
    assert (environment["DRIFT_PROFILE"], environment["DRIFT_WINDOW_HOURS"]) == ("test", "1")
    targets = json.loads(text(environment["DRIFT_TARGETS"]).replace("<", "").replace(">", ""))
    assert [(t["name"], t["source"], t["prefix"], t["baseline_key"]) for t in targets] == [
        (ENDPOINT, "sagemaker", CAPTURE_PREFIX, BASELINE),
        ("bedrock", "bedrock", LOG_PREFIX, LOG_BASELINE),
    ]


# ----------------------------------------------------------------------------------------- role


def test_the_role_reads_only_the_captures_and_logs_it_analyses(built):
    artifacts, data = "arn:aws:s3:::artifacts-bucket", "arn:aws:s3:::data-bucket"
    assert allowed(built, "s3:GetObject", f"{artifacts}/{CAPTURE_PREFIX}2026/11/23/10/file.jsonl")
    assert allowed(built, "s3:GetObject", f"{data}/{LOG_PREFIX}2026/11/23/10/file.json.gz")
    # Not another endpoint's captures, not the weights, not the rest of the data bucket.
    assert not allowed(built, "s3:GetObject", f"{artifacts}/data-capture/test-other/AllTraffic/x.jsonl")
    assert not allowed(built, "s3:GetObject", f"{artifacts}/models/llama/model.safetensors")
    assert not allowed(built, "s3:GetObject", f"{data}/kb/faq/answers.pdf")
    assert not allowed(built, "s3:PutObject", f"{artifacts}/{CAPTURE_PREFIX}2026/11/23/10/file.jsonl")
    lists = [s for s in statements(built).values() if s["Action"] == "s3:ListBucket"]
    assert sorted(
        s["Condition"]["StringLike"]["s3:prefix"][0] for s in lists if "StringLike" in s["Condition"]
    ) == sorted([f"{CAPTURE_PREFIX}*", f"{LOG_PREFIX}*"])
    # The baselines are listed by their exact key only (load_baseline asks whether one exists).
    assert sorted(
        s["Condition"]["StringEquals"]["s3:prefix"][0] for s in lists if "StringEquals" in s["Condition"]
    ) == sorted([BASELINE, LOG_BASELINE])


def test_the_role_writes_only_the_baselines(built):
    artifacts, data = "arn:aws:s3:::artifacts-bucket", "arn:aws:s3:::data-bucket"
    for bucket, key in ((artifacts, BASELINE), (data, LOG_BASELINE)):
        assert allowed(built, "s3:PutObject", f"{bucket}/{key}")
        assert allowed(built, "s3:GetObject", f"{bucket}/{key}")
    assert not allowed(built, "s3:PutObject", f"{artifacts}/monitoring/{ENDPOINT}/other.json")
    actions = {
        a
        for s in statements(built).values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "cloudwatch:PutMetricData",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_the_key_is_used_only_through_s3_and_metrics_only_in_the_namespace(built):
    found = statements(built)
    key = found["UseThePlatformKeyThroughS3"]
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    assert "PlatformKey" in json.dumps(key["Resource"])
    metrics = found["PutDriftMetrics"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}


# --------------------------------------------------------------------------------------- alarms


def alarms(built: Built) -> dict[str, dict]:
    return {
        a["Properties"]["AlarmDescription"]: a["Properties"]
        for a in resources(built, "AWS::CloudWatch::Alarm").values()
    }


def test_distance_and_refusal_alarms_watch_the_metrics_the_function_publishes(built):
    published = logic.metric_data(
        [
            logic.Report(
                target=ENDPOINT, group=ENDPOINT, metrics={"PromptDistance": 0.5}, baseline_written=False
            )
        ],
        profile="test",
        source="sagemaker",
        timestamp=None,
    )[0]
    found = alarms(built)
    drift = [p for d, p in found.items() if d.startswith(f"Drift of sagemaker {ENDPOINT}")]
    assert sorted(p["MetricName"] for p in drift) == ["AnswerDistance", "PromptDistance", "RefusalRate"]
    for props in drift:
        assert props["Namespace"] == NAMESPACE
        assert props["Dimensions"] == published["Dimensions"]
        assert props["Period"] == 3600
        assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (2, 2)
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] == "notBreaching"  # an idle hour is not drift
        assert props["AlarmActions"]  # through the hub to the alarm topic
        assert props["OKActions"]
    thresholds = {p["MetricName"]: p["Threshold"] for p in drift}
    assert thresholds == {"PromptDistance": 0.3, "AnswerDistance": 0.3, "RefusalRate": 15}
    bedrock = [p for d, p in found.items() if d.startswith("Drift of bedrock all")]
    assert {d["Name"]: d["Value"] for d in bedrock[0]["Dimensions"]} == {
        "Profile": "test",
        "Source": "bedrock",
        "Target": logic.ALL_MODELS,
    }


def test_a_stopped_job_alarms_when_its_heartbeat_is_missing(built):
    (stopped,) = [p for d, p in alarms(built).items() if d.startswith("Drift monitor of test")]
    heartbeat = logic.heartbeat("test", None)
    assert stopped["MetricName"] == heartbeat["MetricName"] == "RunsCompleted"
    assert stopped["Dimensions"] == heartbeat["Dimensions"]
    assert (stopped["Statistic"], stopped["Threshold"], stopped["ComparisonOperator"]) == (
        "Sum",
        1,
        "LessThanThreshold",
    )
    assert stopped["TreatMissingData"] == "breaching"  # missing data is the failure itself


def test_a_baseline_inside_the_read_prefix_is_refused(built):
    bucket = built.foundation.node.find_child("Artifacts").bucket
    with pytest.raises(ValueError, match="baseline must lie outside"):
        DriftSource(
            name="x",
            source="sagemaker",
            bucket=bucket,
            prefix=CAPTURE_PREFIX,
            baseline_bucket=bucket,
            baseline_key=f"{CAPTURE_PREFIX}baseline.json",
            alarm_targets=("x",),
        )


# ------------------------------------------------------------------------------------- profiles

MODEL_MONITOR_TYPES = {
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::SageMaker::DataQualityJobDefinition",
    "AWS::SageMaker::ModelQualityJobDefinition",
    "AWS::SageMaker::ModelBiasJobDefinition",
    "AWS::SageMaker::ModelExplainabilityJobDefinition",
}


def test_no_builtin_profile_depends_on_model_monitor(synthesized, profile_names):
    """SageMaker Model Monitor "is no longer open to new customers" (SageMaker developer guide, "Data
    capture"): a built-in profile must deploy in a new account."""
    assert set(synthesized.templates) == set(profile_names)
    for profile, templates in synthesized.templates.items():
        for stack, template in templates.items():
            found = {r["Type"] for r in template.get("Resources", {}).values()} & MODEL_MONITOR_TYPES
            assert not found, f"{profile}/{stack} uses Model Monitor: {sorted(found)}"


def test_custom_model_gets_the_drift_job_for_its_capturing_endpoint(synthesized):
    inference = synthesized.profiles["custom-model"].inference
    assert inference.drift is not None
    environment = inference.drift.function.function.node.default_child.environment
    template = synthesized.templates["custom-model"]["Inference"]
    # The stack's one scheduled rule (the other rule forwards endpoint failures to the alarm topic).
    (rule,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    variables = [
        r["Properties"]["Environment"]["Variables"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "DRIFT_TARGETS" in json.dumps(r["Properties"])
    ]
    assert environment is not None
    assert len(variables) == 1
    targets = json.loads(text(variables[0]["DRIFT_TARGETS"]).replace("<", "").replace(">", ""))
    # support-llm captures; support-llm-inf2 (inference components) and long-documents do not.
    assert [t["name"] for t in targets] == ["custom-model-support-llm"]


def test_managed_api_reads_the_invocation_logs_where_bedrock_writes_them(synthesized):
    """The drift job's read prefix lies under the path the data bucket lets Bedrock write (the bucket
    policy of "Model invocation logging"), for this account and region."""
    templates = synthesized.templates["managed-api"]
    (policy,) = [
        r
        for r in templates["Foundation"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and "AmazonBedrockLogsWrite" in json.dumps(r)
    ]
    (write,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "AmazonBedrockLogsWrite"
    ]
    written = text(write["Resource"]).split("/", 1)[1].replace("<AWS::AccountId>", ACCOUNT)
    functions = [
        r["Properties"]["Environment"]["Variables"]
        for r in templates["Bedrock"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "DRIFT_TARGETS" in json.dumps(r["Properties"])
    ]
    (variables,) = functions
    (target,) = json.loads(text(variables["DRIFT_TARGETS"]).replace("<", "").replace(">", ""))
    prefix = target["prefix"].replace("AWS::AccountId", ACCOUNT).replace("AWS::Region", REGION)
    assert target["source"] == "bedrock"
    assert fnmatch.fnmatchcase(f"{prefix}2026/11/23/10/x.json.gz", written)
    assert prefix.endswith(f"/BedrockModelInvocationLogs/{REGION}/")
