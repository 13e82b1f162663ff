"""Lambda entry point: the evaluation step of a SageMaker training pipeline (Step Functions task).

Input (from the state machine): {"training": <the createTrainingJob.sync result, i.e. the final
DescribeTrainingJob response>, "rule": {"name", "threshold", "goal"}}, and for pipelines with an
image evaluation "images" (the evaluation job's description) and "image_rules" (one rule per image
metric; all must pass). Output: {passed, metric,
reason, customer_metadata, model_data_url, training_image, training_job_name}; the state machine
registers the model when `passed` is true and fails the execution with `reason` otherwise.

A training description without the fields a completed job always has (name, model artifacts,
image) is a wiring error and raises ValueError: the state machine's catch turns it into a failed
execution. A missing metric is not an error but a failed evaluation.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import MetricRule, combine, evaluate, evaluate_images

logger = Logger(service="training-evaluation")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    threshold: float
    goal: Literal["minimize", "maximize"]


class _Artifacts(BaseModel):
    s3_model_artifacts: str = Field(alias="S3ModelArtifacts", pattern=r"^s3://\S+$")


class _Algorithm(BaseModel):
    training_image: str = Field(alias="TrainingImage", min_length=1)


class _Metric(BaseModel):
    name: str = Field(alias="MetricName")
    value: float = Field(alias="Value")


class _Training(BaseModel):
    """The fields used from DescribeTrainingJob (the rest of the description is ignored)."""

    job_name: str = Field(alias="TrainingJobName", min_length=1)
    artifacts: _Artifacts = Field(alias="ModelArtifacts")
    algorithm: _Algorithm = Field(alias="AlgorithmSpecification")
    final_metrics: list[_Metric] = Field(default_factory=list, alias="FinalMetricDataList")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    training: _Training
    rule: _Rule
    # The image evaluation job's description and its rules (pipelines with image_evaluation).
    images: _Training | None = None
    image_rules: list[_Rule] = Field(default_factory=list, max_length=10)


def _metric_data(job: _Training) -> list[dict[str, object]]:
    return [{"MetricName": m.name, "Value": m.value} for m in job.final_metrics]


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        request = _Event.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"not a training evaluation request: {problems}") from None
    training, rule = request.training, request.rule
    logger.append_keys(training_job=training.job_name)
    result = evaluate(
        MetricRule(name=rule.name, threshold=rule.threshold, goal=rule.goal),
        _metric_data(training),
        training.job_name,
    )
    if (request.images is None) != (not request.image_rules):
        raise ValueError("not a training evaluation request: images and image_rules come together")
    if request.images is not None:
        rules = [MetricRule(name=r.name, threshold=r.threshold, goal=r.goal) for r in request.image_rules]
        result = combine(
            result, evaluate_images(rules, _metric_data(request.images), request.images.job_name)
        )
    logger.info("training job evaluated", extra={"passed": result.passed, "reason": result.reason})
    return {
        "passed": result.passed,
        "metric": result.metric,
        "reason": result.reason,
        "customer_metadata": result.customer_metadata,
        "model_data_url": training.artifacts.s3_model_artifacts,
        "training_image": training.algorithm.training_image,
        "training_job_name": training.job_name,
    }
