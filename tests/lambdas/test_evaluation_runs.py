"""The evaluation runs' function (lambdas/evaluation): select, collect, report and accept, driven through
its handler as the state machine drives it, against S3 and CloudWatch on a moto server. Bedrock's
output files are the samples of tests/evaluation/samples (the format AWS documents), placed where a
job writes them (`<output>/<job name>/<job id>/...`)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.validate import validate_parameters

from tests.lambdas.evaluation_handler import NAMESPACE, REGION, Context, call, client, load_handler
from tests.support.moto_server import moto_server
from tests.support.stubs import offline_client

BUCKET = "managed-api-data-123456789012"

SAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "samples"
JOBS = [{"key": "copy_quality_ab12cd", "digest": "d1"}, {"key": "facts_rag_ef34ab", "digest": "d2"}]
EXECUTION = "0f8fad5b-d9cb-469f-a165-70867728950e"
STARTED = "2026-12-06T03:00:01.123Z"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def handler(endpoint, monkeypatch):
    return load_handler(endpoint, monkeypatch, bucket=BUCKET, profile="managed-api")


def select(handler, reason: str, digests: dict | None = None, execution: str = EXECUTION) -> dict:
    return call(
        handler,
        {
            "action": "select",
            "reason": reason,
            "digests": digests or {},
            "jobs": JOBS,
            "execution": execution,
            "started": STARTED,
        },
    )


def job(key: str, evaluation: str, kind: str = "model", baseline_key: str | None = None) -> dict:
    return {
        "key": key,
        "baseline_key": baseline_key or key,
        "evaluation": evaluation,
        "kind": kind,
        "target": "amazon.nova-lite-v1:0",
        "alias": "copywriter" if kind != "knowledge_base" else "-",
        "prompt_version": "3" if kind == "model" else "-",
        "metrics": ["Builtin.Correctness", "Builtin.Harmfulness"],
        "tolerance": 0.05,
    }


def place_output(s3, run: dict, key: str, sample: str, *, scale: float = 1.0) -> None:
    """Bedrock's output of one job, with every score multiplied by `scale`."""
    lines = []
    for line in (SAMPLES / sample).read_text().splitlines():
        record = json.loads(line)
        for score in (record.get("automatedEvaluationResult") or {}).get("scores", []):
            if isinstance(score.get("result"), float):
                score["result"] *= scale
        lines.append(json.dumps(record))
    s3.put_object(
        Bucket=BUCKET,
        Key=f"evaluation/runs/{run['id']}/{key}/output/job-name/abcd1234efgh/models/m/taskTypes/Generation/"
        "datasets/set/0f8fad5b_output.jsonl",
        Body="\n".join(lines).encode(),
    )


def completed() -> dict:
    return {
        "status": "Completed",
        "job": "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcd1234efgh",
    }


def metric_values(endpoint: str, name: str, evaluation: str, statistic: str = "Maximum") -> list[float]:
    cloudwatch = client("cloudwatch", endpoint)
    found = cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=name)["Metrics"]
    values = []
    for metric in found:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if dims.get("Evaluation") != evaluation:
            continue
        stats = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=name,
            Dimensions=metric["Dimensions"],
            StartTime="2020-01-01T00:00:00Z",
            EndTime="2100-01-01T00:00:00Z",
            Period=60,
            Statistics=[statistic],
        )
        values += [p[statistic] for p in stats["Datapoints"]]
    return values


def read(s3, key: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=f"evaluation/{key}")["Body"].read().decode()


def test_a_scheduled_run_selects_every_job_and_names_itself_from_the_execution(handler):
    run = select(handler, "schedule")
    assert run["keys"] == ["copy_quality_ab12cd", "facts_rag_ef34ab"]
    assert run["id"].startswith("20261206T030001Z-")
    assert run["token"] == run["id"][-12:]
    assert run == select(handler, "schedule"), "a retried Select names the same run"
    assert select(handler, "schedule", execution="another")["token"] != run["token"]


def test_a_run_scores_reports_and_alarms_on_a_drop_until_a_run_is_accepted(handler, endpoint):
    s3 = client("s3", endpoint)
    first = select(handler, "deployment", {"copy_quality_ab12cd": "d1", "facts_rag_ef34ab": "d2"})
    assert first["keys"] == ["copy_quality_ab12cd", "facts_rag_ef34ab"], "nothing has run yet: both"
    place_output(s3, first, "copy_quality_ab12cd", "judge_output.jsonl")
    collected = call(
        handler,
        {
            "action": "collect",
            "run": first,
            "job": job("copy_quality_ab12cd", "copy-quality"),
            "check": completed(),
        },
    )
    assert collected["status"] == "Completed"
    assert collected["baseline"] is True
    assert collected["drops"] == []
    failed = call(
        handler,
        {
            "action": "collect",
            "run": first,
            "job": job("facts_rag_ef34ab", "facts-rag", "knowledge_base"),
            "check": {
                "status": "Failed",
                "response": {"FailureMessages": ["AccessDenied on the knowledge base"]},
            },
        },
    )
    assert failed["status"] == "Failed"
    assert failed["failures"] == ["AccessDenied on the knowledge base"]
    reported = call(handler, {"action": "report", "run": first, "results": [collected, failed]})
    assert reported["failed"] == ["facts_rag_ef34ab"]
    assert reported["regressed"] == []
    report = read(s3, f"runs/{first['id']}/report.md")
    assert "AccessDenied on the knowledge base" in report
    assert "| Correctness |" in report
    assert read(s3, "reports/latest.md") == report
    state = json.loads(read(s3, "state/last-run.json"))
    assert state["digests"] == {"copy_quality_ab12cd": "d1"}, "only a completed job's digest is remembered"
    assert json.loads(read(s3, "latest/copy-quality.json"))["passed"] is True
    assert metric_values(endpoint, "Regressions", "copy-quality") == [0.0]
    assert metric_values(endpoint, "Score", "copy-quality"), "scores are published per dimension set"

    # A deployment that changed nothing re-runs only the job that failed.
    again = select(handler, "deployment", {"copy_quality_ab12cd": "d1", "facts_rag_ef34ab": "d2"}, "second")
    assert again["keys"] == ["facts_rag_ef34ab"]

    # A later run whose correctness fell by a third: a drop beyond the tolerance of 0.05.
    worse = select(handler, "schedule", execution="third")
    place_output(s3, worse, "copy_quality_ab12cd", "judge_output.jsonl", scale=2 / 3)
    collected = call(
        handler,
        {
            "action": "collect",
            "run": worse,
            "job": job("copy_quality_ab12cd", "copy-quality"),
            "check": completed(),
        },
    )
    assert collected["baseline"] is False
    assert collected["accepted_run"] == first["id"]
    assert [d["metric"] for d in collected["drops"]] == ["Correctness"]
    reported = call(handler, {"action": "report", "run": worse, "results": [collected]})
    assert reported["regressed"] == ["copy_quality_ab12cd"]
    assert reported["failed"] == []
    verdict = json.loads(read(s3, "latest/copy-quality.json"))
    assert verdict["passed"] is False
    assert verdict["run"] == worse["id"]
    assert "DROP" in read(s3, f"runs/{worse['id']}/copy_quality_ab12cd/report.md")
    assert 1.0 in metric_values(endpoint, "Regressions", "copy-quality")

    # Accepting the worse run makes it the baseline and publishes 0, which clears the alarm.
    accepted = call(handler, {"action": "accept", "run": worse["id"]})
    assert accepted == {"run": worse["id"], "accepted": ["copy_quality_ab12cd"]}
    baseline = json.loads(read(s3, "accepted/copy_quality_ab12cd.json"))
    assert baseline["run"] == worse["id"]
    assert baseline["overall"] == collected["scores"]


def test_a_completed_job_without_output_files_is_not_a_pass(handler):
    run = select(handler, "manual")
    result = call(
        handler,
        {
            "action": "collect",
            "run": run,
            "job": job("copy_quality_ab12cd", "copy-quality"),
            "check": completed(),
        },
    )
    assert result["status"] == "NoOutput"
    assert "_output.jsonl" in result["failures"][0]


def test_accepting_a_run_without_scores_fails_loudly(handler):
    with pytest.raises(ValueError, match="nothing to accept"):
        call(handler, {"action": "accept", "run": "20261206T030001Z-0123456789ab"})


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (
            {
                "action": "select",
                "reason": "weekly",
                "digests": {},
                "jobs": JOBS,
                "execution": "e",
                "started": STARTED,
            },
            "reason",
        ),
        ({"action": "accept", "run": "latest"}, "run"),
        ({"action": "delete"}, "action"),
    ],
)
def test_a_payload_the_state_machine_does_not_send_is_refused_with_its_field(handler, event, field):
    with pytest.raises(ValueError, match=field):
        call(handler, event)


# ------------------------------------------------------------------------------------ traffic jobs

ACCOUNT = "123456789012"
LOGS = f"bedrock-invocation-logs/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/"
TARGET = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/abcd1234wxyz"
JOB_ROLE = "managed-api-Bedrock-EvaluationJobRole-ABC123"
GATEWAY = f"arn:aws:sts::{ACCOUNT}:assumed-role/managed-api-Orchestration-GatewayRole-XYZ/gateway"
CARD = "4111 1111 1111 1111"


RUN_HOUR = datetime(2026, 12, 6, 3, tzinfo=UTC)  # the hour STARTED is in: the window ends there


def log_record(
    prompt: str,
    answer: str,
    *,
    model: str = TARGET,
    who: str = GATEWAY,
    stop: str = "end_turn",
    hours_ago: int = 2,
    system: str = "You write bank marketing copy.",
) -> dict:
    """A Converse record as Bedrock's model invocation logging writes it (Bedrock user guide, "Monitor
    model invocation using CloudWatch Logs and Amazon S3")."""
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (RUN_HOUR - timedelta(hours=hours_ago, minutes=-5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": ACCOUNT,
        "identity": {"arn": who},
        "region": REGION,
        "requestId": "r",
        "operation": "Converse",
        "modelId": model,
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "system": [{"text": system}],
                "messages": [{"role": "user", "content": [{"text": prompt}]}],
            },
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": stop,
            },
        },
    }


class Guardrail:
    """bedrock-runtime's ApplyGuardrail, which moto does not have: each request is validated against
    botocore's model of the API, and answered the way the guardrail's sensitive-information policy
    answers (EMAIL anonymized as {EMAIL}, a card number BLOCKED)."""

    def __init__(self):
        self.model = offline_client("bedrock-runtime").meta.service_model.operation_model("ApplyGuardrail")
        self.calls: list[dict] = []

    def apply_guardrail(self, **request):
        validate_parameters(request, self.model.input_shape)
        self.calls.append(request)
        text = request["content"][0]["text"]["text"]
        if CARD in text:
            pii = [{"match": CARD, "type": "CREDIT_DEBIT_CARD_NUMBER", "action": "BLOCKED", "detected": True}]
            return {
                "action": "GUARDRAIL_INTERVENED",
                "outputs": [{"text": "Sorry, this request cannot be processed."}],
                "assessments": [{"sensitiveInformationPolicy": {"piiEntities": pii}}],
            }
        if "@" in text:
            email = next(word for word in text.split() if "@" in word)
            pii = [{"match": email, "type": "EMAIL", "action": "ANONYMIZED", "detected": True}]
            return {
                "action": "GUARDRAIL_INTERVENED",
                "outputs": [{"text": text.replace(email, "{EMAIL}")}],
                "assessments": [{"sensitiveInformationPolicy": {"piiEntities": pii}}],
            }
        return {"action": "NONE", "outputs": [], "assessments": [{}]}


@pytest.fixture
def traffic(endpoint, monkeypatch):
    module = load_handler(endpoint, monkeypatch, bucket=BUCKET, profile="managed-api", logs_prefix=LOGS)
    guardrail = Guardrail()
    monkeypatch.setattr(module, "bedrock_runtime", lambda: guardrail)
    return module, guardrail


def put_logs(s3, hours_ago: int, records: list[dict]) -> None:
    hour = RUN_HOUR - timedelta(hours=hours_ago)
    body = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{LOGS}{hour:%Y/%m/%d/%H}/{ACCOUNT}_{hours_ago}.json.gz", Body=body)


def sample_event(run: dict, size: int = 100) -> dict:
    return {
        "action": "sample",
        "run": run,
        "job": {
            "key": "copy_traffic_aa11bb",
            "identifiers": [TARGET],
            "excluded_roles": [JOB_ROLE],
            "label": "copywriter.us.anthropic.claude-haiku",
            "sample": size,
            "days": 7,
        },
        "guardrail": {"id": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/gr0123456789", "version": "3"},
    }


def test_a_traffic_sample_is_the_target_s_logged_answers_redacted_before_anything_is_written(
    traffic, endpoint
):
    module, guardrail = traffic
    s3 = client("s3", endpoint)
    put_logs(
        s3,
        2,
        [
            log_record(f"Write a spring savings email, number {n}.", f"Save more this spring ({n}).")
            for n in range(12)
        ]
        + [
            log_record(
                "Reply to jane.doe@example.com about the card offer.", "Dear customer, here is the offer."
            ),
            log_record(f"My card is {CARD}, write me an ad.", "Here is an ad."),
            log_record(
                "An evaluation row.",
                "The evaluation's own answer.",
                who=f"arn:aws:sts::{ACCOUNT}:assumed-role/{JOB_ROLE}/s",
            ),
            log_record("Another model's traffic.", "Not sampled.", model="amazon.nova-lite-v1:0"),
            log_record("Blocked by the model's guardrail.", "Sorry.", stop="guardrail_intervened"),
        ],
    )
    put_logs(s3, 24 * 8, [log_record("Too old to sample.", "Outside the window.", hours_ago=24 * 8)])
    # The hour the run started in is still being written: a retried step must read what the first read.
    put_logs(s3, 0, [log_record("Logged during the run.", "Not in the window.", hours_ago=0)])
    run = select(module, "schedule")
    counts = call(module, sample_event(run))
    assert (
        counts["matched"] == 15
    )  # 12 + the email + the card + the intervened; not the job role's or the other model's
    assert counts["intervened"] == 1
    assert counts["blocked"] == 1  # the card number: dropped, never written
    assert counts["rows"] == 13
    folder = f"runs/{run['id']}/copy_traffic_aa11bb"
    lines = [json.loads(line) for line in read(s3, f"{folder}/dataset.jsonl").splitlines()]
    assert len(lines) == 13
    text = json.dumps(lines)
    assert CARD not in text
    assert "jane.doe@example.com" not in text
    # The judge reads the model's instructions with what was asked (following_instructions).
    assert "You write bank marketing copy.\n\nReply to {EMAIL} about the card offer." in [
        line["prompt"] for line in lines
    ]
    assert "during the run" not in text
    assert all(
        line["modelResponses"]
        == [
            {
                "response": line["modelResponses"][0]["response"],
                "modelIdentifier": "copywriter.us.anthropic.claude-haiku",
            }
        ]
        for line in lines
    )
    assert all(set(line) == {"prompt", "category", "modelResponses"} for line in lines)
    assert "Too old" not in text
    assert {c["source"] for c in guardrail.calls} == {"INPUT", "OUTPUT"}
    assert json.loads(read(s3, f"{folder}/sample.json"))["rows"] == 13
    assert call(module, sample_event(run)) == counts, "a retried step draws the same sample"


def test_a_traffic_sample_keeps_at_most_the_rows_asked_for(traffic, endpoint):
    module, _ = traffic
    s3 = client("s3", endpoint)
    put_logs(s3, 1, [log_record(f"Prompt {n}", f"Answer {n}") for n in range(60)])
    run = select(module, "schedule")
    counts = call(module, sample_event(run, size=20))
    assert counts["matched"] == 60
    assert counts["rows"] == 20
    assert len(read(s3, f"runs/{run['id']}/copy_traffic_aa11bb/dataset.jsonl").splitlines()) == 20


def test_a_traffic_job_is_compared_with_its_model_job_s_accepted_run_and_never_becomes_a_baseline(
    handler, endpoint
):
    s3 = client("s3", endpoint)
    first = select(handler, "schedule")
    place_output(s3, first, "copy_quality_ab12cd", "judge_output.jsonl")
    model = call(
        handler,
        {
            "action": "collect",
            "run": first,
            "job": job("copy_quality_ab12cd", "copy-quality"),
            "check": completed(),
        },
    )
    assert model["baseline"] is True
    place_output(s3, first, "copy_traffic_aa11bb", "judge_output.jsonl", scale=0.5)
    traffic_job = job("copy_traffic_aa11bb", "copy-traffic", "traffic", baseline_key="copy_quality_ab12cd")
    result = call(handler, {"action": "collect", "run": first, "job": traffic_job, "check": completed()})
    assert result["baseline"] is False
    assert result["accepted_run"] == first["id"]
    assert [d["metric"] for d in result["drops"]] == ["Correctness"]
    assert 1.0 in metric_values(endpoint, "Regressions", "copy-traffic")
    assert "logged traffic, against copy_quality_ab12cd" in read(
        s3, f"runs/{first['id']}/copy_traffic_aa11bb/report.md"
    )
    quiet = {**traffic_job, "status": "NoTraffic", "rows": 3}
    quiet.pop("tolerance")
    reported = call(handler, {"action": "report", "run": first, "results": [model, quiet]})
    assert reported["failed"] == [], "too little traffic is reported, not a failed run"
    assert "NoTraffic" in read(s3, f"runs/{first['id']}/report.md")
    accepted = call(handler, {"action": "accept", "run": first["id"]})
    assert accepted["accepted"] == ["copy_quality_ab12cd"], "a traffic job's scores are never a baseline"
    # Accepting clears the traffic evaluation's regressions too (0 in the same minute as the 1).
    assert 0.0 in metric_values(endpoint, "Regressions", "copy-traffic", "Minimum")


def test_a_deployment_never_selects_a_traffic_job(handler):
    jobs = [*JOBS, {"key": "copy_traffic_aa11bb", "digest": "d3", "schedule_only": True}]
    event = {"action": "select", "digests": {}, "jobs": jobs, "execution": EXECUTION, "started": STARTED}
    assert call(handler, {**event, "reason": "deployment"})["keys"] == [
        "copy_quality_ab12cd",
        "facts_rag_ef34ab",
    ]
    assert "copy_traffic_aa11bb" in call(handler, {**event, "reason": "schedule"})["keys"]


def test_a_sample_stops_in_time_and_writes_what_it_redacted(traffic, endpoint):
    module, guardrail = traffic
    s3 = client("s3", endpoint)
    put_logs(s3, 1, [log_record(f"Prompt {n}", f"Answer {n}") for n in range(30)])
    run = select(module, "schedule")
    context = Context()
    context.remaining_ms = 200_000  # under the reading reserve: nothing is read
    counts = call(module, sample_event(run), context)
    assert counts["cut"] is True
    assert counts["rows"] == 0
    assert guardrail.calls == []


def test_pii_the_guardrail_detected_but_did_not_mask_is_never_written(traffic, endpoint, monkeypatch):
    module, guardrail = traffic

    def detect_only(**request):
        validate_parameters(request, guardrail.model.input_shape)
        # A detect-mode entity, reported without `detected` (botocore's model leaves it optional).
        pii = [{"match": "Jane", "type": "NAME", "action": "NONE"}]
        return {
            "action": "NONE",
            "outputs": [],
            "assessments": [{"sensitiveInformationPolicy": {"piiEntities": pii}}],
        }

    monkeypatch.setattr(guardrail, "apply_guardrail", detect_only)
    s3 = client("s3", endpoint)
    put_logs(s3, 1, [log_record(f"Write to Jane about offer {n}", f"Dear Jane ({n})") for n in range(12)])
    run = select(module, "schedule")
    counts = call(module, sample_event(run))
    assert counts["unmasked"] == 12
    assert counts["rows"] == 0
