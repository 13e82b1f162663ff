"""Evaluation of a finished SageMaker training job against the pipeline's metric rule (pure logic).

The rule: the job's final value of metric `name` must be at most `threshold` (goal "minimize") or at
least `threshold` (goal "maximize"). The threshold itself passes: it is the worst acceptable value,
so `value == threshold` is a pass for both goals. A metric the job did not emit, or a value that is
not a finite number, fails with a reason (the model is not registered) instead of raising.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Goal = Literal["minimize", "maximize"]

# CreateModelPackage CustomerMetadataProperties: at most 50 entries, keys 1-128 and values 1-256
# characters (SageMaker API reference, CreateModelPackage).
METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
# The entries written besides the job's final metrics.
_FIXED_KEYS = ("evaluation-metric", "evaluation-goal", "evaluation-threshold", "evaluation-value",
               "training-job")  # fmt: skip


@dataclass(frozen=True)
class MetricRule:
    name: str
    threshold: float
    goal: Goal


@dataclass(frozen=True)
class Evaluation:
    passed: bool
    metric: float | None
    reason: str
    customer_metadata: dict[str, str] = field(default_factory=dict)


def format_number(value: float) -> str:
    """A metric value as text: up to 10 significant digits, no exponent for everyday values."""
    return f"{value:.10g}"


def passes(value: float, rule: MetricRule) -> bool:
    """Whether a finite `value` meets the rule; equal to the threshold passes."""
    return value <= rule.threshold if rule.goal == "minimize" else value >= rule.threshold


def final_metrics(metric_data: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """FinalMetricDataList ([{MetricName, Value, Timestamp}]) as {name: value}; the last entry wins."""
    values: dict[str, float] = {}
    for item in metric_data:
        name, value = item.get("MetricName"), item.get("Value")
        if isinstance(name, str) and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
    return values


def customer_metadata(
    rule: MetricRule, metrics: Mapping[str, float], job_name: str, value: float | None
) -> dict[str, str]:
    """The model package's CustomerMetadataProperties: the rule, the verdict's value, the job and the
    job's final metrics as `metric:<name>` (within CreateModelPackage's limits)."""
    entries = {
        "evaluation-metric": rule.name,
        "evaluation-goal": rule.goal,
        "evaluation-threshold": format_number(rule.threshold),
        "evaluation-value": "missing" if value is None else format_number(value),
        "training-job": job_name,
    }
    room = METADATA_MAX_ENTRIES - len(_FIXED_KEYS)
    fitting = [name for name in sorted(metrics) if len(f"metric:{name}") <= METADATA_KEY_MAX]
    for name in fitting[:room]:
        entries[f"metric:{name}"] = format_number(metrics[name])
    return {key: text[:METADATA_VALUE_MAX] for key, text in entries.items()}


def evaluate(rule: MetricRule, metric_data: Sequence[Mapping[str, object]], job_name: str) -> Evaluation:
    """The verdict on one training job's FinalMetricDataList."""
    metrics = final_metrics(metric_data)
    value = metrics.get(rule.name)
    comparison = "<=" if rule.goal == "minimize" else ">="
    if value is None:
        emitted = ", ".join(sorted(metrics)) or "none"
        reason = (
            f"training job {job_name} reported no final value for metric {rule.name!r} "
            f"(metrics reported: {emitted}); check the metric regex against the training log"
        )
        return Evaluation(False, None, reason, customer_metadata(rule, metrics, job_name, None))
    if not math.isfinite(value):
        reason = f"{rule.name} = {value} is not a finite number (training job {job_name})"
        return Evaluation(False, None, reason, customer_metadata(rule, metrics, job_name, None))
    verdict = passes(value, rule)
    reason = (
        f"{rule.name} = {format_number(value)} {'meets' if verdict else 'misses'} the threshold "
        f"({rule.goal}: {comparison} {format_number(rule.threshold)}), training job {job_name}"
    )
    return Evaluation(verdict, value, reason, customer_metadata(rule, metrics, job_name, value))


def evaluate_images(
    rules: Sequence[MetricRule], metric_data: Sequence[Mapping[str, object]], job_name: str
) -> Evaluation:
    """The verdict on an image evaluation job: every rule must pass (each metric reported, finite and
    within its threshold). The reason names each metric's value and threshold, or what is missing."""
    metrics = final_metrics(metric_data)
    verdicts, failures, entries = [], [], {"image-evaluation-job": job_name}
    for rule in rules:
        value = metrics.get(rule.name)
        comparison = "<=" if rule.goal == "minimize" else ">="
        wanted = f"{comparison} {format_number(rule.threshold)}"
        if value is None or not math.isfinite(value):
            shown = "not reported" if value is None else f"{value} (not a finite number)"
            failures.append(f"{rule.name} {shown}, wanted {wanted}")
            entries[f"image:{rule.name}"] = "missing"
            continue
        entries[f"image:{rule.name}"] = format_number(value)
        text = f"{rule.name} = {format_number(value)} (wanted {wanted})"
        (verdicts if passes(value, rule) else failures).append(text)
    if failures:
        emitted = ", ".join(sorted(metrics)) or "none"
        reason = f"image evaluation job {job_name}: {'; '.join(failures)} (metrics reported: {emitted})" + (
            f"; met: {'; '.join(verdicts)}" if verdicts else ""
        )
        return Evaluation(False, None, reason, _bounded(entries))
    return Evaluation(
        True, None, f"image evaluation job {job_name}: {'; '.join(verdicts)}", _bounded(entries)
    )


def _bounded(entries: Mapping[str, str]) -> dict[str, str]:
    return {key[:METADATA_KEY_MAX]: text[:METADATA_VALUE_MAX] for key, text in entries.items()}


def combine(training: Evaluation, images: Evaluation) -> Evaluation:
    """The training verdict and the image verdict as one: passed when both passed. The metadata keeps
    every image entry and the training entries that still fit CreateModelPackage's 50; the reason
    (the model version's description, at most 1,024 characters) names both."""
    metadata = dict(images.customer_metadata)
    for key, text in training.customer_metadata.items():
        if len(metadata) >= METADATA_MAX_ENTRIES:
            break
        metadata.setdefault(key, text)
    reason = f"{training.reason}; {images.reason}"
    return Evaluation(training.passed and images.passed, training.metric, reason[:1024], metadata)
