"""The image batch worker: a manifest line checked field by field, the image-to-image request SD3.5
Large documents, the guardrail on the image, the image written under the output prefix; S3 is moto
over HTTP, Bedrock a botocore stub (moto has no InvokeModel for Stability or ApplyGuardrail)."""

from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lambdas.image_batch import handler
from lambdas.image_batch.logic import (
    MAX_PHOTO_BYTES,
    BadItem,
    BatchSettings,
    ImageRefused,
    ModelBusy,
    parse_item,
    process,
    request_body,
)
from tests.lambdas.gateway.test_images import USAGE
from tests.support.moto_server import moto_client, moto_server

REGION = "us-west-2"
BUCKET = "data-bucket"
MODEL = "stability.sd3-5-large-v1:0"
GUARDRAIL = ("arn:aws:bedrock:us-west-2:123456789012:guardrail/abc123", "3")
PHOTO = b"\x89PNG\r\n\x1a\n" + b"supplier photo" * 10
IMAGE = b"\x89PNG\r\n\x1a\n" + b"lifestyle image" * 10
SETTINGS = BatchSettings(
    model_id=MODEL,
    strength=0.7,
    negative_prompt="text, watermark",
    categories={"sofa": "The sofa in a bright living room.", "lamp": "The lamp on a bedside table."},
    input_prefix="batches/input/",
    output_prefix="batches/output/",
    bucket=BUCKET,
    key_id=None,
    price_per_image=0.08,
    guardrail=GUARDRAIL,
)
LINE = {"sku": "SOFA-0042", "image": "batches/input/photos/sofa-0042.png", "category": "sofa", "seed": 7}


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint):
    client = moto_client("s3", s3_endpoint, REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_object(Bucket=BUCKET, Key=LINE["image"], Body=PHOTO)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def bedrock_stub():
    client = boto3.client(
        "bedrock-runtime", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def model_answer(payload: dict) -> dict:
    data = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def expect_generation(stub: Stubber, payload: dict) -> None:
    stub.add_response(
        "invoke_model",
        model_answer(payload),
        {"modelId": MODEL, "contentType": "application/json", "accept": "application/json", "body": ANY},
    )


def expect_guardrail(stub: Stubber, action: str = "NONE", guarded: int = 1) -> None:
    stub.add_response(
        "apply_guardrail",
        {
            "action": action,
            "outputs": [],
            "assessments": [],
            "usage": {**USAGE, "contentPolicyImageUnits": 1},
            "guardrailCoverage": {"images": {"guarded": guarded, "total": 1}},
        },
        {
            "guardrailIdentifier": GUARDRAIL[0],
            "guardrailVersion": GUARDRAIL[1],
            "source": "OUTPUT",
            "content": [{"image": {"format": "png", "source": {"bytes": IMAGE}}}],
        },
    )


GENERATED = {"seeds": [7], "finish_reasons": [None], "images": [base64.b64encode(IMAGE).decode()]}


# --- the manifest line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sku": "sofa 42"}, "sku 'sofa 42': 1-100 letters, digits"),
        ({"image": "documents/faq.png"}, "is not a key under batches/input/"),
        ({"image": "batches/input/../secret.png"}, "is not a key under batches/input/"),
        ({"image": "batches/input/photos/sofa.gif"}, "is not .png, .jpg, .jpeg or .webp"),
        ({"category": "bed"}, "category 'bed' is not one of lamp, sofa"),
        ({"seed": -1}, "seed -1 is not an integer from 0 to 4294967294"),
        ({"seed": True}, "seed True is not an integer"),
        ({"colour": "red"}, "unknown fields colour (allowed: sku, image, category, seed)"),
    ],
)
def test_a_wrong_line_names_its_field_and_what_is_allowed(change, message):
    with pytest.raises(BadItem) as caught:
        parse_item({**LINE, **change}, SETTINGS)
    assert message in str(caught.value)


def test_the_request_is_sd3_5_image_to_image_without_an_aspect_ratio():
    body = request_body(parse_item(LINE, SETTINGS), PHOTO, SETTINGS)
    assert body == {
        "prompt": "The sofa in a bright living room.",
        "mode": "image-to-image",
        "image": base64.b64encode(PHOTO).decode(),
        "strength": 0.7,
        "seed": 7,
        "output_format": "png",
        "negative_prompt": "text, watermark",
    }
    assert "aspect_ratio" not in body  # text-to-image only


# --- one item end to end ---------------------------------------------------------------------------


def test_an_item_becomes_a_guarded_image_under_the_output_prefix(s3):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, GENERATED)
    expect_guardrail(stub)
    with stub:
        result = process(LINE, run="catalogue-2026-12", settings=SETTINGS, s3=s3, bedrock=bedrock)
    stub.assert_no_pending_responses()
    assert result.as_dict() == {
        "sku": "SOFA-0042",
        "category": "sofa",
        "source": LINE["image"],
        "output": "batches/output/images/catalogue-2026-12/SOFA-0042.png",
        "seed": 7,
        "cost_usd": 0.08,
    }
    stored = s3.get_object(Bucket=BUCKET, Key=result.output)
    assert stored["Body"].read() == IMAGE
    assert stored["ContentType"] == "image/png"
    assert stored["Metadata"] == {
        "sku": "SOFA-0042",
        "category": "sofa",
        "source": LINE["image"],
        "seed": "7",
    }


def test_a_missing_photo_is_a_bad_line_and_nothing_is_called(s3):
    bedrock, stub = bedrock_stub()
    with stub, pytest.raises(BadItem, match="does not exist"):
        process(
            {**LINE, "image": "batches/input/photos/none.png"},
            run="r",
            settings=SETTINGS,
            s3=s3,
            bedrock=bedrock,
        )


def test_a_photo_too_large_for_an_invoke_model_body_is_refused_before_the_call(s3):
    s3.put_object(Bucket=BUCKET, Key="batches/input/photos/huge.png", Body=b"0" * (MAX_PHOTO_BYTES + 1))
    bedrock, stub = bedrock_stub()
    with stub, pytest.raises(BadItem, match="fit an InvokeModel body"):
        process(
            {**LINE, "image": "batches/input/photos/huge.png"},
            run="r",
            settings=SETTINGS,
            s3=s3,
            bedrock=bedrock,
        )


@pytest.mark.parametrize(
    ("reason", "error"),
    [("Filter reason: input image", ImageRefused), ("Inference error", ModelBusy)],
)
def test_the_model_s_finish_reason_refuses_or_retries(s3, reason, error):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, {"seeds": [7], "finish_reasons": [reason], "images": []})
    with stub, pytest.raises(error, match=reason):
        process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="batches/output/")


def test_throttling_is_model_busy_and_a_validation_error_is_a_bad_line(s3):
    bedrock, stub = bedrock_stub()
    stub.add_client_error("invoke_model", "ThrottlingException", "Too many requests", 429)
    stub.add_client_error("invoke_model", "ValidationException", "image too small", 400)
    with stub:
        with pytest.raises(ModelBusy, match="ThrottlingException"):
            process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)
        with pytest.raises(BadItem, match="refused the request: image too small"):
            process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)


@pytest.mark.parametrize(("action", "guarded"), [("GUARDRAIL_INTERVENED", 1), ("NONE", 0)])
def test_an_image_the_guardrail_blocks_or_did_not_read_is_not_written(s3, action, guarded):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, GENERATED)
    expect_guardrail(stub, action=action, guarded=guarded)
    with stub, pytest.raises(ImageRefused):
        process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="batches/output/")


# --- handler ---------------------------------------------------------------------------------------


def test_the_handler_counts_images_and_their_cost(s3, capsys):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, GENERATED)
    expect_guardrail(stub)
    with stub:
        result = handler.handle({"item": LINE, "run": "batch-1"}, SETTINGS, s3, bedrock)
    assert result["output"] == "batches/output/images/batch-1/SOFA-0042.png"
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metrics,) = documents
    assert metrics["ImagesGenerated"] == [1.0]  # one value each, as Powertools writes them
    assert metrics["EstimatedCost"] == [0.08]
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == handler.NAMESPACE


def test_the_handler_counts_a_refusal_and_re_raises_it_by_name(s3, capsys):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, {"seeds": [0], "finish_reasons": ["Filter reason: prompt"], "images": []})
    with stub, pytest.raises(ImageRefused):
        handler.handle({"item": LINE, "run": "batch-1"}, SETTINGS, s3, bedrock)
    out = capsys.readouterr().out
    assert '"ImagesRefused"' in out
    with pytest.raises(BadItem, match="'run'"):
        handler.handle({"item": LINE}, SETTINGS, s3, bedrock)


def test_the_settings_come_from_the_environment_as_the_stack_writes_them():
    settings = handler.load_settings(
        json.dumps(
            {
                "model_id": MODEL,
                "strength": 0.5,
                "categories": {"sofa": "x"},
                "input_prefix": "batches/input/",
                "output_prefix": "batches/output/",
                "bucket": BUCKET,
                "key_id": "arn:aws:kms:us-west-2:123456789012:key/k",
                "price_per_image": 0.08,
                "guardrail": list(GUARDRAIL),
            }
        )
    )
    assert settings.guardrail == GUARDRAIL
    assert settings.negative_prompt == ""
    with pytest.raises(RuntimeError, match="BATCH is not set"):
        handler.load_settings(None)


def test_other_client_errors_are_not_disguised(s3):
    bedrock, stub = bedrock_stub()
    stub.add_client_error("invoke_model", "AccessDeniedException", "no access", 403)
    with stub, pytest.raises(ClientError, match="AccessDeniedException"):
        process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)


def test_a_line_without_a_seed_records_the_seed_the_model_picked(s3):
    bedrock, stub = bedrock_stub()
    expect_generation(stub, {**GENERATED, "seeds": [2130420379]})  # seed 0 asks for a random one
    expect_guardrail(stub)
    line = {key: value for key, value in LINE.items() if key != "seed"}
    with stub:
        result = process(line, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)
    assert result.seed == 2130420379
    assert s3.head_object(Bucket=BUCKET, Key=result.output)["Metadata"]["seed"] == "2130420379"


@pytest.mark.parametrize(
    "code", ["ModelTimeoutException", "ServiceQuotaExceededException", "ServiceUnavailableException"]
)
def test_the_model_s_retryable_errors_are_model_busy(s3, code):
    bedrock, stub = bedrock_stub()
    stub.add_client_error("invoke_model", code, "later", 429)
    with stub, pytest.raises(ModelBusy, match=code):
        process(LINE, run="r", settings=SETTINGS, s3=s3, bedrock=bedrock)


def test_a_photo_the_role_may_not_read_is_a_bad_line_not_a_crash():
    class Forbidden:
        def head_object(self, **_):
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    bedrock, stub = bedrock_stub()
    with stub, pytest.raises(BadItem, match="does not exist or cannot be read"):
        process(LINE, run="r", settings=SETTINGS, s3=Forbidden(), bedrock=bedrock)
