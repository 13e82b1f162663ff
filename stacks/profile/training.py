"""The profile's training section: SageMaker training pipelines and Bedrock customization."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from genai_stack.catalog import (
    customization_models,
    image_regions,
    sagemaker_data,
    training_instances,
)
from genai_stack.profile.common import (
    _SCHEDULE,
    _SLUG_SCHEMA,
    S3_PREFIX,
    Slug,
    _Strict,
    located,
    prefixes_overlap,
)
from genai_stack.profile.evaluation import EvaluationGate
from genai_stack.profile.inference import Inference

# --------------------------------------------------------------------------------------------------
# Training and tuning: SageMaker training pipelines, the model registry, inference endpoints, Bedrock
# model customization


# `<profile>-<name>` prefixes job, model package group and custom model names, which SageMaker and
# Bedrock limit to 63 characters including the run suffix the pipelines append.
NAME_PREFIX_LIMIT = 50


class TrainingMetric(_Strict):
    """The metric the evaluation step reads from the training job and compares with `threshold`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_:.-]{1,255}$", description="e.g. 'eval:loss'")
    regex: str = Field(
        min_length=1, max_length=500, description="SageMaker metric definition: captures the value in the log"
    )
    threshold: float
    goal: Literal["minimize", "maximize"] = "minimize"

    @field_validator("regex")
    @classmethod
    def _one_group(cls, regex: str) -> str:
        try:
            groups = re.compile(regex).groups
        except re.error as error:
            raise ValueError(f"is not a regular expression ({error})") from None
        if groups != 1:
            raise ValueError("needs exactly one capturing group (the metric value)")
        return regex


class SpotTraining(_Strict):
    """Managed spot training: cheaper, interruptible; the job checkpoints to the artifacts bucket."""

    max_wait_hours: float = Field(gt=0, le=672, description="wait for spot capacity plus run time")


def _training_type_problems(instance_type: str) -> list[str]:
    if instance_type in training_instances():
        return []
    known = ", ".join(sorted(training_instances()))
    return [located("instance_type", f"{instance_type!r} is not a known training type (known: {known})")]


class ImageEvaluation(_Strict):
    """A second SageMaker job after training: the candidate generates images for held-out captions and
    the job prints image metrics (e.g. CLIP score and FID against the held-out photos), each of
    which must meet its threshold before the model is registered (docs/profiles/product-imagery.md)."""

    entry_point: str = Field(
        pattern=r"^[A-Za-z0-9._/-]+\.py$", description="evaluation script in the pipeline's sourcedir"
    )
    holdout_prefix: str = Field(
        pattern=S3_PREFIX,
        description="data bucket prefix of the held-out photos and captions (channel 'holdout'); "
        "never under the training data prefix",
    )
    weights_prefix: str = Field(
        pattern=S3_PREFIX,
        description="data bucket prefix of the weights the evaluation's metrics load offline, such as CLIP "
        "and the FID Inception network (channel 'weights'); the candidate itself is the 'model' channel",
    )
    instance_type: str
    volume_gb: int = Field(default=100, ge=30, le=16_384)
    max_runtime_hours: float = Field(default=2, gt=0, le=72)
    metrics: list[TrainingMetric] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _checks(self) -> ImageEvaluation:
        problems = _training_type_problems(self.instance_type)
        names = [m.name for m in self.metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(located("metrics", f"names {', '.join(map(repr, repeated))} more than once"))
        if prefixes_overlap(self.holdout_prefix, self.weights_prefix):
            problems.append(
                located(
                    "weights_prefix",
                    f"{self.weights_prefix!r} overlaps holdout_prefix {self.holdout_prefix!r}",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class TrainingPipeline(_Strict):
    """A Step Functions pipeline: train (SageMaker) -> evaluate -> register in the model registry."""

    name: Slug
    image: Literal["pytorch-training", "huggingface-training"] = Field(
        default="pytorch-training",
        description="Deep Learning Container (stacks/data/sagemaker.json): PyTorch, or Hugging Face with "
        "transformers, diffusers and peft",
    )
    source_key: str = Field(
        pattern=r"^code/[A-Za-z0-9._/-]+\.tar\.gz$",
        description="training code in the artifacts bucket (sourcedir.tar.gz with the entry point)",
    )
    entry_point: str = Field(pattern=r"^[A-Za-z0-9._/-]+\.py$")
    data_prefix: str = Field(pattern=S3_PREFIX, description="the 'train' channel in the data bucket")
    instance_type: str
    instance_count: int = Field(default=1, ge=1, le=16)
    volume_gb: int = Field(default=100, ge=30, le=16_384)
    max_runtime_hours: float = Field(default=24, gt=0, le=672)
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,256}$")], str] = Field(
        default_factory=dict, max_length=100
    )
    spot: SpotTraining | None = None
    network_isolation: bool = Field(default=True, description="no network access from the training container")
    metric: TrainingMetric
    schedule: str | None = Field(default=None, pattern=_SCHEDULE, description="periodic retraining")
    # A list since one model can be served by several endpoints (custom-model: real-time and async);
    # a single name, the earlier form, is still read as a list of one.
    deploy_to: Annotated[
        tuple[Slug, ...],
        BeforeValidator(lambda value: [value] if isinstance(value, str) else value),
        WithJsonSchema(
            {
                "anyOf": [_SLUG_SCHEMA, {"type": "array", "items": _SLUG_SCHEMA, "uniqueItems": True}],
                "description": "endpoints of the inference section to roll on approval (a name or a list)",
            }
        ),
    ] = ()
    evaluation_gate: EvaluationGate | None = Field(
        default=None, description="judge the candidate on a set before it is registered (docs/evaluation.md)"
    )
    image_evaluation: ImageEvaluation | None = Field(
        default=None,
        description="image metrics of the candidate on a held-out set, each with a threshold, before it is "
        "registered (image models)",
    )

    @model_validator(mode="after")
    def _checks(self) -> TrainingPipeline:
        problems = _training_type_problems(self.instance_type)
        repeated = sorted({e for e in self.deploy_to if self.deploy_to.count(e) > 1})
        if repeated:
            problems.append(located("deploy_to", f"names {', '.join(map(repr, repeated))} more than once"))
        if self.image_evaluation is not None:
            holdout = self.image_evaluation.holdout_prefix
            if prefixes_overlap(holdout, self.data_prefix):
                problems.append(
                    located(
                        "image_evaluation.holdout_prefix",
                        f"{holdout!r} overlaps data_prefix {self.data_prefix!r}: the training job would read "
                        "the held-out photos, which would then not be held out",
                    )
                )
            if self.evaluation_gate is not None:
                problems.append(
                    located(
                        "image_evaluation",
                        "cannot be combined with evaluation_gate (a judge scores text answers)",
                    )
                )
        if self.spot is not None and self.spot.max_wait_hours < self.max_runtime_hours:
            problems.append(
                located(
                    "spot.max_wait_hours",
                    f"{self.spot.max_wait_hours:g} is below max_runtime_hours ({self.max_runtime_hours:g})",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class BedrockCustomization(_Strict):
    """A Bedrock model customization job run by a state machine, then made callable (or not)."""

    name: Slug
    base_model: str = Field(description="customizable base model id, e.g. amazon.nova-micro-v1:0:128k")
    kind: Literal["FINE_TUNING", "CONTINUED_PRE_TRAINING"] = "FINE_TUNING"
    data_prefix: str = Field(
        pattern=S3_PREFIX,
        description="data bucket prefix holding train.jsonl (and validation.jsonl if used)",
    )
    validation_data: bool = Field(default=False, description="also pass <prefix>validation.jsonl")
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], str] = Field(
        default_factory=dict, max_length=20
    )
    serving: Literal["none", "on_demand", "provisioned"] = Field(
        default="none",
        description="provisioned throughput is a fixed hourly cost for as long as it exists",
    )
    model_units: int = Field(default=1, ge=1, le=10, description="provisioned throughput model units")
    schedule: str | None = Field(default=None, pattern=_SCHEDULE)


class Training(_Strict):
    """The training-and-tuning approach: SageMaker training pipelines and Bedrock customization."""

    pipelines: list[TrainingPipeline] = Field(default_factory=list, max_length=10)
    customizations: list[BedrockCustomization] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _some(self) -> Training:
        if not self.pipelines and not self.customizations:
            raise ValueError("needs at least one of pipelines or customizations")
        names = [p.name for p in self.pipelines] + [c.name for c in self.customizations]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names {', '.join(duplicates)} more than once (pipelines and customizations)")
        return self


def training_problems(training: Training, inference: Inference | None, region: str | None) -> list[str]:
    """Cross-section checks: images and base models offered in the region, deploy_to endpoints exist."""
    problems = []
    endpoints = {e.name for e in inference.endpoints} if inference else set()
    by_name = {e.name: e for e in inference.endpoints} if inference else {}
    for index, pipeline in enumerate(training.pipelines):
        where = f"pipelines[{index}]"
        if region and region not in image_regions(pipeline.image):
            problems.append(located(f"{where}.image", f"{pipeline.image!r} is not published in {region}"))
        for position, name in enumerate(pipeline.deploy_to):
            field = f"{where}.deploy_to[{position}]"
            target = by_name.get(name)
            if target is None:
                known = ", ".join(sorted(endpoints)) or "none: add an inference section"
                problems.append(located(field, f"{name!r} is not an inference endpoint ({known})"))
            elif target.inference_components:
                # Asynchronous endpoints are rolled like real-time ones (one variant holding the model,
                # UpdateEndpoint). docs/profiles/custom-model.md, "Rollouts", says why not components.
                problems.append(
                    located(
                        field,
                        f"{name!r} is an inference-component endpoint; approved models are rolled "
                        "out to real-time and asynchronous endpoints only: an inference-component endpoint's "
                        "configuration holds no model (UpdateEndpoint cannot change it), the model is a "
                        "property of the AWS::SageMaker::InferenceComponent that CloudFormation owns, so a "
                        "later deploy would put the stack's model back",
                    )
                )
        containers = sorted({by_name[n].container for n in pipeline.deploy_to if n in by_name})
        if len(containers) > 1:
            # A model version registers one serving image (the package's container), which every
            # endpoint it is rolled to runs.
            problems.append(
                located(
                    f"{where}.deploy_to",
                    f"endpoints with different containers ({', '.join(containers)}); each approved version "
                    "registers one serving image, so the endpoints of one pipeline share a container",
                )
            )
    # One owner per endpoint: the deployer rolls an endpoint to the approved versions of one group.
    owners: dict[str, list[str]] = {}
    for pipeline in training.pipelines:
        for name in pipeline.deploy_to:
            owners.setdefault(name, []).append(pipeline.name)
    for name, pipelines in sorted(owners.items()):
        if len(pipelines) > 1:
            problems.append(
                located(
                    "pipelines",
                    f"endpoint {name!r} is a deploy_to target of {', '.join(pipelines)}; an endpoint "
                    "serves the approved versions of one pipeline",
                )
            )
    offered = customization_models(region) if region else {}
    on_demand = sagemaker_data()["on_demand_deployment"]
    for index, job in enumerate(training.customizations):
        where = f"customizations[{index}]"
        if job.base_model not in offered:
            known = ", ".join(sorted(offered)) or "none"
            problems.append(
                located(
                    f"{where}.base_model",
                    f"{job.base_model!r} cannot be customized in {region} (can: {known})",
                )
            )
        elif job.kind not in offered[job.base_model]:
            problems.append(
                located(
                    f"{where}.kind",
                    f"{job.kind} is not offered for {job.base_model} "
                    f"(offered: {', '.join(offered[job.base_model])})",
                )
            )
        if job.serving == "on_demand" and (
            region not in on_demand["regions"] or job.base_model not in on_demand["base_models"]
        ):
            problems.append(
                located(
                    f"{where}.serving",
                    "on_demand deployment of custom models is offered for "
                    f"{', '.join(on_demand['base_models'])} in {', '.join(on_demand['regions'])}; "
                    "use provisioned or none",
                )
            )
    return problems
