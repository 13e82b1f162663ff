"""The evaluation step of a training pipeline: the rule (minimize / maximize, the threshold itself
passes), a missing or non-finite metric (a failed evaluation, not a crash) and the handler contract
with the state machine (input: the createTrainingJob.sync result; output: what Register reads)."""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import pytest

from lambdas.training_evaluation import handler
from lambdas.training_evaluation.logic import (
    METADATA_KEY_MAX,
    METADATA_MAX_ENTRIES,
    METADATA_VALUE_MAX,
    MetricRule,
    combine,
    evaluate,
    evaluate_images,
    final_metrics,
)

LOSS = MetricRule(name="eval:loss", threshold=1.5, goal="minimize")
ACCURACY = MetricRule(name="eval:accuracy", threshold=0.8, goal="maximize")
JOB = "demo-support-tuning-0123456789abcdef0123456789abcdef"
# CreateModelPackage CustomerMetadataProperties keys and values: [\p{L}\p{Z}\p{N}_.:/=+\-@]*
# (ASCII subset: what our names and numbers use).
METADATA_TEXT = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]+$")

# What createTrainingJob.sync returns: the final DescribeTrainingJob response (abridged).
DESCRIPTION = {
    "TrainingJobName": JOB,
    "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
    "TrainingJobStatus": "Completed",
    "SecondaryStatus": "Completed",
    "ModelArtifacts": {
        "S3ModelArtifacts": f"s3://artifacts-bucket/training/support-tuning/output/{JOB}/output/model.tar.gz"
    },
    "AlgorithmSpecification": {
        "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-gpu-py313-cu130-ubuntu22.04-sagemaker",
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "eval:loss", "Regex": "eval_loss=([0-9.]+)"}],
    },
    "HyperParameters": {"epochs": '"3"', "sagemaker_program": '"train.py"'},
    "FinalMetricDataList": [
        {"MetricName": "eval:loss", "Value": 1.2, "Timestamp": "2026-11-23T10:00:00.000Z"},
        {"MetricName": "train:loss", "Value": 0.9, "Timestamp": "2026-11-23T10:00:00.000Z"},
    ],
    "EnableNetworkIsolation": True,
    "EnableManagedSpotTraining": True,
    "BillableTimeInSeconds": 1200,
}
RULE = {"name": "eval:loss", "threshold": 1.5, "goal": "minimize"}


def metrics(**values: float) -> list[dict]:
    return [{"MetricName": name.replace("_", ":"), "Value": value} for name, value in values.items()]


# --- logic -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "passed"),
    [
        (LOSS, 1.2, True),
        (LOSS, 1.8, False),
        (LOSS, 1.5, True),  # equal to the threshold: the worst acceptable value passes
        (ACCURACY, 0.9, True),
        (ACCURACY, 0.7, False),
        (ACCURACY, 0.8, True),  # equal passes for maximize too
    ],
)
def test_the_goal_decides_the_direction_and_the_threshold_itself_passes(rule, value, passed):
    result = evaluate(rule, [{"MetricName": rule.name, "Value": value}], JOB)
    assert result.passed is passed
    assert result.metric == value
    assert ("meets" if passed else "misses") in result.reason
    assert ("<=" if rule.goal == "minimize" else ">=") in result.reason


def test_a_missing_metric_fails_with_a_reason_naming_what_was_reported():
    result = evaluate(LOSS, metrics(train_loss=0.9, train_accuracy=0.7), JOB)
    assert result.passed is False
    assert result.metric is None
    assert "'eval:loss'" in result.reason
    assert "train:accuracy, train:loss" in result.reason
    assert JOB in result.reason
    assert result.customer_metadata["evaluation-value"] == "missing"


def test_no_metric_at_all_fails_too():
    result = evaluate(ACCURACY, [], JOB)
    assert result.passed is False
    assert "metrics reported: none" in result.reason


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_value_that_is_not_a_finite_number_fails(value):
    result = evaluate(LOSS, [{"MetricName": "eval:loss", "Value": value}], JOB)
    assert result.passed is False
    assert result.metric is None
    assert "not a finite number" in result.reason


def test_the_last_reported_value_counts_and_malformed_entries_are_ignored():
    data = [
        {"MetricName": "eval:loss", "Value": 2.0},
        {"MetricName": "eval:loss", "Value": 1.0},
        {"MetricName": "eval:loss"},
        {"Value": 3.0},
        {"MetricName": "flag", "Value": True},
    ]
    assert final_metrics(data) == {"eval:loss": 1.0}
    assert evaluate(LOSS, data, JOB).passed is True


def test_customer_metadata_records_the_rule_the_value_the_job_and_every_final_metric():
    result = evaluate(LOSS, metrics(eval_loss=1.2, train_loss=0.9), JOB)
    assert result.customer_metadata == {
        "evaluation-metric": "eval:loss",
        "evaluation-goal": "minimize",
        "evaluation-threshold": "1.5",
        "evaluation-value": "1.2",
        "training-job": JOB,
        "metric:eval:loss": "1.2",
        "metric:train:loss": "0.9",
    }


def test_customer_metadata_stays_within_create_model_package_limits():
    many = [{"MetricName": f"m{i:03d}:{'x' * 140}", "Value": i / 3} for i in range(80)]
    many += [{"MetricName": f"short{i:02d}", "Value": 1e-7 * i} for i in range(60)]
    result = evaluate(LOSS, many, "j" * 300)
    entries = result.customer_metadata
    assert len(entries) == METADATA_MAX_ENTRIES  # the five evaluation entries and 45 short metric names
    assert "metric:short00" in entries
    for key, value in entries.items():
        assert 1 <= len(key) <= METADATA_KEY_MAX
        assert 1 <= len(value) <= METADATA_VALUE_MAX
        assert METADATA_TEXT.match(key), key
        assert METADATA_TEXT.match(value), value


# --- handler ---------------------------------------------------------------------------------------


@pytest.fixture
def context():
    return SimpleNamespace(
        function_name="evaluation",
        function_version="$LATEST",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:evaluation",
        aws_request_id="req-1",
    )


def test_the_handler_returns_what_the_register_state_reads(context):
    result = handler.on_event({"training": DESCRIPTION, "rule": RULE}, context)
    assert result["passed"] is True
    assert result["metric"] == 1.2
    assert result["model_data_url"] == DESCRIPTION["ModelArtifacts"]["S3ModelArtifacts"]
    assert result["training_image"] == DESCRIPTION["AlgorithmSpecification"]["TrainingImage"]
    assert result["training_job_name"] == JOB
    assert result["customer_metadata"]["evaluation-value"] == "1.2"
    assert "eval:loss = 1.2 meets the threshold" in result["reason"]


def test_a_job_without_final_metrics_is_a_failed_evaluation_not_an_error(context):
    training = copy.deepcopy(DESCRIPTION)
    del training["FinalMetricDataList"]
    result = handler.on_event({"training": training, "rule": RULE}, context)
    assert result["passed"] is False
    assert result["metric"] is None
    assert "reported no final value for metric 'eval:loss'" in result["reason"]


def test_a_metric_above_the_threshold_fails_the_evaluation(context):
    rule = {**RULE, "threshold": 1.0}
    result = handler.on_event({"training": DESCRIPTION, "rule": rule}, context)
    assert result["passed"] is False
    assert "misses the threshold (minimize: <= 1)" in result["reason"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["training"].pop("ModelArtifacts"), "training.ModelArtifacts"),
        (lambda e: e["training"]["ModelArtifacts"].update(S3ModelArtifacts="not-s3"), "S3ModelArtifacts"),
        (lambda e: e["training"].pop("AlgorithmSpecification"), "training.AlgorithmSpecification"),
        (lambda e: e["rule"].update(goal="lowest"), "rule.goal"),
        (lambda e: e.pop("rule"), "rule"),
    ],
)
def test_a_malformed_request_is_an_error_naming_the_field(context, change, message):
    event = {"training": copy.deepcopy(DESCRIPTION), "rule": dict(RULE)}
    change(event)
    with pytest.raises(ValueError, match="not a training evaluation request") as caught:
        handler.on_event(event, context)
    assert message in str(caught.value)


# --- image evaluation ------------------------------------------------------------------------------

CLIP = MetricRule(name="clip_score", threshold=30, goal="maximize")
FID = MetricRule(name="fid", threshold=60, goal="minimize")
IMAGE_JOB = "demo-brand-sdxl-fedcba9876543210fedcba9876543210"
IMAGES = {
    **copy.deepcopy(DESCRIPTION),
    "TrainingJobName": IMAGE_JOB,
    "ModelArtifacts": {
        "S3ModelArtifacts": f"s3://artifacts-bucket/training/brand-sdxl/output/{IMAGE_JOB}/output/model.tar.gz"
    },
    "FinalMetricDataList": [
        {"MetricName": "clip_score", "Value": 31.5, "Timestamp": "2026-12-02T10:00:00.000Z"},
        {"MetricName": "fid", "Value": 48.25, "Timestamp": "2026-12-02T10:00:00.000Z"},
    ],
}


def image_metrics(**values: float) -> list[dict]:
    return [{"MetricName": name, "Value": value} for name, value in values.items()]


IMAGE_RULES = [
    {"name": "clip_score", "threshold": 30, "goal": "maximize"},
    {"name": "fid", "threshold": 60, "goal": "minimize"},
]


def test_every_image_metric_must_meet_its_threshold():
    passed = evaluate_images([CLIP, FID], image_metrics(clip_score=31.5, fid=48.25), IMAGE_JOB)
    assert passed.passed is True
    assert passed.reason == (
        f"image evaluation job {IMAGE_JOB}: clip_score = 31.5 (wanted >= 30); fid = 48.25 (wanted <= 60)"
    )
    assert passed.customer_metadata == {
        "image-evaluation-job": IMAGE_JOB,
        "image:clip_score": "31.5",
        "image:fid": "48.25",
    }
    one_miss = evaluate_images([CLIP, FID], image_metrics(clip_score=31.5, fid=75), IMAGE_JOB)
    assert one_miss.passed is False
    assert "fid = 75 (wanted <= 60)" in one_miss.reason
    assert "met: clip_score = 31.5" in one_miss.reason


def test_a_missing_or_infinite_image_metric_fails_and_says_which():
    result = evaluate_images([CLIP, FID], [{"MetricName": "fid", "Value": float("inf")}], IMAGE_JOB)
    assert result.passed is False
    assert "clip_score not reported, wanted >= 30" in result.reason
    assert "fid inf (not a finite number), wanted <= 60" in result.reason
    assert result.customer_metadata["image:clip_score"] == "missing"


def test_the_combined_verdict_needs_both_and_keeps_the_image_entries_within_the_limit():
    training = evaluate(
        LOSS, [{"MetricName": f"m{i}", "Value": i} for i in range(60)] + metrics(eval_loss=1.0), JOB
    )
    images = evaluate_images([CLIP, FID], image_metrics(clip_score=10, fid=40), IMAGE_JOB)
    both = combine(training, images)
    assert training.passed is True
    assert both.passed is False
    assert len(both.customer_metadata) == METADATA_MAX_ENTRIES
    assert both.customer_metadata["image:clip_score"] == "10"
    assert both.customer_metadata["evaluation-value"] == "1"
    assert both.reason.startswith("eval:loss = 1 meets the threshold")
    assert "clip_score = 10" in both.reason
    assert combine(training, evaluate_images([CLIP], image_metrics(clip_score=40), IMAGE_JOB)).passed is True


def test_the_handler_registers_only_when_the_images_pass_too(context):
    event = {"training": DESCRIPTION, "rule": RULE, "images": IMAGES, "image_rules": IMAGE_RULES}
    result = handler.on_event(copy.deepcopy(event), context)
    assert result["passed"] is True
    assert result["model_data_url"] == DESCRIPTION["ModelArtifacts"]["S3ModelArtifacts"]  # the candidate
    assert result["customer_metadata"]["image:fid"] == "48.25"
    assert result["customer_metadata"]["image-evaluation-job"] == IMAGE_JOB
    event["image_rules"][1]["threshold"] = 40
    result = handler.on_event(copy.deepcopy(event), context)
    assert result["passed"] is False
    assert "fid = 48.25 (wanted <= 40)" in result["reason"]


def test_images_without_rules_or_rules_without_images_are_a_wiring_error(context):
    with pytest.raises(ValueError, match="images and image_rules come together"):
        handler.on_event({"training": DESCRIPTION, "rule": RULE, "images": IMAGES}, context)
    with pytest.raises(ValueError, match="images and image_rules come together"):
        handler.on_event({"training": DESCRIPTION, "rule": RULE, "image_rules": IMAGE_RULES}, context)
