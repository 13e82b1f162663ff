"""The approach advisor behind `genai-stack recommend`: monthly cost of each approach at a volume,
the crossover volumes where a self-hosted instance becomes cheaper than on-demand tokens, the
reasons, and the built-in profile to start from. Prices come from stacks/data/*.json (via
stacks.cost); fleet sizes from the throughput assumptions in ec2_accelerators.json."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from genai_stack.catalog import bedrock_catalog, bedrock_image_prices, bedrock_prices, missing_types
from genai_stack.planning.cost import (
    DATA,
    HOURS_PER_MONTH,
    fixed_price,
    instance_price,
    network_price,
    sagemaker_price,
)

Modality = Literal["text", "image", "embeddings"]
DomainData = Literal["none", "labelled", "unlabelled"]

# The managed-API profile to start from in Asia Pacific: Bedrock in Tokyo with Claude through the Japan
# inference profile and a STANDARD-tier guardrail through apac.guardrail.v1:0
# (docs/profiles/marketing-copy-apac.md).
APAC_PROFILE = "marketing-copy-apac"
# Image generation: Stability's models on Bedrock behind the gateway (docs/profiles/product-imagery.md).
IMAGE_PROFILE = "product-imagery"
IMAGE_MODEL = "stability.sd3-5-large-v1:0"
# Grounded answers in Asia Pacific: a Lex assistant in English and Cantonese over a knowledge base, from
# Sydney (docs/profiles/utility-assistant.md).
APAC_GROUNDED_PROFILE = "utility-assistant"

DEFAULT_MODELS = {"text": "amazon.nova-lite-v1:0", "embeddings": "amazon.titan-embed-text-v2:0"}
SELF_HOSTED_TYPES = ("inf2.8xlarge", "g6.xlarge", "g5.xlarge")
# What a self-hosted fleet needs besides its instances (stacks/components/model_network.py): one
# internal ALB and 6 interface endpoints in 2 zones; no NAT gateway (weights and vLLM's wheels come
# from S3 through the gateway endpoint).
ENDPOINT_ZONES = 6 * 2


@dataclass(frozen=True)
class Workload:
    modality: Modality = "text"
    requests: int = 0
    input_tokens: int = 500
    output_tokens: int = 200
    domain_data: DomainData = "none"
    latency_ms: int | None = None
    budget_usd: float | None = None
    model: str | None = None
    tokens_per_second: float | None = None
    region: str | None = None  # where the team wants it run; None: no preference
    seconds_per_image: float | None = None  # measured on the image endpoint; None: SECONDS_PER_IMAGE


@dataclass
class Option:
    approach: str
    detail: str
    monthly_usd: float | None
    profile: str
    crossover_requests: int | None = None
    instances: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Recommendation:
    options: list[Option]
    reasons: list[str]
    profile: str

    def as_dict(self) -> dict:
        return {
            "options": [asdict(o) for o in self.options],
            "reasons": self.reasons,
            "profile": self.profile,
        }


def _assumptions() -> dict:
    return json.loads((DATA / "ec2_accelerators.json").read_text())["throughput_assumptions"]


def per_request_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    input_price, output_price = bedrock_prices()[bedrock_catalog().model_of(model).model_id]
    return (input_tokens * input_price + output_tokens * output_price) / 1000


def platform_usd() -> float:
    """What every profile pays regardless of approach: its key and its dashboard."""
    return fixed_price("kms_key").usd + fixed_price("dashboard").usd


def fleet_fixed_usd() -> float:
    """The self-hosted fleet's shared monthly cost besides the instances themselves."""
    hourly = network_price("application_load_balancer").usd
    hourly += ENDPOINT_ZONES * network_price("interface_endpoint_per_az").usd
    return hourly * HOURS_PER_MONTH + platform_usd()


def requests_per_instance(instance_type: str, output_tokens: int, tokens_per_second: float | None) -> float:
    assumptions = _assumptions()
    rate = tokens_per_second or assumptions["output_tokens_per_second"][instance_type]
    return rate * 3600 * HOURS_PER_MONTH * assumptions["utilisation"] / max(output_tokens, 1)


def self_hosted_usd(instance_type: str, requests: int, work: Workload) -> tuple[float, int]:
    capacity = requests_per_instance(instance_type, work.output_tokens, work.tokens_per_second)
    instances = max(1, math.ceil(requests / capacity))
    instance_month = instance_price(instance_type).usd * HOURS_PER_MONTH
    return instances * instance_month + fleet_fixed_usd(), instances


def crossover_requests(instance_type: str, per_request: float, work: Workload) -> int | None:
    """The smallest monthly volume at which the self-hosted fleet (sized for the volume) costs no more
    than on-demand tokens; None when it never does (an instance at full use costs more per request)."""
    if per_request <= 0:
        return None
    capacity = requests_per_instance(instance_type, work.output_tokens, work.tokens_per_second)
    instance_month = instance_price(instance_type).usd * HOURS_PER_MONTH
    if instance_month / capacity >= per_request:
        return None
    fixed = fleet_fixed_usd()
    n = 1
    while True:
        volume = (n * instance_month + fixed) / per_request
        if volume <= n * capacity:
            return math.ceil(volume)
        n += 1


def _regional(region: str, profile: str, reasons: list[str]) -> str:
    """The profile to start from for a team in `region`, with the reason when the region changes it."""
    if "AWS::Bedrock::Guardrail" in missing_types(region):
        reasons.append(
            f"Amazon Bedrock is not offered in {region}: the managed API runs from a region that has it "
            + ("(Tokyo, for Asia Pacific)." if region.startswith("ap-") else "(docs/regions.md).")
        )
    if region.startswith("ap-") and profile == "managed-api":
        reasons.append(
            f"Asia Pacific: {APAC_PROFILE} is managed-api's design in ap-northeast-1, with Claude "
            "through the Japan inference profile and a STANDARD-tier guardrail (Traditional Chinese) through "
            "apac.guardrail.v1:0."
        )
        return APAC_PROFILE
    if region.startswith("ap-") and profile == "customer-service":
        reasons.append(
            f"Asia Pacific: {APAC_GROUNDED_PROFILE} grounds answers on a knowledge base from ap-southeast-2, "
            "behind an Amazon Lex bot in English and Cantonese (zh_HK)."
        )
        return APAC_GROUNDED_PROFILE
    return profile


# The fine-tuned image model on a SageMaker endpoint (product-imagery's brand-sdxl): one SDXL image at
# 1,024 px per instance at a time. SECONDS_PER_IMAGE is an assumption, not a measurement: Baseten
# reports an optimised SDXL at 4-6 s per 1,024 px image on an A10G (20 steps, fp16 VAE, torch.compile;
# "SDXL inference in under 2 seconds", baseten.co); 8 s leaves room for 30 steps without those.
# `genai-stack recommend --seconds-per-image` takes a measured figure instead.
IMAGE_ENDPOINT_TYPE = "ml.g5.xlarge"
SECONDS_PER_IMAGE = 8.0
# Working hours of the endpoint that is on from 08:00 to 20:00 on weekdays (product-imagery's
# off_hours): 12 h x 5 days x 52 weeks / 12 months.
WORKING_HOURS_PER_MONTH = 12 * 5 * 52 / 12
# An endpoint that scales to zero pays for its busy hours and for each start: the instance is billed
# from launch and stays until the scale-in alarm (15 minutes below target) removes it. Assumed: one
# start a working day, half an hour each.
STARTS_PER_MONTH = 5 * 52 / 12
HOURS_PER_START = 0.5


def _images(work: Workload) -> Recommendation:
    """Images: Stable Diffusion 3.5 Large on Bedrock per image, against the fine-tuned SDXL on a
    SageMaker endpoint that is on in working hours or scales to zero (docs/profiles/product-imagery.md)."""
    # `requests` are images; the price per image is stacks/data/bedrock_prices.json's (per_image).
    price = bedrock_image_prices()[IMAGE_MODEL]
    hourly = sagemaker_price(IMAGE_ENDPOINT_TYPE).usd
    seconds = work.seconds_per_image or SECONDS_PER_IMAGE
    busy_hours = work.requests * seconds / 3600
    per_image = hourly * seconds / 3600  # an endpoint's compute per image while it is busy
    options = [
        Option(
            "managed API",
            f"Bedrock {IMAGE_MODEL}, on demand ({price:g} USD an image)",
            round(price * work.requests + platform_usd(), 2),
            IMAGE_PROFILE,
        )
    ]
    instances = max(1, math.ceil(busy_hours / WORKING_HOURS_PER_MONTH))
    working = instances * WORKING_HOURS_PER_MONTH * hourly
    options.append(
        Option(
            "training and tuning",
            f"fine-tuned SDXL, {instances} x {IMAGE_ENDPOINT_TYPE} from 08:00 to 20:00 on weekdays "
            f"({seconds:g} s an image)",
            round(working + platform_usd(), 2),
            IMAGE_PROFILE,
            crossover_requests=math.ceil(WORKING_HOURS_PER_MONTH * hourly / price),
            instances=instances,
        )
    )
    starts = STARTS_PER_MONTH * HOURS_PER_START * hourly if work.requests else 0.0
    if per_image < price:
        options.append(
            Option(
                "training and tuning",
                f"fine-tuned SDXL, {IMAGE_ENDPOINT_TYPE} that scales to zero (busy hours, and half an hour "
                "per start)",
                round(busy_hours * hourly + starts + platform_usd(), 2),
                IMAGE_PROFILE,
                crossover_requests=math.ceil(
                    STARTS_PER_MONTH * HOURS_PER_START * hourly / (price - per_image)
                ),
                notes=["a request after idle waits minutes for the instance: batches, or a Bedrock fallback"],
            )
        )
    options.sort(key=lambda o: (o.monthly_usd is None, o.monthly_usd or 0))
    best = options[0]
    reasons = [
        "Images: the self-hosted hosts serve text models only (vLLM). "
        f"{IMAGE_PROFILE} serves Stable Diffusion 3.5 Large on Bedrock through the gateway's images endpoint "
        "(us-west-2), a LoRA of SDXL fine-tuned on the catalogue on an asynchronous SageMaker endpoint that "
        "scales to zero, and batches of supplier photos.",
        f"An endpoint image costs {per_image:.4f} USD of {IMAGE_ENDPOINT_TYPE} time against {price:g} USD "
        f"on Bedrock at {seconds:g} s an image (an assumption: measure yours and pass --seconds-per-image); "
        f"the endpoint that scales to zero is priced with one start a working day ({STARTS_PER_MONTH:.1f} a "
        f"month) of {HOURS_PER_START:g} h; the fine-tuning runs (a training job per retraining) come on top.",
    ]
    if best.approach != "managed API":
        reasons.append(
            f"At {work.requests:,} images a month, {best.detail} costs less than Bedrock "
            f"(crossover at {best.crossover_requests:,} images a month)."
        )
    else:
        reasons.append(f"Bedrock is cheapest at {work.requests:,} images a month.")
    _over_budget(options, work.budget_usd)
    return Recommendation(options, reasons, IMAGE_PROFILE)


def _over_budget(options: list[Option], budget_usd: float | None) -> None:
    """Notes the options that cost more than the budget."""
    if budget_usd is None:
        return
    for option in options:
        if option.monthly_usd is not None and option.monthly_usd > budget_usd:
            option.notes.append(f"above the budget of {budget_usd:,.0f} USD")


def recommend(work: Workload) -> Recommendation:
    reasons: list[str] = []
    options: list[Option] = []
    if work.modality == "image":
        return _images(work)

    model = work.model or DEFAULT_MODELS[work.modality]
    per_request = per_request_usd(model, work.input_tokens, work.output_tokens)
    managed = per_request * work.requests + platform_usd()
    start_from = {"unlabelled": "customer-service", "labelled": "custom-model"}.get(
        work.domain_data, "managed-api"
    )
    detail = f"Bedrock {model}, on demand ({per_request * 1e6:,.2f} USD per million requests)"
    options.append(Option("managed API", detail, round(managed, 2), start_from))
    if work.modality == "text":
        for instance_type in SELF_HOSTED_TYPES:
            monthly, instances = self_hosted_usd(instance_type, work.requests, work)
            options.append(
                Option(
                    "self-managed",
                    f"{instances} x {instance_type} serving a 7-8B open model (vLLM)",
                    round(monthly, 2),
                    "self-hosted",
                    crossover_requests=crossover_requests(instance_type, per_request, work),
                    instances=instances,
                )
            )
    else:
        reasons.append(
            "Embeddings: Bedrock embedding models cost fractions of a cent per request; no host pays off."
        )
    options.sort(key=lambda o: (o.monthly_usd is None, o.monthly_usd or 0))
    best = options[0]

    if work.domain_data == "unlabelled":
        reasons.append(
            "Unlabelled domain documents: ground answers in a knowledge base (retrieval) rather than "
            "training; customer-service shows knowledge bases with citations."
        )
    elif work.domain_data == "labelled":
        reasons.append(
            "Labelled examples: fine-tuning (Bedrock customization or a SageMaker training pipeline) can "
            "pay off; custom-model shows both with evaluation, a model registry and approval-driven "
            "deployment. Measure the base model first."
        )
    if work.latency_ms is not None and work.latency_ms < 1000:
        reasons.append(
            f"Latency target {work.latency_ms} ms: a dedicated host has no on-demand throttling and no "
            "cold start, but measure time-to-first-token on your model; Bedrock's latency-optimized "
            "inference is the managed alternative."
        )
    if work.region is not None:
        start_from = _regional(work.region, best.profile, reasons)
        for option in options:
            if option.profile == best.profile:
                option.profile = start_from
        best.profile = start_from
    _over_budget(options, work.budget_usd)
    if work.budget_usd is not None and best.monthly_usd is not None and best.monthly_usd > work.budget_usd:
        reasons.append(f"No approach fits {work.budget_usd:,.0f} USD a month at this volume.")
    if best.approach == "self-managed":
        reasons.append(
            f"At {work.requests:,} requests a month, {best.detail} costs less than on-demand tokens "
            f"(crossover at {best.crossover_requests:,} requests); it adds hosts to operate."
        )
    else:
        cheapest_cross = min((o.crossover_requests for o in options if o.crossover_requests), default=None)
        if cheapest_cross:
            reasons.append(
                f"On-demand tokens are cheapest at {work.requests:,} requests a month; a self-hosted "
                f"instance becomes cheaper from about {cheapest_cross:,} requests a month."
            )
        else:
            reasons.append("On-demand tokens are cheapest at this volume, and no instance type crosses over.")
    return Recommendation(options, reasons, best.profile)


def image_crossover_markdown(volumes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> str:
    """docs/profiles/product-imagery.md's table: `genai-stack recommend --modality image` at a few volumes."""
    rows = {}
    crossovers = {}
    for volume in volumes:
        for option in _images(Workload(modality="image", requests=volume)).options:
            key = option.detail.split(" (")[0] if option.approach == "managed API" else option.detail
            key = key.replace(f"{option.instances} x ", "") if option.instances else key
            rows.setdefault(key, {})[volume] = option.monthly_usd
            if option.crossover_requests:
                crossovers[key] = option.crossover_requests
    header = "| Option | " + " | ".join(f"{v:,} images" for v in volumes) + " | Cheaper than Bedrock from |"
    lines = [
        f"`genai-stack recommend --modality image --requests N` (USD a month at us-east-1 prices, each "
        f"with the {platform_usd():.2f} USD of a profile's key and dashboard; {SECONDS_PER_IMAGE:g} s an "
        f"image and, for the endpoint that scales to zero, {STARTS_PER_MONTH:.1f} starts a month of "
        f"{HOURS_PER_START:g} h assumed; the fine-tuning runs not included).",
        "",
        header,
        "|" + "---|" * (len(volumes) + 2),
    ]
    for key, by_volume in rows.items():
        cells = " | ".join(f"{by_volume[v]:,.2f}" for v in volumes)
        cross = f"{crossovers[key]:,} images a month" if key in crossovers else ""
        lines.append(f"| {key} | {cells} | {cross} |")
    price = bedrock_image_prices()[IMAGE_MODEL]
    busy = sagemaker_price(IMAGE_ENDPOINT_TYPE).usd * SECONDS_PER_IMAGE / 3600 * 1000
    lines += [
        "",
        f"Per 1,000 images: {price * 1000:,.2f} USD on Bedrock; {busy:,.2f} USD of {IMAGE_ENDPOINT_TYPE} "
        "time while the endpoint is busy, plus what it costs while it is on and idle.",
    ]
    return "\n".join(lines) + "\n"
