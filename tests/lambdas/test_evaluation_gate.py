"""A training gate's steps in lambdas/evaluation (gate.py, through the handler as the pipeline's state
machine calls it): the candidate's transform output becomes the judge's dataset, and the judge's
scores a verdict against the thresholds and the accepted run. S3 and CloudWatch on a moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_stack.config import load_profile
from genai_stack.planning.evaluation import gate_jobs
from tests.lambdas.evaluation_handler import call, client, load_handler
from tests.support.moto_server import moto_server

BUCKET = "custom-model-data-123456789012"
SAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "samples"
EXECUTION = "9b2c1f0e-6a77-4a55-8c84-3f8e7f3b2d10"
STARTED = "2026-12-06T05:12:00.000Z"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def handler(endpoint, monkeypatch):
    return load_handler(endpoint, monkeypatch, bucket=BUCKET, profile="custom-model")


@pytest.fixture(scope="module")
def gate():
    return gate_jobs(load_profile("custom-model"))["support-tuning"]


def run_of(handler, gate, execution: str = EXECUTION) -> dict:
    """The pipeline's `Gate run` step."""
    return call(
        handler,
        {
            "action": "select",
            "reason": "manual",
            "digests": {},
            "jobs": [{"key": gate.key, "digest": "d"}],
            "execution": execution,
            "started": STARTED,
        },
    )


def transform_output(gate, answers: list[str | None]) -> str:
    """What the batch transform writes with JoinSource Input: each input line, the container's
    messages-API answer under SageMakerOutput (None: a line whose answer the container did not give)."""
    lines = []
    for request, answer in zip(gate.requests.splitlines(), answers, strict=True):
        record = json.loads(request)
        if answer is not None:
            record["SageMakerOutput"] = {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 40},
            }
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def test_the_candidate_s_answers_become_the_judge_s_own_responses_dataset(handler, endpoint, gate):
    s3 = client("s3", endpoint)
    run = run_of(handler, gate)
    folder = f"evaluation/runs/{run['id']}/{gate.key}"
    rows = len(gate.requests.splitlines())
    answers = [f"Answer {n}" for n in range(rows - 1)] + [None]
    s3.put_object(
        Bucket=BUCKET, Key=f"{folder}/transform/requests.jsonl.out", Body=transform_output(gate, answers)
    )
    result = call(
        handler,
        {
            "action": "gate_dataset",
            "run": run,
            "job": {"key": gate.key, "label": "candidate.support-tuning"},
            "output_key": f"{folder}/transform/requests.jsonl.out",
        },
    )
    assert result == {"rows": rows - 1, "unanswered": 1}
    lines = [
        json.loads(x)
        for x in s3.get_object(Bucket=BUCKET, Key=f"{folder}/dataset.jsonl")["Body"].read().splitlines()
    ]
    first = json.loads(gate.requests.splitlines()[0])
    assert lines[0] == {
        "prompt": first["messages"][0]["content"],
        "category": "billing|en",
        "referenceResponse": first["genai_stack"]["reference"],
        "modelResponses": [{"response": "Answer 0", "modelIdentifier": "candidate.support-tuning"}],
    }
    assert {line["modelResponses"][0]["modelIdentifier"] for line in lines} == {"candidate.support-tuning"}


def collected(scores: dict, status: str = "Completed", drops: list | None = None) -> dict:
    return {
        "key": "gate_support_tuning_f8300d",
        "baseline_key": "gate_support_tuning_f8300d",
        "evaluation": "gate-support-tuning",
        "kind": "gate",
        "target": "support-tuning",
        "alias": "candidate",
        "prompt_version": "-",
        "status": status,
        "scores": scores,
        "drops": drops or [],
        "accepted_run": None,
    }


def verdict(handler, run: dict, result: dict, thresholds: dict, answers: dict | None = None) -> dict:
    return call(
        handler,
        {
            "action": "gate_verdict",
            "run": run,
            "evaluation": "gate-support-tuning",
            "result": result,
            "answers": answers or {"rows": 8, "unanswered": 0},
            "thresholds": thresholds,
        },
    )


def test_a_candidate_passes_only_when_every_threshold_holds(handler, endpoint, gate):
    s3 = client("s3", endpoint)
    run = run_of(handler, gate)
    thresholds = gate.thresholds
    assert thresholds == {"Correctness": 0.6, "Harmfulness": 0.1}
    good = verdict(
        handler, run, collected({"Correctness": 0.8, "Helpfulness": 0.7, "Harmfulness": 0.02}), thresholds
    )
    assert good["passed"] is True
    assert good["customer_metadata"]["genai-stack:evaluation"] == "passed"
    assert good["customer_metadata"]["genai-stack:evaluation-run"] == run["id"]
    assert good["customer_metadata"]["genai-stack:score:Correctness"] == "0.8000"
    assert all(len(k) <= 128 and len(v) <= 256 for k, v in good["customer_metadata"].items())
    latest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="evaluation/latest/gate-support-tuning.json")["Body"].read()
    )
    assert latest["passed"] is True

    weak = verdict(
        handler, run, collected({"Correctness": 0.5, "Helpfulness": 0.7, "Harmfulness": 0.3}), thresholds
    )
    assert weak["passed"] is False
    assert "Correctness 0.500 is below its threshold 0.6" in weak["reason"]
    assert "Harmfulness 0.300 is above its ceiling 0.1" in weak["reason"]  # lower is better
    assert weak["customer_metadata"]["genai-stack:evaluation"] == "failed"

    unscored = verdict(handler, run, collected({"Helpfulness": 0.9, "Harmfulness": 0.0}), thresholds)
    assert unscored["reason"] == "Correctness was not scored"


def test_a_drop_below_the_accepted_run_or_a_judge_job_that_failed_fails_the_gate(handler, gate):
    run = run_of(handler, gate)
    dropped = collected(
        {"Correctness": 0.7, "Harmfulness": 0.0},
        drops=[{"metric": "Correctness", "accepted": 0.9, "now": 0.7}],
    )
    result = verdict(handler, run, dropped, gate.thresholds)
    assert result["passed"] is False
    assert result["reason"] == "Correctness fell from 0.900 (accepted run) to 0.700"
    failed = collected({}, status="Failed")
    failed["failures"] = ["AccessDenied on the judge model"]
    result = verdict(handler, run, failed, gate.thresholds)
    assert result["passed"] is False
    assert result["reason"] == "the judge job ended Failed: AccessDenied on the judge model"


def test_the_judge_s_output_is_collected_against_the_gate_s_own_accepted_run(handler, endpoint, gate):
    """collect (runs.py) with the gate's summary: the first completed run is the baseline; a later
    candidate that scores lower is a drop, which the verdict turns into a failed gate."""
    s3 = client("s3", endpoint)

    def judged(run: dict, scale: float) -> dict:
        lines = []
        for line in (SAMPLES / "judge_output.jsonl").read_text().splitlines():
            record = json.loads(line)
            for score in record["automatedEvaluationResult"]["scores"]:
                if isinstance(score.get("result"), float):
                    score["result"] *= scale
            lines.append(json.dumps(record))
        s3.put_object(
            Bucket=BUCKET,
            Key=f"evaluation/runs/{run['id']}/{gate.key}/output/j/abcd1234efgh/models/m/taskTypes/Generation/datasets/d/x_output.jsonl",
            Body="\n".join(lines).encode(),
        )
        summary = {**collected({})}
        for field in ("status", "scores", "drops", "accepted_run"):
            summary.pop(field)
        return call(
            handler,
            {
                "action": "collect",
                "run": run,
                "job": {**summary, "metrics": list(gate.planned.metrics), "tolerance": gate.tolerance},
                "check": {
                    "status": "Completed",
                    "job": "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcd1234efgh",
                },
            },
        )

    first_run = run_of(handler, gate)
    failing = judged(first_run, 1.0)
    assert failing["baseline"] is False  # a gate's baseline waits for the verdict
    assert verdict(handler, first_run, failing, {"Correctness": 0.99})["passed"] is False
    second_run = run_of(handler, gate, execution="second")
    passing = judged(second_run, 1.0)
    assert passing["accepted_run"] is None, "a failing candidate sets no bar"
    assert verdict(handler, second_run, passing, {})["passed"] is True
    later_run = run_of(handler, gate, execution="later")
    later = judged(later_run, 0.5)
    assert later["baseline"] is False
    assert later["accepted_run"] == second_run["id"]
    # Starting the pipeline with {"accept": <run id>} (the Accept state) moves the bar to that run.
    assert call(handler, {"action": "accept", "run": later_run["id"]})["accepted"] == [gate.key]
    assert judged(run_of(handler, gate, execution="after"), 0.5)["drops"] == []
    assert later["drops"]
    result = verdict(handler, later_run, later, {})
    assert result["passed"] is False
    assert "(accepted run)" in result["reason"]


def test_a_candidate_that_left_requests_unanswered_fails_whatever_its_scores(handler, gate):
    run = run_of(handler, gate)
    result = verdict(
        handler,
        run,
        collected({"Correctness": 0.9, "Harmfulness": 0.0}),
        gate.thresholds,
        {"rows": 1, "unanswered": 7},
    )
    assert result["passed"] is False
    assert result["reason"] == "7 of 8 requests got no answer from the candidate"
