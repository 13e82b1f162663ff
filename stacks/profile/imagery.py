"""Image batches: a Step Functions map over a manifest of product photos, image-to-image on Bedrock."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from genai_stack.profile.common import S3_PREFIX, Slug, _Strict, located, prefixes_overlap

# The Bedrock image models whose request the batch worker builds for image-to-image
# (lambdas/image_batch/logic.py): Stable Diffusion 3.5 Large takes `mode: image-to-image` with `image`
# and `strength` (Bedrock user guide, "Stability.ai Stable Diffusion 3.5 Large":
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html).
IMAGE_TO_IMAGE_MODELS = ("stability.sd3-5-large-v1:0",)


class ImageBatch(_Strict):
    """Batches of supplier photos turned into lifestyle images: one manifest line per product, the
    scene's prompt per product category (docs/profiles/product-imagery.md, Batches)."""

    model: str = Field(
        default="stability.sd3-5-large-v1:0",
        description=f"image-to-image model, listed under bedrock.models ({', '.join(IMAGE_TO_IMAGE_MODELS)})",
    )
    categories: dict[Slug, Annotated[str, Field(min_length=1, max_length=10_000)]] = Field(
        min_length=1, max_length=100, description="product category -> the scene prompt its photos get"
    )
    strength: float = Field(
        default=0.65, ge=0, le=1, description="0 keeps the photo, 1 ignores it (the model's strength)"
    )
    negative_prompt: str = Field(default="", max_length=10_000, description="what no image may show")
    input_prefix: str = Field(
        default="batches/input/", pattern=S3_PREFIX, description="data bucket prefix of manifests and photos"
    )
    output_prefix: str = Field(
        default="batches/output/", pattern=S3_PREFIX, description="data bucket prefix of images and results"
    )
    max_concurrency: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="items at once; keep it within the model's InvokeModel requests-per-minute quota",
    )
    tolerated_failure_percent: float = Field(
        default=5, ge=0, le=100, description="share of items that may fail before the batch fails"
    )
    item_timeout_seconds: int = Field(default=120, ge=30, le=900)

    @model_validator(mode="after")
    def _checks(self) -> ImageBatch:
        problems = []
        if self.model not in IMAGE_TO_IMAGE_MODELS:
            problems.append(
                located(
                    "model",
                    f"{self.model!r} has no image-to-image request here; allowed: "
                    f"{', '.join(IMAGE_TO_IMAGE_MODELS)}",
                )
            )
        if prefixes_overlap(self.input_prefix, self.output_prefix):
            problems.append(
                located(
                    "output_prefix",
                    f"{self.output_prefix!r} overlaps input_prefix {self.input_prefix!r}: results would be "
                    "read as photos",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self
