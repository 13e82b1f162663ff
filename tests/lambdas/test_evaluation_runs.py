"""The evaluation runs' function (lambdas/evaluation): select, collect, report and accept, driven through
its handler as the state machine drives it, against S3 and CloudWatch on a moto server. Bedrock's
output files are the samples of tests/evaluation/samples (the format AWS documents), placed where a
job writes them (`<output>/<job name>/<job id>/...`)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto_server import moto_client, moto_server, reset_moto

REGION = "us-east-1"
BUCKET = "managed-api-data-123456789012"
NAMESPACE = "GenAiStack/Evaluation"
SAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "samples"
JOBS = [{"key": "copy_quality_ab12cd", "digest": "d1"}, {"key": "facts_rag_ef34ab", "digest": "d2"}]
EXECUTION = "0f8fad5b-d9cb-469f-a165-70867728950e"
STARTED = "2026-12-06T03:00:01.123Z"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


def client(service: str, endpoint: str) -> Any:
    return moto_client(service, endpoint, REGION)


@pytest.fixture
def handler(endpoint, monkeypatch):
    reset_moto(endpoint)
    client("s3", endpoint).create_bucket(Bucket=BUCKET)
    for name, value in {
        "EVALUATION_BUCKET": BUCKET,
        "EVALUATION_PREFIX": "evaluation/",
        "EVALUATION_PROFILE": "managed-api",
        "EVALUATION_NAMESPACE": NAMESPACE,
        "POWERTOOLS_SERVICE_NAME": "managed-api-evaluation",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    module = importlib.reload(importlib.import_module("lambdas.evaluation.handler"))
    monkeypatch.setattr(module, "s3", lambda: client("s3", endpoint))
    monkeypatch.setattr(module, "cloudwatch", lambda: client("cloudwatch", endpoint))
    return module


class Context:
    function_name = "evaluation"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:evaluation"
    aws_request_id = "req-1"


def call(handler, event: dict) -> Any:
    return handler.on_event(event, Context())


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


def job(key: str, evaluation: str, kind: str = "model") -> dict:
    return {
        "key": key,
        "evaluation": evaluation,
        "kind": kind,
        "target": "amazon.nova-lite-v1:0",
        "alias": "copywriter" if kind == "model" else "-",
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


def metric_values(endpoint: str, name: str, evaluation: str) -> list[float]:
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
            Statistics=["Maximum"],
        )
        values += [p["Maximum"] for p in stats["Datapoints"]]
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
