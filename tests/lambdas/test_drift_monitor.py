"""Drift monitor Lambda: parsing and statistics as plain functions; the window, the baseline and the
metrics over a moto server (real S3 and CloudWatch APIs over HTTP) with capture files and invocation
logs generated here in the formats AWS documents; the handler end to end."""

from __future__ import annotations

import base64
import gzip
import importlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from lambdas.drift_monitor import logic
from lambdas.drift_monitor.logic import Target
from tests.support.moto_server import moto_client, moto_server, reset_moto

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "genai-artifacts"
LOGS_BUCKET = "genai-data"
ENDPOINT = "custom-model-support-llm"
NAMESPACE = "GenAiStack/Drift"
NOW = datetime(2026, 11, 23, 11, 20, tzinfo=UTC)  # the window is 10:00-11:00
CAPTURE = Target(
    name=ENDPOINT,
    source="sagemaker",
    bucket=BUCKET,
    prefix=f"data-capture/{ENDPOINT}/AllTraffic/",
    baseline_bucket=BUCKET,
    baseline_key=f"monitoring/{ENDPOINT}/drift/baseline.json",
)
LOG_PREFIX = f"bedrock-invocation-logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/"
INVOCATIONS = Target(
    name="bedrock",
    source="bedrock",
    bucket=LOGS_BUCKET,
    prefix=LOG_PREFIX,
    baseline_bucket=LOGS_BUCKET,
    baseline_key="monitoring/bedrock-invocations/drift/baseline.json",
)

ENGLISH = [
    "How do I reset my router password?",
    "What is the warranty period for the modem?",
    "Can I change my billing address online?",
    "Why is my internet connection slow in the evening?",
    "How do I set up parental controls?",
]
CHINESE = [
    "請問如何申請信用卡額度調整?",
    "我的帳單金額為什麼比上個月高?",
    "如何在網路銀行設定約定轉帳帳戶?",
    "外幣定存的利率是多少?",
    "請幫我寫一段新年優惠活動的宣傳文案。",
]


# ------------------------------------------------------------------------------- record generators


def capture_line(prompt: str, answer: str, when: datetime, *, base64_encoded: bool = False) -> str:
    """One SageMaker data-capture record ("Capture data from real-time endpoint"): the payload as JSON
    text when its content type is listed in CaptureContentTypeHeader, base64 otherwise."""

    def part(payload: Any, mode: str) -> dict[str, Any]:
        text = json.dumps(payload)
        if base64_encoded:
            return {
                "observedContentType": "application/vnd.custom+json",
                "mode": mode,
                "data": base64.b64encode(text.encode()).decode(),
                "encoding": "BASE64",
            }
        return {"observedContentType": "application/json", "mode": mode, "data": text, "encoding": "JSON"}

    request = {"inputs": prompt, "parameters": {"max_new_tokens": 256}}
    response = {"generated_text": answer}
    return json.dumps(
        {
            "captureData": {
                "endpointInput": part(request, "INPUT"),
                "endpointOutput": part(response, "OUTPUT"),
            },
            "eventMetadata": {"eventId": f"id-{hash((prompt, when))}", "inferenceTime": when.isoformat()},
            "eventVersion": "0",
        }
    )


def invocation_record(model: str, prompt: str, answer: str, when: datetime, *, blocked: bool = False) -> dict:
    """One Bedrock model invocation log record of a Converse call ("Monitor model invocation using
    CloudWatch Logs and Amazon S3")."""
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "accountId": ACCOUNT,
        "region": REGION,
        "requestId": f"req-{hash((prompt, when))}",
        "operation": "Converse",
        "modelId": model,
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "messages": [{"role": "user", "content": [{"text": prompt}]}],
                "system": [{"text": "You are the bank's copywriter."}],
            },
            "inputTokenCount": 12,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": "guardrail_intervened" if blocked else "end_turn",
                "usage": {"inputTokens": 12, "outputTokens": 30, "totalTokens": 42},
            },
            "outputTokenCount": 30,
        },
    }


def traffic(prompts: list[str], n: int, start: datetime) -> list[tuple[str, str, datetime]]:
    return [
        (prompts[i % len(prompts)], f"Here is what to do, step {i}.", start + timedelta(minutes=i % 60))
        for i in range(n)
    ]


# ------------------------------------------------------------------------------------------- unit


def test_the_embedding_is_deterministic_normalised_and_fixed_size():
    first, again = logic.embed("Reset the router"), logic.embed("reset   the ROUTER")
    assert first == again  # case and spacing do not matter; blake2b, not the salted hash()
    assert len(first) == logic.DIMENSIONS
    assert abs(sum(v * v for v in first) - 1) < 1e-9
    assert logic.embed("") == [0.0] * logic.DIMENSIONS
    assert logic.cosine_distance(first, first) == pytest.approx(0, abs=1e-9)
    assert logic.cosine_distance(first, logic.embed("請問如何申請信用卡")) > 0.5
    assert logic.cosine_distance(first, [0.0] * logic.DIMENSIONS) is None


def test_prompts_and_answers_are_found_in_the_common_bodies():
    assert logic.prompt_text({"inputs": "hello", "parameters": {"temperature": 0.1}}) == "hello"
    chat = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    assert logic.prompt_text(chat) == "first\nsecond"
    assert logic.answer_text({"generated_text": "lmi"}) == "lmi"
    assert logic.answer_text([{"generated_text": "tgi"}]) == "tgi"
    assert logic.answer_text({"choices": [{"message": {"role": "assistant", "content": "oai"}}]}) == "oai"
    converse = {"output": {"message": {"content": [{"text": "nova"}]}}, "stopReason": "end_turn"}
    assert logic.answer_text(converse) == "nova"
    assert (
        logic.answer_text({"content": [{"type": "text", "text": "claude"}], "stop_reason": "x"}) == "claude"
    )
    assert logic.answer_text({"results": [{"outputText": "titan"}]}) == "titan"


def test_refusals_and_guardrail_interventions_are_recognised():
    assert logic.is_refusal("I'm sorry, but I can't help with that.")
    assert logic.is_refusal("I cannot provide financial advice.")
    assert logic.is_refusal("抱歉, 我無法回答這個問題。")
    assert not logic.is_refusal("Sorry to hear that! Here is how to reset the router.")
    assert logic.guardrail_intervened({"stopReason": "guardrail_intervened"})
    assert logic.guardrail_intervened({"amazon-bedrock-guardrailAction": "INTERVENED"})
    assert not logic.guardrail_intervened({"stopReason": "end_turn"})


def test_base64_captures_are_decoded():
    """Content types not listed in CaptureContentTypeHeader are captured base64-encoded."""
    when = NOW - timedelta(minutes=50)
    record = json.loads(capture_line("Where is my bill?", "In the app.", when, base64_encoded=True))
    exchange = logic.parse_capture(record, ENDPOINT)
    assert (exchange.prompt, exchange.answer) == ("Where is my bill?", "In the app.")
    broken = {"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}
    assert logic.parse_capture(broken, ENDPOINT) is None


def test_the_window_is_the_last_whole_hours():
    start, end = logic.window(NOW, 2)
    assert (start, end) == (datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, 11, tzinfo=UTC))
    assert logic.hour_prefixes("p/", start, end) == ["p/2026/11/23/09/", "p/2026/11/23/10/"]


def test_rates_and_distances_need_enough_records():
    stats = logic.Stats(group="g")
    for prompt in ENGLISH:
        stats.add(logic.Exchange(group="g", prompt=prompt, answer="I cannot help with that."))
    few = logic.metrics_of(stats, None, min_records=10)
    assert set(few) == {
        "Requests",
        "PromptLengthP50",
        "PromptLengthP90",
        "AnswerLengthP50",
        "AnswerLengthP90",
    }
    enough = logic.metrics_of(stats, None, min_records=5)
    assert enough["RefusalRate"] == 100.0
    assert enough["NonAsciiShare"] == 0.0


# ------------------------------------------------------------------------------------------- moto


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


def client(service: str, endpoint: str) -> Any:
    return moto_client(service, endpoint, REGION)


@pytest.fixture
def aws(moto_endpoint):
    """Fresh S3 buckets and no metrics: moto's state is reset before each test."""
    reset_moto(moto_endpoint)
    s3, cloudwatch = client("s3", moto_endpoint), client("cloudwatch", moto_endpoint)
    for bucket in (BUCKET, LOGS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    return s3, cloudwatch


def put_captures(s3: Any, hour: datetime, rows: list[tuple[str, str, datetime]], name: str = "a") -> None:
    body = "\n".join(capture_line(p, a, w) for p, a, w in rows) + "\n"
    s3.put_object(Bucket=BUCKET, Key=f"{CAPTURE.prefix}{hour:%Y/%m/%d/%H}/{name}.jsonl", Body=body.encode())


def put_invocations(s3: Any, hour: datetime, records: list[dict], name: str = "a") -> None:
    body = gzip.compress(("\n".join(json.dumps(r) for r in records) + "\n").encode())
    s3.put_object(Bucket=LOGS_BUCKET, Key=f"{LOG_PREFIX}{hour:%Y/%m/%d/%H}/{name}.json.gz", Body=body)


def published(cloudwatch: Any, metric: str, target: str, source: str = "sagemaker") -> list[float]:
    result = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[
            {"Name": "Profile", "Value": "custom-model"},
            {"Name": "Source", "Value": source},
            {"Name": "Target", "Value": target},
        ],
        StartTime=NOW - timedelta(days=2),
        EndTime=NOW + timedelta(days=2),
        Period=3600,
        Statistics=["Maximum"],
    )
    return [p["Maximum"] for p in sorted(result["Datapoints"], key=lambda p: p["Timestamp"])]


def run(s3: Any, cloudwatch: Any, targets: list[Target], now: datetime = NOW) -> dict[str, Any]:
    return logic.run(
        s3,
        cloudwatch,
        targets,
        now=now,
        window_hours=1,
        min_records=20,
        profile="custom-model",
        namespace=NAMESPACE,
    )


def test_the_first_full_window_becomes_the_baseline_and_only_the_window_is_read(aws):
    s3, cloudwatch = aws
    hour = datetime(2026, 11, 23, 10, tzinfo=UTC)
    put_captures(s3, hour, traffic(ENGLISH, 30, hour))
    # Outside the window: the hour before and the current hour are not read.
    put_captures(s3, hour - timedelta(hours=1), traffic(CHINESE, 30, hour - timedelta(hours=1)))
    put_captures(s3, hour + timedelta(hours=1), traffic(CHINESE, 30, hour + timedelta(hours=1)))

    summary = run(s3, cloudwatch, [CAPTURE])

    group = summary["targets"][ENDPOINT]["groups"][ENDPOINT]
    assert group["Requests"] == 30
    assert group["baseline_written"] is True
    assert group["NonAsciiShare"] == 0.0
    assert "PromptDistance" not in group  # the baseline window itself is not compared
    baseline = json.loads(s3.get_object(Bucket=BUCKET, Key=CAPTURE.baseline_key)["Body"].read())
    assert baseline["dimensions"] == logic.DIMENSIONS
    assert baseline["groups"][ENDPOINT]["records"] == 30
    assert published(cloudwatch, "Requests", ENDPOINT) == [30.0]


def test_a_change_of_language_is_drift_and_the_same_traffic_is_not(aws):
    s3, cloudwatch = aws
    first = datetime(2026, 11, 23, 10, tzinfo=UTC)
    put_captures(s3, first, traffic(ENGLISH, 30, first))
    run(s3, cloudwatch, [CAPTURE])  # baseline

    same = first + timedelta(hours=1)
    put_captures(s3, same, traffic(ENGLISH, 25, same))
    steady = run(s3, cloudwatch, [CAPTURE], now=NOW + timedelta(hours=1))["targets"][ENDPOINT]["groups"][
        ENDPOINT
    ]
    assert steady["PromptDistance"] < 0.05
    assert steady["baseline_written"] is False

    shifted = first + timedelta(hours=2)
    put_captures(s3, shifted, traffic(CHINESE, 25, shifted))
    drifted = run(s3, cloudwatch, [CAPTURE], now=NOW + timedelta(hours=2))["targets"][ENDPOINT]["groups"][
        ENDPOINT
    ]
    assert drifted["PromptDistance"] > 0.25  # the profile's default alarm threshold
    assert drifted["CjkShare"] > 50
    # The baseline is kept: drift is measured against the first window, not the last one.
    baseline = json.loads(s3.get_object(Bucket=BUCKET, Key=CAPTURE.baseline_key)["Body"].read())
    assert baseline["groups"][ENDPOINT]["window"][0].startswith("2026-11-23T10:00")
    distances = published(cloudwatch, "PromptDistance", ENDPOINT)
    assert len(distances) == 2
    assert distances[-1] > 0.25


def test_an_idle_window_publishes_requests_zero_and_a_heartbeat_but_no_rates(aws):
    s3, cloudwatch = aws
    summary = run(s3, cloudwatch, [CAPTURE], now=NOW + timedelta(days=1))
    assert summary["targets"][ENDPOINT]["groups"][ENDPOINT] == {"Requests": 0.0, "baseline_written": False}
    with pytest.raises(s3.exceptions.ClientError, match=r"NoSuchKey|Not Found|404"):
        s3.get_object(Bucket=BUCKET, Key=CAPTURE.baseline_key)
    beats = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName="RunsCompleted",
        Dimensions=[{"Name": "Profile", "Value": "custom-model"}],
        StartTime=NOW,
        EndTime=NOW + timedelta(days=2),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [p["Sum"] for p in beats] == [1.0]


def test_bedrock_invocation_logs_are_read_per_model_with_guardrail_interventions(aws):
    s3, cloudwatch = aws
    hour = datetime(2026, 11, 23, 10, tzinfo=UTC)
    nova, claude = "amazon.nova-micro-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    records = [
        invocation_record(nova, p, a, w, blocked=i % 5 == 0)
        for i, (p, a, w) in enumerate(traffic(CHINESE, 20, hour))
    ] + [invocation_record(claude, p, a, w) for p, a, w in traffic(ENGLISH, 20, hour)]
    put_invocations(s3, hour, records)
    # What the reader must skip: large bodies under data/ and the permission-check object.
    s3.put_object(Bucket=LOGS_BUCKET, Key=f"{LOG_PREFIX}{hour:%Y/%m/%d/%H}/data/big.json", Body=b"{not json")
    s3.put_object(
        Bucket=LOGS_BUCKET,
        Key=f"{LOG_PREFIX}{hour:%Y/%m/%d/%H}/amazon-bedrock-logs-permission-check",
        Body=b"",
    )

    groups = run(s3, cloudwatch, [INVOCATIONS])["targets"]["bedrock"]["groups"]

    assert groups[nova]["Requests"] == 20
    assert groups[nova]["GuardrailInterventionRate"] == 20.0
    assert groups[nova]["RefusalRate"] == 20.0
    assert groups[nova]["CjkShare"] > 50
    assert groups[claude]["GuardrailInterventionRate"] == 0.0
    assert groups["all"]["Requests"] == 40
    assert groups["all"]["RefusalRate"] == 10.0
    assert published(cloudwatch, "RefusalRate", "all", source="bedrock") == [10.0]
    baseline = json.loads(s3.get_object(Bucket=LOGS_BUCKET, Key=INVOCATIONS.baseline_key)["Body"].read())
    assert set(baseline["groups"]) == {nova, claude, "all"}


# ---------------------------------------------------------------------------------------- handler


class LambdaContext:
    function_name: str = "drift-monitor"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:drift-monitor"
    aws_request_id: str = "5f1c2f3e-0000-4000-8000-000000000009"


ENVIRONMENT = {
    "DRIFT_TARGETS": json.dumps([CAPTURE.__dict__]),
    "DRIFT_PROFILE": "custom-model",
    "DRIFT_NAMESPACE": NAMESPACE,
    "DRIFT_WINDOW_HOURS": "1",
    "DRIFT_MIN_RECORDS": "20",
}


def load_handler(monkeypatch, environment: dict[str, str]) -> Any:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(importlib.import_module("lambdas.drift_monitor.handler"))


def scheduled(time: str = "2026-11-23T11:20:00Z") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/drift"],
        "detail": {},
    }


def test_the_handler_analyses_the_window_of_the_scheduled_event(monkeypatch, aws):
    s3, cloudwatch = aws
    hour = datetime(2026, 11, 23, 10, tzinfo=UTC)
    put_captures(s3, hour, traffic(ENGLISH, 21, hour))
    handler = load_handler(monkeypatch, ENVIRONMENT)
    monkeypatch.setattr(handler, "s3", lambda: s3)
    monkeypatch.setattr(handler, "cloudwatch", lambda: cloudwatch)
    monkeypatch.setattr(handler.logger.registered_handler, "stream", io.StringIO())

    summary = handler.on_event(scheduled(), LambdaContext())

    assert summary["window"] == ["2026-11-23T10:00:00+00:00", "2026-11-23T11:00:00+00:00"]
    assert summary["targets"][ENDPOINT]["groups"][ENDPOINT]["Requests"] == 21
    with pytest.raises(ValueError, match="not a scheduled drift run"):
        handler.on_event({"source": "aws.s3", "detail-type": "Object Created"}, LambdaContext())


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DRIFT_TARGETS", "[]", "targets"),
        ("DRIFT_TARGETS", json.dumps([{**CAPTURE.__dict__, "source": "gcs"}]), "source"),
        ("DRIFT_TARGETS", json.dumps([{**CAPTURE.__dict__, "prefix": "no-slash"}]), "prefix"),
        ("DRIFT_WINDOW_HOURS", "48", "window_hours"),
    ],
)
def test_a_wrong_environment_fails_at_cold_start(monkeypatch, name, value, problem):
    with pytest.raises(RuntimeError, match=f"drift monitor environment is not valid: .*{problem}"):
        load_handler(monkeypatch, {**ENVIRONMENT, name: value})


def test_a_missing_baseline_is_found_by_listing_not_by_a_403_from_get_object():
    """Real S3 answers GetObject on a missing key with 403 AccessDenied to a role without s3:ListBucket
    on the bucket (S3 API reference, GetObject, "Permissions"); moto answers 404 whatever the policy.
    load_baseline must therefore ask with ListObjectsV2 and never read a key that is not there."""
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {"KeyCount": 0, "IsTruncated": False},
            {"Bucket": BUCKET, "Prefix": CAPTURE.baseline_key, "MaxKeys": 1},
        )
        # No get_object response is queued: a GetObject call would fail the test (as the 403 would).
        assert logic.load_baseline(s3, CAPTURE) == {}
        stub.assert_no_pending_responses()
