"""The image batch worker (lambdas/image_batch): for one manifest line, HeadObject and GetObject of the
photo under the input prefix, InvokeModel of the image-to-image model, ApplyGuardrail on the image,
PutObject of the image under the output prefix (logic.py process).

- HeadObject is authorized as s3:GetObject; with s3:ListBucket on the bucket a missing key answers
  404 instead of 403 (Amazon S3 API reference, HeadObject), which is why the role lists the input
  prefix (Service Authorization Reference, Amazon S3:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
- InvokeModel on the foundation model's ARN, without a guardrail (Bedrock documents no guarded
  InvokeModel for image models); the guardrail checks the image with ApplyGuardrail
  (rows/bedrock_arns.py apply_guardrail_rows).
"""

from __future__ import annotations

import json

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.bedrock_arns import apply_guardrail_rows, foundation_model, guardrail
from tests.access.rows.s3_objects import denied_object, get_object, list_objects, put_object

PACKAGE = "image_batch"
HANDLERS = ("lambdas.image_batch.handler.on_event",)
APIS = frozenset(
    {
        "s3.HeadObject",
        "s3.GetObject",
        "s3.PutObject",
        "bedrock-runtime.InvokeModel",
        "bedrock-runtime.ApplyGuardrail",
    }
)


def rows(function: Function, deployment: Deployment) -> list[Call]:
    batch = json.loads(function.environment["BATCH"])
    bucket, photos, images = batch["bucket"], batch["input_prefix"], batch["output_prefix"]
    photo = f"{photos}photos/sofa-0042.png"
    image = f"{images}images/catalogue-2026-12/SOFA-0042.png"
    rail = guardrail(deployment, *batch["guardrail"])
    return [
        *list_objects(
            deployment, bucket, f"{photos}photos/sofa-0042.png", "HeadObject answers 404", api=None
        ),
        *get_object(deployment, bucket, photo, "logic.py process: HeadObject", api="s3.HeadObject"),
        *get_object(deployment, bucket, photo, "logic.py process: the photo"),
        Call(
            "bedrock:InvokeModel",
            foundation_model(deployment, batch["model_id"]),
            "logic.py _generate: image-to-image",
            api="bedrock-runtime.InvokeModel",
        ),
        *apply_guardrail_rows(deployment, rail, api="bedrock-runtime.ApplyGuardrail"),
        *put_object(deployment, bucket, image, "logic.py process: the image"),
        denied_object(deployment, "s3:PutObject", bucket, photo, "the photos are read-only"),
        denied_object(deployment, "s3:GetObject", bucket, "gateway-images/t/a.png", "only the input prefix"),
        denied_object(deployment, "s3:PutObject", bucket, "documents/faq.pdf", "only the output prefix"),
        Call(
            "bedrock:InvokeModel",
            foundation_model(deployment, "amazon.nova-lite-v1:0"),
            "no other model",
            expect="deny",
        ),
    ]
