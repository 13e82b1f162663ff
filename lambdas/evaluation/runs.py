"""One evaluation run, as the state machine (stacks/components/model_evaluation.py) drives it: select
its jobs, collect each job's output, report the run, and accept a run's scores as the baseline.

Everything lives under one prefix of the data bucket (`evaluation/`):

    state/last-run.json                   the digests of the jobs the last runs completed
    runs/<run>/<key>/dataset.jsonl        the rows the job was scored on (copied by the state machine;
                                          a traffic job's redacted sample, traffic.py)
    runs/<run>/<key>/sample.json          a traffic job's counts: records read, matched, dropped and why
    runs/<run>/<key>/output/...           Bedrock's output (`_output.jsonl` files, results.read_output)
    runs/<run>/<key>/scores.json          the job's means: overall and per category and language
    runs/<run>/<key>/report.md            its report (results.report)
    runs/<run>/report.md                  the run's report; reports/latest.md is a copy of the last one
    accepted/<key>.json                   the scores a job is compared with (its accepted run's)
    latest/<evaluation>.json              the last verdict of each evaluation (passed or not, and why)

A job without an accepted run accepts its first completed one. After that only `accept` moves the
baseline: a slow slide of small drops never becomes the new normal by itself. A traffic job has no
baseline of its own: it is compared with the accepted scores of the model evaluation job it names
(`baseline_key`), the same model on the reviewed set.

Metrics (PutMetricData, namespace EVALUATION_NAMESPACE; an exact dimension set, which Powertools'
EMF would extend with `service`):
- Score: Profile, Evaluation, Alias, Target, PromptVersion, Metric, Category (`all` for the overall
  mean; the languages are in the report);
- Regressions: Profile, Evaluation: the metrics of a job that fell beyond the tolerance (0 when none,
  and 0 for every evaluation of an accepted run, which clears the alarm).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .results import ALL, OutputError, Scores, drops, read_output, report

OUTPUT_SUFFIX = "_output.jsonl"
COMPLETED = "Completed"
NO_TRAFFIC = "NoTraffic"  # a traffic job whose sample had too few rows: reported, neither failed nor passed
PUT_BATCH = 1000  # PutMetricData: at most 1,000 metrics a request (CloudWatch API reference)


@dataclass(frozen=True)
class Place:
    bucket: str
    prefix: str  # ends with "/"

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)


# ------------------------------------------------------------------------------------------ S3


def load_json(s3: Any, place: Place, key: str) -> Any | None:
    try:
        body = s3.get_object(Bucket=place.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    return json.loads(body)


def save(s3: Any, place: Place, key: str, body: str | dict | list) -> None:
    """A Markdown text, or a JSON document."""
    text = body if isinstance(body, str) else json.dumps(body, indent=1, sort_keys=True)
    kind = "text/markdown; charset=utf-8" if isinstance(body, str) else "application/json"
    s3.put_object(Bucket=place.bucket, Key=key, Body=text.encode("utf-8"), ContentType=kind)


def keys_under(s3: Any, place: Place, prefix: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=place.bucket, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


# -------------------------------------------------------------------------------------- select


def run_names(execution: str, started: str) -> tuple[str, str]:
    """The run's id (`<UTC time>-<token>`, sortable) and token (12 hex digits, lower case, for Bedrock's
    job names), both from the execution, so a retried Select names the run the same."""
    token = hashlib.sha256(execution.encode()).hexdigest()[:12]
    when = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{token}", token


def select(
    s3: Any, place: Place, *, reason: str, jobs: list[dict], digests: dict, execution: str, started: str
) -> dict:
    """The run's names and jobs: every job, or after a deployment the jobs whose digest differs from
    the one their last completed run had."""
    run_id, token = run_names(execution, started)
    last = (load_json(s3, place, place.key("state", "last-run.json")) or {}).get("digests", {})
    current = {job["key"]: digests.get(job["key"], job["digest"]) for job in jobs}
    if reason == "deployment":  # a deployment changes no logged invocation: traffic jobs wait
        waiting = {job["key"] for job in jobs if job.get("schedule_only")}
        chosen = [key for key, digest in current.items() if last.get(key) != digest and key not in waiting]
    else:
        chosen = list(current)
    return {
        "id": run_id,
        "token": token,
        "reason": reason,
        "keys": chosen,
        "selected": dict.fromkeys(chosen, True),
        "digests": {key: current[key] for key in chosen},
    }


# ------------------------------------------------------------------------------------- collect


def scores_document(scores: Scores) -> dict:
    """The means a job is compared by: overall, and per (category, language)."""
    breakdown = [
        {"metric": m, "category": c, "language": lang, "mean": scores.sums[(m, c, lang)] / n, "rows": n}
        for (m, c, lang), n in sorted(scores.counts.items())
        if n and ALL not in (c, lang)
    ]
    return {
        "rows": scores.rows,
        "overall": scores.overall(),
        "breakdown": breakdown,
        "unscored": dict(scores.unscored),
    }


def collect(
    s3: Any, cloudwatch: Any, place: Place, *, profile: str, namespace: str, run: dict, job: dict, check: dict
) -> dict:
    """Read a finished job's output, write its scores and report, compare with the accepted scores and
    publish. A job that did not complete is reported with Bedrock's reasons and publishes nothing."""
    summary = {
        key: job[key]
        for key in ("key", "baseline_key", "evaluation", "kind", "target", "alias", "prompt_version")
    }
    status = check.get("status")
    response = check.get("response") or {}
    if status != COMPLETED:
        return {**summary, "status": status or "Unknown", "failures": response.get("FailureMessages") or []}
    folder = place.key("runs", run["id"], job["key"])
    scores = Scores()
    files = sorted(k for k in keys_under(s3, place, f"{folder}/output/") if k.endswith(OUTPUT_SUFFIX))
    if not files:
        return {
            **summary,
            "status": "NoOutput",
            "failures": [f"no *{OUTPUT_SUFFIX} under s3://{place.bucket}/{folder}/output/"],
        }
    try:
        for key in files:
            body = s3.get_object(Bucket=place.bucket, Key=key)["Body"].read().decode("utf-8")
            read_output(body.splitlines(), source=key, scores=scores)
    except OutputError as error:
        return {**summary, "status": "Unreadable", "failures": [str(error)]}
    document = scores_document(scores)
    accepted_key = place.key("accepted", f"{job['baseline_key']}.json")
    accepted = load_json(s3, place, accepted_key)
    # A traffic job is compared with its model job's; a gate's first run becomes its baseline only if
    # the candidate passes (gate.verdict), so a failing candidate never sets the bar for the next.
    baseline = accepted is None and job["kind"] not in ("traffic", "gate")
    if baseline:  # the first completed run of a job is its baseline
        accepted = {**document, "run": run["id"]}
        save(s3, place, accepted_key, accepted)
    compared = accepted["overall"] if accepted else {}
    fallen = drops(scores.overall(), compared, float(job["tolerance"]))
    save(s3, place, f"{folder}/scores.json", {**document, "run": run["id"], "job": summary})
    target = f"{job['target']} (alias {job['alias']}, prompt version {job['prompt_version']})"
    if job["kind"] == "traffic":
        target = f"{job['target']} (alias {job['alias']}): logged traffic, against {job['baseline_key']}"
    text = report(
        job=f"{job['evaluation']} ({job['key']}), run {run['id']}",
        target=target,
        scores=scores,
        accepted=compared,
        tolerance=float(job["tolerance"]),
    )
    save(s3, place, f"{folder}/report.md", text)
    put_metrics(
        cloudwatch,
        namespace,
        [*score_data(profile, job, scores), regressions_datum(profile, job["evaluation"], len(fallen))],
    )
    return {
        **summary,
        "status": COMPLETED,
        "rows": scores.rows,
        "scores": scores.overall(),
        "accepted_run": accepted.get("run") if accepted else None,
        "baseline": baseline,
        "drops": [{"metric": d.metric, "accepted": d.accepted, "now": d.now} for d in fallen],
    }


def score_data(profile: str, job: dict, scores: Scores) -> list[dict]:
    data = []
    for (metric, category, language), count in sorted(scores.counts.items()):
        if not count or language != ALL:  # per category over its languages, and overall (the report
            continue  # has the languages: a series each would multiply what CloudWatch bills)
        dimensions = {
            "Profile": profile,
            "Evaluation": job["evaluation"],
            "Alias": job["alias"],
            "Target": job["target"],
            "PromptVersion": job["prompt_version"],
            "Metric": metric,
            "Category": category,
        }
        data.append(
            {
                "MetricName": "Score",
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Value": scores.sums[(metric, category, ALL)] / count,
                "Unit": "None",
            }
        )
    return data


def regressions_datum(profile: str, evaluation: str, count: int) -> dict:
    return {
        "MetricName": "Regressions",
        "Dimensions": [{"Name": "Profile", "Value": profile}, {"Name": "Evaluation", "Value": evaluation}],
        "Value": float(count),
        "Unit": "Count",
    }


def put_metrics(cloudwatch: Any, namespace: str, data: list[dict]) -> None:
    for start in range(0, len(data), PUT_BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + PUT_BATCH])


# -------------------------------------------------------------------------------------- report


def run_report(run: dict, results: list[dict], reports: dict[str, str]) -> str:
    lines = [
        f"# Evaluation run {run['id']}",
        "",
        f"Started by: {run.get('reason', 'manual')}",
        "",
        "| Job | Evaluation | Target | Status | Rows | Metrics beyond tolerance |",
        "|---|---|---|---|---:|---|",
    ]
    for result in results:
        fallen = ", ".join(
            f"{d['metric']} {d['accepted']:.3f} -> {d['now']:.3f}" for d in result.get("drops", [])
        )
        status = result["status"] + (" (baseline)" if result.get("baseline") else "")
        lines.append(
            f"| {result['key']} | {result['evaluation']} | {result['target']} | {status} | "
            f"{result.get('rows', '-')} | {fallen or '-'} |"
        )
    failures = [r for r in results if r["status"] not in (COMPLETED, "Skipped", NO_TRAFFIC)]
    if failures:
        lines += ["", "## Jobs that did not complete", ""]
        for result in failures:
            reasons = result.get("failures") or [json.dumps(result.get("error"))]
            lines.append(f"- {result['key']}: {result['status']}: {'; '.join(map(str, reasons))}")
    for text in reports.values():
        lines += ["", text.replace("# Evaluation", "## Evaluation", 1).rstrip()]
    return "\n".join(lines) + "\n"


def finish(s3: Any, place: Place, *, run: dict, results: list[dict]) -> dict:
    """Write the run's report and each evaluation's verdict, and remember the digests of the jobs that
    completed (a job that failed is re-run by the next deployment even if nothing changed)."""
    ran = [r for r in results if r["status"] != "Skipped"]
    reports = {}
    for result in ran:
        if result["status"] == COMPLETED:
            body = s3.get_object(
                Bucket=place.bucket, Key=place.key("runs", run["id"], result["key"], "report.md")
            )
            reports[result["key"]] = body["Body"].read().decode("utf-8")
    text = run_report(run, ran, reports)
    save(s3, place, place.key("runs", run["id"], "report.md"), text)
    save(s3, place, place.key("reports", "latest.md"), text)
    state_key = place.key("state", "last-run.json")
    state = load_json(s3, place, state_key) or {"digests": {}}
    for result in ran:
        if result["status"] == COMPLETED:
            state["digests"][result["key"]] = run["digests"][result["key"]]
    state["run"] = run["id"]
    save(s3, place, state_key, state)
    verdicts: dict[str, dict] = {}
    for result in ran:
        verdict = verdicts.setdefault(result["evaluation"], {"run": run["id"], "passed": True, "jobs": {}})
        passed = result["status"] in (COMPLETED, NO_TRAFFIC) and not result.get("drops")
        verdict["passed"] = verdict["passed"] and passed
        verdict["jobs"][result["key"]] = {"status": result["status"], "drops": result.get("drops", [])}
        if result["status"] == NO_TRAFFIC:  # passed says nothing about these: too little to score
            verdict.setdefault("no_evidence", []).append(result["key"])
    for evaluation, verdict in verdicts.items():
        save(s3, place, place.key("latest", f"{evaluation}.json"), verdict)
    failed = [r["key"] for r in ran if r["status"] not in (COMPLETED, NO_TRAFFIC)]
    regressed = [r["key"] for r in ran if r.get("drops")]
    return {
        "report": f"s3://{place.bucket}/{place.key('runs', run['id'], 'report.md')}",
        "failed": failed,
        "regressed": regressed,
    }


# -------------------------------------------------------------------------------------- accept


def accept(s3: Any, cloudwatch: Any, place: Place, *, profile: str, namespace: str, run_id: str) -> dict:
    """Make a run's scores the accepted ones, and clear its evaluations' regressions."""
    folder = place.key("runs", run_id) + "/"
    accepted, evaluations = [], set()
    for key in keys_under(s3, place, folder):
        if not key.endswith("/scores.json"):
            continue
        document = load_json(s3, place, key)
        job_key = key[len(folder) :].split("/", 1)[0]
        evaluations.add(document["job"]["evaluation"])  # its regressions are cleared
        if document["job"].get("kind") == "traffic":  # compared with its model job's accepted scores
            continue
        save(s3, place, place.key("accepted", f"{job_key}.json"), {**document, "run": run_id})
        accepted.append(job_key)
    if not accepted:
        raise ValueError(
            f"run {run_id} has no scores under s3://{place.bucket}/{folder} but a traffic job's, which is "
            "never a baseline: nothing to accept"
        )
    put_metrics(cloudwatch, namespace, [regressions_datum(profile, e, 0) for e in sorted(evaluations)])
    return {"run": run_id, "accepted": sorted(accepted)}
