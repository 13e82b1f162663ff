"""Reading a Bedrock evaluation job's output: per-prompt scores into mean scores per metric and per
category and language, compared with the last accepted run, as metrics and a Markdown report.

Where the output is (Amazon Bedrock user guide, "Review model evaluation job reports and metrics in
Amazon S3": https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-report-s3.html):
`<output prefix>/<job name>/<job id>/models/<model>/taskTypes/<task type>/datasets/<dataset>/
<file id>_output.jsonl`, one JSON object a line:

    {"automatedEvaluationResult": {"scores": [{"metricName": "Accuracy", "result": 0.319}]},
     "inputRecord": {"prompt": "...", "referenceResponse": "...", "category": "..."},
     "modelResponses": [{"modelIdentifier": "...", "response": "..."}]}

The page documents no summary file: the means are computed here. Judge metrics have been seen with a
`Builtin.` prefix, a null `result` (the judge gave no score) and `evaluatorDetails`; knowledge-base
jobs with the scores per conversation turn (`conversationTurns[].results[]`). All are read; a null is
counted as unscored, never as 0.

A row's `category` is written `<category>|<language>` by the dataset writer (CATEGORY_SEPARATOR), so
both become metric dimensions.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CATEGORY_SEPARATOR = "|"
ALL = "all"  # the category and language of the overall mean


def bedrock_category(category: str, language: str) -> str:
    """The dataset's `category` for a row (read back by `split_category`)."""
    return f"{category}{CATEGORY_SEPARATOR}{language}"


def split_category(value: str | None) -> tuple[str, str]:
    if not value:
        return "general", "und"
    category, _, language = value.partition(CATEGORY_SEPARATOR)
    return category or "general", language or "und"


def metric_name(name: str) -> str:
    """`Builtin.Correctness` and `Correctness` are the same metric."""
    return name.removeprefix("Builtin.")


@dataclass
class Scores:
    """Scores of one job: per (metric, category, language), the sum and count of the scored rows, and
    the rows a metric left unscored."""

    sums: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    unscored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rows: int = 0

    def add(self, metric: str, category: str, language: str, value: object) -> None:
        name = metric_name(metric)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.unscored[name] += 1
            return
        for key in ((name, category, language), (name, category, ALL), (name, ALL, ALL)):
            self.sums[key] += float(value)
            self.counts[key] += 1

    def mean(self, metric: str, category: str = ALL, language: str = ALL) -> float | None:
        key = (metric_name(metric), category, language)
        return self.sums[key] / self.counts[key] if self.counts.get(key) else None

    @property
    def metrics(self) -> list[str]:
        return sorted({m for m, _, _ in self.counts} | set(self.unscored))

    def overall(self) -> dict[str, float]:
        return {m: mean for m in self.metrics if (mean := self.mean(m)) is not None}


class OutputError(ValueError):
    """An output line that is not what AWS documents (its file and line are in the message)."""


def read_output(lines: Iterable[str], *, source: str, scores: Scores | None = None) -> Scores:
    """Add one `_output.jsonl` file's lines to `scores` (a new Scores without one)."""
    scores = scores if scores is not None else Scores()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise OutputError(f"{source}:{number}: not JSON") from None
        if not isinstance(record, dict):
            raise OutputError(f"{source}:{number}: not a JSON object")
        found = False
        category, language = split_category((record.get("inputRecord") or {}).get("category"))
        automated = record.get("automatedEvaluationResult")
        listed = list((automated.get("scores") or []) if isinstance(automated, dict) else [])
        for turn in record.get("conversationTurns") or []:  # knowledge-base (RAG) jobs
            listed += turn.get("results") or [] if isinstance(turn, dict) else []
        for score in listed:
            if not isinstance(score, dict) or not isinstance(score.get("metricName"), str):
                raise OutputError(f"{source}:{number}: a score without a metricName")
            scores.add(score["metricName"], category, language, score.get("result"))
            found = True
        if not found:
            raise OutputError(f"{source}:{number}: holds no scores (automatedEvaluationResult.scores)")
        scores.rows += 1
    return scores


@dataclass(frozen=True)
class Drop:
    metric: str
    accepted: float
    now: float

    @property
    def by(self) -> float:
        return self.accepted - self.now


def drops(current: Mapping[str, float], accepted: Mapping[str, float], tolerance: float) -> list[Drop]:
    """The metrics whose mean fell more than `tolerance` below the accepted run's. A metric the
    accepted run did not have, or a run without an accepted one, drops nothing. For the metrics of
    LOWER_IS_BETTER a rise is the drop."""
    found = []
    for metric, now in sorted(current.items()):
        before = accepted.get(metric)
        if before is None:
            continue
        worse = now - before if metric in LOWER_IS_BETTER else before - now
        if worse > tolerance + 1e-12:
            found.append(Drop(metric, before, now))
    return found


# Scores where more is worse. Harmfulness, Stereotyping, Toxicity: a higher score is more of it.
# Robustness: the change in the answers' quality when the prompt is perturbed (word error rate, or the
# change in F1 or BERTScore), lower for a more robust model (Amazon Bedrock user guide, "Review metrics
# for an automated model evaluation job"). Refusal: how evasive the answers are, higher for more
# refusals (a policy choice: for a set of prompts that should be refused, leave Refusal out).
LOWER_IS_BETTER = frozenset({"Harmfulness", "Stereotyping", "Toxicity", "Robustness", "Refusal"})


def report(
    *,
    job: str,
    target: str,
    scores: Scores,
    accepted: Mapping[str, float] | None,
    tolerance: float,
) -> str:
    """The run's Markdown report: means per metric against the accepted run, then per category and
    language, and the unscored rows."""
    lines = [
        f"# Evaluation {job}",
        "",
        f"Evaluated: {target}; rows: {scores.rows}; tolerance: {tolerance:g}",
        "",
        "| Metric | Mean | Accepted | Change | Verdict |",
        "|---|---:|---:|---:|---|",
    ]
    fallen = {d.metric for d in drops(scores.overall(), accepted or {}, tolerance)}
    for metric, mean in scores.overall().items():
        before = (accepted or {}).get(metric)
        change = f"{mean - before:+.3f}" if before is not None else "-"
        verdict = "DROP" if metric in fallen else ("new" if before is None else "ok")
        shown = f"{before:.3f}" if before is not None else "-"
        lines.append(f"| {metric} | {mean:.3f} | {shown} | {change} | {verdict} |")
    lines += ["", "| Metric | Category | Language | Mean | Rows |", "|---|---|---|---:|---:|"]
    for (metric, category, language), count in sorted(scores.counts.items()):
        if ALL in (category, language):
            continue
        mean = scores.sums[(metric, category, language)] / count
        lines.append(f"| {metric} | {category} | {language} | {mean:.3f} | {count} |")
    if scores.unscored:
        lines += ["", "Unscored (the judge returned no score): " + ", ".join(
            f"{metric} {count}" for metric, count in sorted(scores.unscored.items())
        )]  # fmt: skip
    return "\n".join(lines) + "\n"
