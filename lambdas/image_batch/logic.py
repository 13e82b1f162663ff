"""One item of an image batch: a supplier photo turned into a lifestyle image (pure logic over
injected clients; lambdas/image_batch/handler.py wires boto3).

An item is one line of the batch's JSON Lines manifest, read by the state machine's Distributed Map:

    {"sku": "SOFA-0042", "image": "batches/input/photos/sofa-0042.png", "category": "sofa", "seed": 7}

- `sku`: letters, digits, '.', '_' and '-' (1-100): the output's file name;
- `image`: a key under the batch's input prefix, a PNG, JPEG or WebP photo (the formats Stable
  Diffusion 3.5 Large takes), at most MAX_PHOTO_BYTES;
- `category`: one of the profile's categories, whose prompt describes the scene;
- `seed` (optional): 0 to 4,294,967,294, for a repeatable image.

The worker reads the photo, calls InvokeModel with Stable Diffusion 3.5 Large's image-to-image body
(`mode` image-to-image, `image`, `strength`, `prompt`, `negative_prompt`, `seed`, `output_format`
png; no `aspect_ratio`, which is for text-to-image only: Bedrock user guide, "Stability.ai Stable
Diffusion 3.5 Large",
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html),
checks the image with the profile's guardrail (ApplyGuardrail, source OUTPUT, an image block: PNG up
to 4 MB, "Block harmful images with content filters",
https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-mmfilter.html) and writes it under
the batch's output prefix, `<output prefix>images/<execution name>/<sku>.png` (the map's results go
under `<output prefix>results/`).

Errors are named for the state machine: BadItem (the line is wrong: not retried), ImageRefused (the
model's filter or the guardrail refused it: not retried), ModelBusy (throttled or unavailable:
retried with backoff). Each failed item is one failed child execution; the map tolerates the
profile's share of them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# InvokeModel takes a body of at most 25,000,000 bytes (Bedrock API reference, InvokeModel, body
# "Length Constraints: Maximum length of 25000000"); base64 makes a photo 4/3 larger, and the prompt
# and the other fields need a little room.
MAX_PHOTO_BYTES = 18_000_000
# ApplyGuardrail takes images of at most 4 MB ("Block harmful images with content filters").
MAX_GUARDED_BYTES = 4 * 1024 * 1024
MAX_SEED = 4_294_967_294
SKU = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
PHOTO_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
# Bedrock's retryable errors (Bedrock API reference, InvokeModel "Errors"; ApplyGuardrail likewise).
BUSY = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
        "ModelTimeoutException",  # "Processing time exceeded the model timeout length"
        "ServiceQuotaExceededException",  # "You can resubmit your request later"
    }
)


class BadItem(Exception):
    """The manifest line cannot be processed as written."""


class ImageRefused(Exception):
    """The model's own filter or the guardrail refused the request or the image."""


class ModelBusy(Exception):
    """Bedrock throttled or was unavailable: the state machine retries the item."""


@dataclass(frozen=True)
class BatchSettings:
    model_id: str
    strength: float
    negative_prompt: str
    categories: Mapping[str, str]
    input_prefix: str
    output_prefix: str
    bucket: str
    key_id: str | None
    price_per_image: float
    guardrail: tuple[str, str] | None  # (identifier, version)


@dataclass(frozen=True)
class Item:
    sku: str
    image: str
    category: str
    seed: int


@dataclass(frozen=True)
class Result:
    sku: str
    category: str
    source: str
    output: str
    seed: int
    cost_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "category": self.category,
            "source": self.source,
            "output": self.output,
            "seed": self.seed,
            "cost_usd": self.cost_usd,
        }


def parse_item(value: Any, settings: BatchSettings) -> Item:
    """A manifest line, checked: BadItem names the field and what is allowed."""
    if not isinstance(value, dict):
        raise BadItem(f"a manifest line must be a JSON object, not {type(value).__name__}")
    unknown = sorted(set(value) - {"sku", "image", "category", "seed"})
    if unknown:
        raise BadItem(f"unknown fields {', '.join(unknown)} (allowed: sku, image, category, seed)")
    sku, image, category = value.get("sku"), value.get("image"), value.get("category")
    if not isinstance(sku, str) or not SKU.match(sku):
        raise BadItem(f"sku {sku!r}: 1-100 letters, digits, '.', '_' or '-'")
    if not isinstance(image, str) or not image.startswith(settings.input_prefix) or ".." in image:
        raise BadItem(f"{sku}: image {image!r} is not a key under {settings.input_prefix}")
    if _photo_format(image) is None:
        raise BadItem(f"{sku}: image {image!r} is not .png, .jpg, .jpeg or .webp")
    if category not in settings.categories:
        raise BadItem(f"{sku}: category {category!r} is not one of {', '.join(sorted(settings.categories))}")
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BadItem(f"{sku}: seed {seed!r} is not an integer from 0 to {MAX_SEED}")
    return Item(sku=sku, image=image, category=category, seed=seed)


def _photo_format(key: str) -> str | None:
    dot = key.rfind(".")
    return PHOTO_TYPES.get(key[dot:].lower()) if dot >= 0 else None


def request_body(item: Item, photo: bytes, settings: BatchSettings) -> dict[str, Any]:
    """Stable Diffusion 3.5 Large's image-to-image request for one item."""
    body: dict[str, Any] = {
        "prompt": settings.categories[item.category],
        "mode": "image-to-image",
        "image": base64.b64encode(photo).decode("ascii"),
        "strength": settings.strength,
        "seed": item.seed,
        "output_format": "png",
    }
    if settings.negative_prompt:
        body["negative_prompt"] = settings.negative_prompt
    return body


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def process(raw: Any, *, run: str, settings: BatchSettings, s3: Any, bedrock: Any) -> Result:
    """One item, end to end; raises BadItem, ImageRefused or ModelBusy (named errors of the state
    machine), or lets any other error fail the item as it is."""
    item = parse_item(raw, settings)
    try:
        head = s3.head_object(Bucket=settings.bucket, Key=item.image)
    except ClientError as error:
        # 404 with s3:ListBucket; 403 if S3 does not count the role's prefix-scoped ListBucket for
        # a missing key (HeadObject: "If you don't have the s3:ListBucket permission, Amazon S3
        # returns an HTTP status code 403"): both are a line naming no readable photo.
        if _code(error) in {"404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"}:
            raise BadItem(f"{item.sku}: image {item.image} does not exist or cannot be read") from None
        raise
    if head["ContentLength"] > MAX_PHOTO_BYTES:
        raise BadItem(
            f"{item.sku}: image {item.image} is {head['ContentLength']} bytes; at most {MAX_PHOTO_BYTES} "
            "fit an InvokeModel body"
        )
    photo = s3.get_object(Bucket=settings.bucket, Key=item.image)["Body"].read()
    image, seed = _generate(item, photo, settings, bedrock)
    _guard(item, image, settings, bedrock)
    key = f"{settings.output_prefix}images/{run}/{item.sku}.png"
    extra = {"SSEKMSKeyId": settings.key_id} if settings.key_id else {}
    s3.put_object(
        Bucket=settings.bucket,
        Key=key,
        Body=image,
        ContentType="image/png",
        ServerSideEncryption="aws:kms",
        Metadata={"sku": item.sku, "category": item.category, "source": item.image, "seed": str(seed)},
        **extra,
    )
    return Result(item.sku, item.category, item.image, key, seed, settings.price_per_image)


def _generate(item: Item, photo: bytes, settings: BatchSettings, bedrock: Any) -> tuple[bytes, int]:
    """The image and the seed the model used (seed 0 asks for a random one: "Default 0 (random
    seed)"; the answer's `seeds` says which, so the image can be made again)."""
    try:
        response = bedrock.invoke_model(
            modelId=settings.model_id,
            contentType="application/json",
            accept="application/json",
            body=json.dumps(request_body(item, photo, settings)),
        )
    except ClientError as error:
        if _code(error) in BUSY:
            raise ModelBusy(f"{item.sku}: {settings.model_id}: {_code(error)}") from None
        if _code(error) == "ValidationException":
            message = error.response.get("Error", {}).get("Message", "")
            raise BadItem(f"{item.sku}: {settings.model_id} refused the request: {message}") from None
        raise
    except BotoCoreError as error:
        raise ModelBusy(f"{item.sku}: {settings.model_id}: {error}") from None
    payload = json.loads(response["body"].read())
    reasons = [r for r in payload.get("finish_reasons") or [] if r]
    if reasons and reasons[0].lower().startswith("inference error"):
        raise ModelBusy(f"{item.sku}: {settings.model_id}: {reasons[0]}")
    if reasons:  # "Filter reason: prompt" / "output image" / "input image"
        raise ImageRefused(f"{item.sku}: {settings.model_id}: {reasons[0]}")
    images = payload.get("images") or []
    if not images:
        raise ModelBusy(f"{item.sku}: {settings.model_id} returned no image")
    seeds = payload.get("seeds") or [item.seed]
    return base64.b64decode(images[0]), int(seeds[0])


def _guard(item: Item, image: bytes, settings: BatchSettings, bedrock: Any) -> None:
    if settings.guardrail is None:
        return
    if len(image) > MAX_GUARDED_BYTES:
        # An image the guardrail cannot read is not published unread.
        raise ImageRefused(f"{item.sku}: the image is {len(image)} bytes, above the guardrail's 4 MB")
    identifier, version = settings.guardrail
    try:
        response = bedrock.apply_guardrail(
            guardrailIdentifier=identifier,
            guardrailVersion=version,
            source="OUTPUT",
            content=[{"image": {"format": "png", "source": {"bytes": image}}}],
        )
    except ClientError as error:
        if _code(error) in BUSY:
            raise ModelBusy(f"{item.sku}: guardrail: {_code(error)}") from None
        raise
    coverage = (response.get("guardrailCoverage") or {}).get("images") or {}
    if coverage and coverage.get("guarded", 0) < coverage.get("total", 0):
        raise ImageRefused(f"{item.sku}: the guardrail evaluated no filter on the image")
    if response.get("action") == "GUARDRAIL_INTERVENED":
        raise ImageRefused(f"{item.sku}: the guardrail blocked the image")
