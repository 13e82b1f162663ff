"""A training pipeline's evaluation gate (stacks/components/candidate_evaluation.py): the candidate's
answers become a judge job's dataset, and the judge's scores a verdict the pipeline registers with.

`dataset`: the batch transform ran `requests.jsonl` (planning.evaluation.gate_jobs) with
`DataProcessing.JoinSource: Input`, so each output line is the input line with the container's answer
under `SageMakerOutput` (SageMaker developer guide, "Associate Prediction Results with Input Records").
Each becomes a row in Bedrock's own-responses format: {prompt, referenceResponse, category,
modelResponses: [{response, modelIdentifier}]}. A line without an answer is counted, not scored.

`verdict`: the collected job (runs.collect: scores, drops against the accepted run) against the
gate's thresholds. It writes `latest/<evaluation>.json` and returns what the pipeline's Register
state puts in the model package's CustomerMetadataProperties.
"""

from __future__ import annotations

import json
from typing import Any

from ..drift_monitor.logic import answer_text
from .results import LOWER_IS_BETTER
from .runs import COMPLETED, Place, load_json, save

ANSWER_KEY = "SageMakerOutput"


def dataset(s3: Any, place: Place, *, run: dict, key: str, label: str, output_key: str) -> dict:
    """Write `runs/<run>/<key>/dataset.jsonl` from the transform's joined output."""
    body = s3.get_object(Bucket=place.bucket, Key=output_key)["Body"].read().decode("utf-8")
    lines, unanswered = [], 0
    for number, text in enumerate(body.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            raise ValueError(f"{output_key}:{number}: not a JSON line of the transform's output") from None
        messages = record.get("messages") or []
        prompt = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
        answer = answer_text(record.get(ANSWER_KEY)).strip()
        if not isinstance(prompt, str) or not answer:
            unanswered += 1
            continue
        extra = record.get("genai_stack") or {}
        line: dict[str, Any] = {
            "prompt": prompt,
            "category": extra.get("category") or "general|und",
            "modelResponses": [{"response": answer, "modelIdentifier": label}],
        }
        if extra.get("reference"):
            line["referenceResponse"] = extra["reference"]
        lines.append(line)
    if lines:
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        s3.put_object(
            Bucket=place.bucket,
            Key=place.key("runs", run["id"], key, "dataset.jsonl"),
            Body=text.encode("utf-8"),
            ContentType="application/jsonl",
        )
    return {"rows": len(lines), "unanswered": unanswered}


def failures(result: dict, thresholds: dict[str, float], answers: dict) -> list[str]:
    """Why the candidate does not pass: it left requests unanswered, the judge job did not complete, a
    score is missing or on the wrong side of its threshold, or a score fell beyond the tolerance below
    the accepted run's."""
    found = []
    unanswered = answers.get("unanswered", 0)
    if unanswered:
        asked = unanswered + answers.get("rows", 0)
        found.append(f"{unanswered} of {asked} requests got no answer from the candidate")
    if result.get("status") != COMPLETED:
        reasons = "; ".join(map(str, result.get("failures") or [])) or "no reason given"
        return [*found, f"the judge job ended {result.get('status')}: {reasons}"]
    scores = result.get("scores") or {}
    for metric, limit in sorted(thresholds.items()):
        score = scores.get(metric)
        if score is None:
            found.append(f"{metric} was not scored")
        elif metric in LOWER_IS_BETTER and score > limit:
            found.append(f"{metric} {score:.3f} is above its ceiling {limit:g}")
        elif metric not in LOWER_IS_BETTER and score < limit:
            found.append(f"{metric} {score:.3f} is below its threshold {limit:g}")
    found += [
        f"{d['metric']} fell from {d['accepted']:.3f} (accepted run) to {d['now']:.3f}"
        for d in result.get("drops", [])
    ]
    return found


def verdict(
    s3: Any,
    place: Place,
    *,
    run: dict,
    evaluation: str,
    result: dict,
    thresholds: dict,
    answers: dict,
) -> dict:
    """The gate's decision, written as `latest/<evaluation>.json` and returned with the model package
    metadata (keys and values within CustomerMetadataProperties' limits: 128 and 256 characters). The
    first candidate that passes becomes the gate's accepted run (runs.collect leaves that to here)."""
    reasons = failures(result, thresholds, answers)
    passed = not reasons
    accepted_key = place.key("accepted", f"{result['key']}.json")
    if passed and load_json(s3, place, accepted_key) is None:
        scores = load_json(s3, place, place.key("runs", run["id"], result["key"], "scores.json"))
        if scores is not None:
            save(s3, place, accepted_key, {**scores, "run": run["id"]})
    report = f"s3://{place.bucket}/{place.key('runs', run['id'], result['key'], 'report.md')}"
    document = {
        "run": run["id"],
        "passed": passed,
        "failures": reasons,
        "scores": result.get("scores") or {},
        "thresholds": thresholds,
        "accepted_run": result.get("accepted_run"),
        "report": report,
    }
    save(s3, place, place.key("latest", f"{evaluation}.json"), document)
    metadata = {
        "genai-stack:evaluation": "passed" if passed else "failed",
        "genai-stack:evaluation-run": run["id"],
        "genai-stack:evaluation-report": report[:256],
        **{f"genai-stack:score:{m}": f"{v:.4f}" for m, v in sorted((result.get("scores") or {}).items())},
    }
    summary = "; ".join(reasons) if reasons else "every judged score met its threshold and the accepted run's"
    return {"passed": passed, "reason": summary[:1024], "customer_metadata": metadata}
