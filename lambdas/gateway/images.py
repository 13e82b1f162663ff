"""POST /v1/images/generations: OpenAI's images.generate on Bedrock image models, and on SageMaker
asynchronous endpoints of image models (EndpointImages) with a Bedrock fallback.

The request (lambdas/gateway/schema.py ImageRequest) is checked against every target of the alias
before anything is called: size, n and prompt length within what each documents, every other
parameter refused by name. Then, in order: the profile's guardrail on the prompt (ApplyGuardrail,
source INPUT); InvokeModel with the model's own body (an endpoint: the request queued through S3 and
InvokeEndpointAsync, its answer awaited); the guardrail on each generated image
(ApplyGuardrail, source OUTPUT, an image content block); the images returned as b64_json or stored
under `gateway-images/` in the data bucket and returned as pre-signed GET URLs.

Why the guardrail is applied here and not passed to InvokeModel: AWS's list of models that Amazon
Bedrock Guardrails supports (Bedrock user guide, "Supported Regions and models for Amazon Bedrock
Guardrails": https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-supported.html) names
text-generation models and documents no guarded InvokeModel of an image-generation model, while
ApplyGuardrail takes text and images ("Block harmful images with content filters": PNG and JPEG up
to 4 MB, https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-mmfilter.html;
GuardrailContentBlock:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_GuardrailContentBlock.html).
The model-access policy exempts image models from its GuardrailIdentifier condition accordingly
(stacks/components/model_access.py).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import Deadline, as_timed
from .errors import GatewayError, ProviderError, bad_request, unknown_model
from .guardrail import Guardrail
from .providers.aws_errors import provider_error
from .providers.bedrock import invoke_json
from .router import RetryPolicy, route
from .schema import ImageRequest

IMAGE_PREFIX = "gateway-images/"
# A pre-signed URL stops working when the credentials that signed it expire, whatever its own
# expiry says (Amazon S3 user guide, "Sharing objects with presigned URLs": a URL created with
# temporary credentials expires when those credentials do, even if it was created with a later
# expiry: https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html).
# A function signs with its execution role's temporary credentials, whose remaining lifetime it does
# not control: URLs are asked for an hour at most, and may end sooner (docs/gateway.md, Images).
MAX_URL_SECONDS = 3600


@dataclass(frozen=True)
class ImageModel:
    """What one Bedrock image model takes: its request family, sizes, images per call, prompt length."""

    family: str  # "amazon" (Nova Canvas / Titan Image Generator body) or "stability" (SD3.5 body)
    max_images: int
    max_prompt_chars: int
    sizes: tuple[str, ...] = ()  # amazon: width x height the model accepts
    aspect_ratios: tuple[str, ...] = ()  # stability: the size's ratio picks the model's aspect_ratio
    qualities: tuple[str, ...] = ("standard",)


# Amazon Nova Canvas: TEXT_IMAGE body, text 1 to 1,024 characters, numberOfImages 1 to 5, quality
# standard | premium (Amazon Nova user guide, "Request and response structure for image generation":
# https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html). The sizes
# are the square and common ratios within its documented limits (each side 320 to 4,096 pixels and
# divisible by 16, under 4.2 million pixels), the ones OpenAI clients send. Nova Canvas reached end of
# life on 2026-09-30, so stacks/data/bedrock_models.json leaves it out and no profile can name it; the
# body is kept for its successor of the same TEXT_IMAGE family.
# Stable Diffusion 3.5 Large: prompt up to 10,000 characters, one image per call, ~1 megapixel at an
# aspect_ratio of 16:9, 1:1, 21:9, 2:3, 3:2, 4:5, 5:4, 9:16, 9:21 (Bedrock user guide,
# "Stability.ai Stable Diffusion 3.5 Large":
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html).
IMAGE_MODELS: dict[str, ImageModel] = {
    "amazon.nova-canvas-v1:0": ImageModel(
        family="amazon",
        max_images=5,
        max_prompt_chars=1024,
        sizes=("512x512", "1024x1024", "1024x576", "576x1024", "1280x720", "720x1280"),
        qualities=("standard", "premium"),
    ),
    "stability.sd3-5-large-v1:0": ImageModel(
        family="stability",
        max_images=1,
        max_prompt_chars=10_000,
        aspect_ratios=("1:1", "16:9", "9:16", "21:9", "9:21", "3:2", "2:3", "5:4", "4:5"),
    ),
}

# The fine-tuned SDXL model on a SageMaker asynchronous endpoint (stacks/profile/inference.py, container
# diffusers): its code/inference.py takes {"prompt", "width", "height", "num_images"} and answers
# {"images": [<base64 PNG>, ...]} (the contract in docs/profiles/product-imagery.md). Sizes: SDXL's
# ~1-megapixel training resolutions whose ratios Stable Diffusion 3.5 Large also takes, so a Bedrock
# fallback answers every size the endpoint does.
ENDPOINT_IMAGES = ImageModel(
    family="diffusers",
    max_images=4,
    max_prompt_chars=2000,
    sizes=("1024x1024", "1152x768", "768x1152", "1280x720", "720x1280", "1280x1024", "1024x1280"),
)

# OpenAI's quality values and the model's: "auto"/"standard" are a model's default, "hd"/"high" its best.
_QUALITY = {
    "auto": "standard",
    "standard": "standard",
    "medium": "standard",
    "hd": "premium",
    "high": "premium",
}


def aspect_ratio(size: str) -> str | None:
    try:
        width, height = (int(part) for part in size.split("x"))
    except ValueError:
        return None
    if width <= 0 or height <= 0:
        return None
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def fits(model: ImageModel, size: str) -> bool:
    """Whether the model makes images of `size` (a ratio it takes, or one of its sizes)."""
    return aspect_ratio(size) in model.aspect_ratios if model.family == "stability" else size in model.sizes


def allowed_sizes(model: ImageModel) -> str:
    if model.family == "stability":
        return (
            "a width x height whose ratio is one of " + ", ".join(model.aspect_ratios) + " (e.g. 1024x1024)"
        )
    return ", ".join(model.sizes)


@dataclass(frozen=True)
class ImageTarget:
    """One image alias: the Bedrock model it invokes and its price per image (USD)."""

    model_id: str
    price_per_image: float = 0.0

    @property
    def name(self) -> str:
        return f"bedrock:{self.model_id}"

    @property
    def spec(self) -> ImageModel:
        return IMAGE_MODELS[self.model_id]


@dataclass(frozen=True)
class Generated:
    images: list[bytes]  # PNG bytes, one per image
    target: str
    price_per_image: float = 0.0  # USD, the answering target's


class BedrockImages:
    """InvokeModel of one image model; `client`: a bedrock-runtime client or TimedClients of them."""

    def __init__(self, client: Any, target: ImageTarget) -> None:
        self.clients = as_timed(client)
        self.target = target
        self.name = target.name
        self.spec = target.spec
        self.price_per_image = target.price_per_image

    def body(self, request: ImageRequest, size: str, quality: str) -> dict[str, Any]:
        spec = self.target.spec
        if spec.family == "stability":
            return {
                "prompt": request.prompt,
                "mode": "text-to-image",
                "aspect_ratio": aspect_ratio(size),
                "output_format": "png",
            }
        width, height = (int(part) for part in size.split("x"))
        return {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": request.prompt},
            "imageGenerationConfig": {
                "numberOfImages": request.n,
                "width": width,
                "height": height,
                "quality": quality,
            },
        }

    def generate(self, body: dict[str, Any], *, deadline: Deadline) -> list[bytes]:
        client = self.clients.within(deadline, self.name)
        payload = invoke_json(client, self.name, self.target.model_id, body)
        reasons = [r for r in payload.get("finish_reasons") or [] if r]
        if reasons and reasons[0].lower().startswith("inference error"):  # the model failed: retry, fall back
            raise ProviderError(f"{self.name}: {reasons[0]}", retryable=True)
        if reasons:  # Stability: "Filter reason: prompt" and the like, with no image
            raise ProviderError(f"{self.name}: {reasons[0]}", retryable=False, client_message=reasons[0])
        if payload.get("error"):  # Nova Canvas reports a refusal in the body
            raise ProviderError(
                f"{self.name}: {payload['error']}", retryable=False, client_message=payload["error"]
            )
        return [base64.b64decode(image) for image in payload.get("images") or []]


@dataclass(frozen=True)
class EndpointTarget:
    """A SageMaker asynchronous endpoint serving an image model, and where its requests go: the
    endpoint's input prefix in the artifacts bucket (SSE-KMS with `key_id`). `wait_seconds`: how long
    a request waits for its result before the alias's next target is tried."""

    endpoint: str
    bucket: str
    input_prefix: str
    key_id: str | None
    wait_seconds: float


READ_SECONDS = 0.25  # a GetObject of the endpoint's answer, at least
# How long a queued request may wait for an instance. Long enough that a request which finds the
# endpoint at zero stays in the queue while the instance starts (minutes), so that it is counted by
# HasBacklogWithoutCapacity and starts one; AWS documents no backlog count for requests that expired.
# A request answered after the gateway stopped waiting costs its images' instance time.
REQUEST_TTL_SECONDS = 900


class EndpointImages:
    """InvokeEndpointAsync of an image endpoint: the request body is written to S3, the endpoint queues
    it and writes its answer to S3, which is polled until the wait ends (SageMaker developer guide,
    "Asynchronous inference": requests go in as an S3 InputLocation, results come back at the
    OutputLocation or FailureLocation the call returns:
    https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-invoke-endpoint.html).

    An endpoint at zero instances starts one when a request waits (HasBacklogWithoutCapacity), which
    takes minutes: the wait then ends without a result, and the alias's fallback answers; without
    one, the caller gets a 504 that says the endpoint is starting. The request stays queued for
    REQUEST_TTL_SECONDS, so that it is what starts the instance; it is then made for nobody (its `n`
    images of instance time)."""

    poll_seconds = 1.0

    def __init__(
        self,
        s3: Any,
        runtime: Any,
        target: EndpointTarget,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.s3 = as_timed(s3)
        self.runtime = as_timed(runtime)
        self.target = target
        self.name = f"sagemaker:{target.endpoint}"
        self.spec = ENDPOINT_IMAGES
        self.price_per_image = 0.0  # billed per instance hour, not per image
        self.sleep = sleep

    def body(self, request: ImageRequest, size: str, quality: str) -> dict[str, Any]:
        width, height = (int(part) for part in size.split("x"))
        return {"prompt": request.prompt, "width": width, "height": height, "num_images": request.n}

    def generate(self, body: dict[str, Any], *, deadline: Deadline) -> list[bytes]:
        target = self.target
        key = f"{target.input_prefix}{uuid.uuid4().hex}.json"
        extra = {"SSEKMSKeyId": target.key_id} if target.key_id else {}
        try:
            self.s3.within(deadline, "queueing the image request").put_object(
                Bucket=target.bucket,
                Key=key,
                Body=json.dumps(body).encode(),
                ContentType="application/json",
                ServerSideEncryption="aws:kms",
                **extra,
            )
            answer = self.runtime.within(deadline, self.name).invoke_endpoint_async(
                EndpointName=target.endpoint,
                InputLocation=f"s3://{target.bucket}/{key}",
                ContentType="application/json",
                Accept="application/json",
                RequestTTLSeconds=REQUEST_TTL_SECONDS,
                InvocationTimeoutSeconds=300,
            )
        except (ClientError, BotoCoreError) as error:  # the gateway's one classification of AWS errors
            raise provider_error(self.name, error) from None
        if not answer.get("OutputLocation"):  # no member of InvokeEndpointAsync's answer is required
            raise ProviderError(f"{self.name}: InvokeEndpointAsync named no OutputLocation", retryable=False)
        waited = deadline.capped(target.wait_seconds)
        while True:
            for location, failed in (
                (answer["OutputLocation"], False),
                (answer.get("FailureLocation"), True),
            ):
                if location and (found := self._read(location, waited)) is not None:
                    if failed:
                        raise ProviderError(f"{self.name}: the model failed: {found[:300]!r}", retryable=True)
                    return [base64.b64decode(image) for image in json.loads(found)["images"]]
            # Another read must fit after the pause, with room for the read itself.
            if waited.remaining() < 2 * self.poll_seconds + READ_SECONDS:
                raise ProviderError(
                    f"{self.name} gave no image within {target.wait_seconds:g} s: it scales from zero "
                    "instances when idle and takes minutes to start; retry in a few minutes",
                    retryable=True,
                    timeout=True,
                )
            self.sleep(self.poll_seconds)

    def _read(self, location: str, deadline: Deadline) -> bytes | None:
        """The object at `location`, or None while it is not there. Probed with ListObjectsV2 first:
        a GetObject of a missing key answers 403, not 404, to a caller without s3:ListBucket (Amazon
        S3 API reference, GetObject), and the role's ListBucket is limited to the answers' prefixes."""
        bucket, _, key = location.removeprefix("s3://").partition("/")
        client = self.s3.within(deadline, "reading the image")
        try:
            if not client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"):
                return None
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise ProviderError(
                f"{self.name}: reading its answer failed ({error})", retryable=False
            ) from None


ImageBackend = BedrockImages | EndpointImages


class ImageStore:
    """Generated images in the data bucket under IMAGE_PREFIX (SSE-KMS with the platform key, which
    the bucket requires), handed out as pre-signed GET URLs signed by the gateway's role."""

    def __init__(self, client: Any, *, bucket: str, key_id: str | None, url_seconds: int) -> None:
        self.clients = as_timed(client)
        self.bucket = bucket
        self.key_id = key_id
        self.url_seconds = min(url_seconds, MAX_URL_SECONDS)

    def put(self, data: bytes, *, tenant: str, deadline: Deadline) -> str:
        key = f"{IMAGE_PREFIX}{tenant}/{time.strftime('%Y/%m/%d')}/{uuid.uuid4().hex}.png"
        extra = {"SSEKMSKeyId": self.key_id} if self.key_id else {}
        client = self.clients.within(deadline, "storing the image")
        try:
            client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="image/png",
                ServerSideEncryption="aws:kms",
                **extra,
            )
            return client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_seconds
            )
        except (ClientError, BotoCoreError) as error:
            raise GatewayError(502, f"storing the image failed ({error})", type="upstream_error") from None


@dataclass
class ImageService:
    routes: dict[str, tuple[ImageBackend, ...]]  # alias -> its targets, in order (a fallback second)
    guardrail: Guardrail | None = None
    store: ImageStore | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic

    def check(self, request: ImageRequest) -> tuple[tuple[ImageBackend, ...], str, str]:
        """The alias's targets, size and model quality; every refusal before a model is called. The
        request must suit every target of the alias: a fallback that made fewer images, or another
        size, would drop part of what was asked for without saying so."""
        targets = self.routes.get(request.model)
        if not targets:
            raise unknown_model(request.model, "image ")
        size = request.size if request.size not in (None, "auto") else "1024x1024"
        for target in targets:
            quality = self._check(request, target.spec, size)
        return targets, size, quality

    def _check(self, request: ImageRequest, spec: ImageModel, size: str) -> str:
        if not fits(spec, size):
            raise bad_request(
                f"size {size!r} is not supported by image model {request.model!r}; allowed: "
                f"{allowed_sizes(spec)}",
                param="size",
                code="invalid_value",
            )
        if request.n > spec.max_images:
            raise bad_request(
                f"n {request.n}: image model {request.model!r} makes at most {spec.max_images} "
                f"image{'s' if spec.max_images > 1 else ''} per request",
                param="n",
                code="invalid_value",
            )
        if len(request.prompt) > spec.max_prompt_chars:
            raise bad_request(
                f"prompt is {len(request.prompt)} characters; image model {request.model!r} takes at most "
                f"{spec.max_prompt_chars}",
                param="prompt",
                code="invalid_value",
            )
        quality = _QUALITY[request.quality or "auto"]
        if quality not in spec.qualities:
            raise bad_request(
                f"quality {request.quality!r} is not supported by image model {request.model!r}; allowed: "
                f"auto, standard",
                param="quality",
                code="unsupported_parameter",
            )
        if self.response_format(request) == "url" and self.store is None:
            raise bad_request(
                "response_format url: this gateway stores no images; use b64_json",
                param="response_format",
                code="unsupported_parameter",
            )
        return quality

    def response_format(self, request: ImageRequest) -> str:
        """OpenAI's default is url; a gateway without an image store answers b64_json."""
        return request.response_format or ("url" if self.store is not None else "b64_json")

    def _guard(self, source: str, content: dict[str, Any], deadline: Deadline) -> None:
        if self.guardrail is None:
            return
        try:
            blocked = self.guardrail.check_content(source, content, deadline)
        except ProviderError as error:  # an unchecked prompt or image is not passed on
            raise GatewayError(
                504 if error.timeout else 502,
                f"the guardrail check failed ({error})",
                type="timeout" if error.timeout else "upstream_error",
            ) from None
        if blocked is not None:
            raise GatewayError(
                400,
                blocked or "the request was blocked by the content policy",
                type="invalid_request_error",
                param="prompt" if source == "INPUT" else None,
                code="content_policy_violation",
            )

    def generate(
        self, request: ImageRequest, *, tenant: str, deadline: Deadline
    ) -> tuple[dict[str, Any], Generated, str, str]:
        targets, size, quality = self.check(request)
        self._guard("INPUT", {"text": {"text": request.prompt}}, deadline)
        # One attempt per endpoint target: a second would queue a second request for the same images.
        policy = (
            replace(self.policy, attempts_per_target=1)
            if any(isinstance(t, EndpointImages) for t in targets)
            else self.policy
        )
        routed = route(
            targets,
            request,
            policy=policy,
            clock=self.clock,
            deadline=deadline,
            call=lambda t: t.generate(t.body(request, size, quality), deadline=deadline),
        )
        answered = next(t for t in targets if t.name == routed.target)
        images: list[bytes] = routed.result
        for image in images:
            self._guard("OUTPUT", {"image": {"format": "png", "source": {"bytes": image}}}, deadline)
        data = []
        for image in images:
            if self.response_format(request) == "url":
                data.append({"url": self.store.put(image, tenant=tenant, deadline=deadline)})
            else:
                data.append({"b64_json": base64.b64encode(image).decode()})
        response = {"created": int(time.time()), "data": data}
        generated = Generated(images=images, target=answered.name, price_per_image=answered.price_per_image)
        return response, generated, size, quality
