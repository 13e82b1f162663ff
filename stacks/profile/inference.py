"""The profile's inference section: SageMaker endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from genai_stack.catalog import (
    image_regions,
    inference_instances,
    sagemaker_data,
)
from genai_stack.profile.bedrock import DriftMonitoring
from genai_stack.profile.common import Slug, _Strict, located
from genai_stack.profile.hosting import ModelSize, OffHours, sizing_problems


class AsyncInference(_Strict):
    """Asynchronous inference: requests queue, results land in the artifacts bucket (long jobs)."""

    max_concurrent_invocations_per_instance: int = Field(default=1, ge=1, le=1000)


class InferenceEndpoint(_Strict):
    """A SageMaker endpoint serving a model from the artifacts bucket with the matching container."""

    name: Slug
    instance_type: str
    container: Literal["lmi", "tgi", "lmi-neuron", "diffusers"] = Field(
        description="LMI (DJL Serving + vLLM) or TGI on GPU; LMI with Neuron on Inferentia2; diffusers (the "
        "Hugging Face inference image with the model's own code/inference.py) for image models on GPU"
    )
    model_prefix: str = Field(
        pattern=r"^models/[A-Za-z0-9._-]+/$", description="uncompressed weights in the artifacts bucket"
    )
    min_instances: int = Field(default=1, ge=0, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    invocations_per_instance: int = Field(
        default=10, ge=1, description="target tracking: invocations per instance per minute"
    )
    max_model_len: int = Field(default=4096, ge=128, le=262_144)
    max_num_seqs: int = Field(
        default=8,
        ge=1,
        le=256,
        description="sequences at once (LMI max_rolling_batch_size; on Neuron the compiled batch size)",
    )
    model: ModelSize | None = Field(
        default=None,
        description="the size of the model under model_prefix: with it the validator checks host memory, "
        "accelerator memory and max_model_len against the instance (the built-in profiles give it)",
    )
    data_capture_percentage: int = Field(
        default=20,
        ge=0,
        le=100,
        description="share of requests captured to S3 (0: off); default 0 on inference-component endpoints",
    )
    # SageMaker Model Monitor "is no longer open to new customers" (SageMaker developer guide, "Data
    # capture", https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html, and
    # "Amazon SageMaker Model Monitor availability change"): an explicit opt-in, off by default. Drift is
    # measured by the project's own drift monitor (stacks/components/drift_monitor.py) instead.
    monitoring_schedule: str | None = Field(
        default=None,
        pattern=r"^cron\(\S+( \S+){5}\)$",
        description=(
            "Model Monitor data-quality schedule, e.g. cron(0 * ? * * *); null (default): none. Only for "
            "accounts that already use SageMaker Model Monitor: it is no longer open to new customers"
        ),
    )
    async_inference: AsyncInference | None = None
    inference_components: bool = Field(
        default=False, description="host the model as an inference component (allows scaling to zero)"
    )
    off_hours: OffHours | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_capture_by_default_on_components(cls, data: Any) -> Any:
        """Inference-component endpoints get no data capture unless asked (and asking is refused below)."""
        components = isinstance(data, dict) and data.get("inference_components")
        if components and "data_capture_percentage" not in data:
            return {**data, "data_capture_percentage": 0}
        return data

    @model_validator(mode="after")
    def _checks(self) -> InferenceEndpoint:
        problems = []
        spec = inference_instances().get(self.instance_type)
        if spec is None:
            known = ", ".join(sorted(inference_instances()))
            problems.append(
                located(
                    "instance_type",
                    f"{self.instance_type!r} is not a known ml.g5, ml.g6 or ml.inf2 endpoint type "
                    f"(known: {known})",
                )
            )
        else:
            neuron_container = self.container == "lmi-neuron"
            if (spec.accelerator == "neuron") != neuron_container:
                wanted = "lmi-neuron" if spec.accelerator == "neuron" else "lmi, tgi or diffusers"
                problems.append(
                    located(
                        "container",
                        f"{self.container!r} does not run on {self.instance_type} ({spec.accelerator}); "
                        f"use {wanted}",
                    )
                )
            if self.model is not None and self.container == "diffusers":
                problems.append(
                    located(
                        "model",
                        "sizes a language model (weights, KV cache, max_model_len); a diffusers endpoint "
                        "serves an image model: leave it out",
                    )
                )
            elif self.model is not None:
                fitting = {
                    n: i.memory_gib
                    for n, i in inference_instances().items()
                    if i.accelerator == spec.accelerator and i.memory_gib is not None
                }
                problems += sizing_problems(
                    model=self.model,
                    label=f"the model under {self.model_prefix}",
                    instance_type=self.instance_type,
                    neuron=spec.accelerator == "neuron",
                    accelerator_memory_gb=spec.accelerator_memory_gb,
                    host_memory_gib=spec.memory_gib,
                    max_model_len=self.max_model_len,
                    max_num_seqs=self.max_num_seqs,
                    volume_gb=None,  # SageMaker sizes the ML storage volume of the instance type
                    fitting=fitting,
                )
        if self.min_instances > self.max_instances:
            problems.append(
                located(
                    "min_instances", f"{self.min_instances} is above max_instances ({self.max_instances})"
                )
            )
        scales_to_zero = self.inference_components or self.async_inference is not None
        if self.min_instances == 0 and not scales_to_zero:
            problems.append(
                located(
                    "min_instances",
                    "is 0, which only inference components or asynchronous endpoints allow "
                    "(set inference_components: true or async_inference)",
                )
            )
        if self.off_hours is not None and not scales_to_zero:
            problems.append(
                located(
                    "off_hours",
                    "needs an endpoint that can scale to zero: set inference_components: true "
                    "(or async_inference); a plain endpoint keeps at least one instance",
                )
            )
        if self.inference_components and self.async_inference is not None:
            problems.append(
                located("async_inference", "cannot be combined with inference_components on one endpoint")
            )
        problems += self._monitoring_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _monitoring_problems(self) -> list[str]:
        """What SageMaker does not accept (or AWS does not document) for capture and Model Monitor.

        - Model Monitor "currently supports only endpoints that host a single model" (SageMaker developer
          guide, "Data and model quality monitoring with Amazon SageMaker Model Monitor",
          https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor.html), and its EndpointInput names
          an endpoint only, never an inference component (AWS::SageMaker::DataQualityJobDefinition
          EndpointInput): an endpoint of inference components hosts models per component.
        - Data capture is documented per endpoint and production variant (captures land under
          `{endpoint-name}/{variant-name}/yyyy/mm/dd/hh/`, "Capture data from real-time endpoint",
          https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html); no AWS
          page documents data capture for endpoints that host inference components, so it is refused
          here rather than discovered at deploy time.
        - A Model Monitor schedule reads captured data: it needs data capture on.
        """
        problems = []
        components = "is not supported with inference_components: true"
        if self.inference_components and self.data_capture_percentage > 0:
            problems.append(
                located(
                    "data_capture_percentage",
                    f"{self.data_capture_percentage} {components}: SageMaker documents data capture per "
                    "endpoint and production variant, not per inference component (model-monitor-data-"
                    "capture-endpoint.html); set 0, or host the model on a plain endpoint",
                )
            )
        if self.inference_components and self.monitoring_schedule is not None:
            problems.append(
                located(
                    "monitoring_schedule",
                    f"{self.monitoring_schedule!r} {components}: Model Monitor supports only endpoints that "
                    "host a single model (model-monitor.html); set null",
                )
            )
        elif self.monitoring_schedule is not None and self.data_capture_percentage == 0:
            problems.append(
                located(
                    "monitoring_schedule",
                    f"{self.monitoring_schedule!r} needs data capture (data_capture_percentage above 0): "
                    "Model Monitor reads the captured requests",
                )
            )
        return problems


class Inference(_Strict):
    """SageMaker real-time (or asynchronous) endpoints."""

    endpoints: list[InferenceEndpoint] = Field(min_length=1, max_length=10)
    drift: DriftMonitoring | None = Field(
        default_factory=DriftMonitoring,
        description="drift job over the captured data of endpoints with data capture (null: none)",
    )

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, endpoints: list[InferenceEndpoint]) -> list[InferenceEndpoint]:
        names = [e.name for e in endpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names {', '.join(duplicates)} more than once")
        return endpoints


def inference_problems(inference: Inference, region: str | None) -> list[str]:
    problems = []
    for index, endpoint in enumerate(inference.endpoints):
        if region and region not in image_regions(endpoint.container):
            problems.append(
                located(
                    f"endpoints[{index}].container",
                    f"the {endpoint.container} image is not published in {region} "
                    f"(regions: {', '.join(image_regions(endpoint.container))})",
                )
            )
        monitor_regions = sagemaker_data()["model_monitor"]["accounts"]
        if region and endpoint.monitoring_schedule is not None and region not in monitor_regions:
            problems.append(
                located(
                    f"endpoints[{index}].monitoring_schedule",
                    f"the Model Monitor analyzer image is not published in {region} (regions: "
                    f"{', '.join(sorted(monitor_regions))}); set null",
                )
            )
    return problems
