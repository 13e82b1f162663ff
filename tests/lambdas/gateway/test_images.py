"""POST /v1/images/generations: the official openai SDK's images.generate against the locally served
handler, with a fake Bedrock (every call checked against botocore's model) and a moto S3 server over
HTTP for url responses (the pre-signed URL is fetched and its bytes compared)."""

from __future__ import annotations

import base64
import importlib
import io
import json
import urllib.request
from typing import Any

import boto3
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.local import serve
from tests.lambdas.gateway.conftest import moto_client
from tests.lambdas.gateway.fakes import RecordingMetrics

SESSION = boto3.session.Session(region_name="us-west-2")
RUNTIME = SESSION.client("bedrock-runtime").meta.service_model
PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes"
SD35 = "stability.sd3-5-large-v1:0"
CANVAS = "amazon.nova-canvas-v1:0"


def valid(operation: str, call: dict) -> dict:
    validate_parameters(call, RUNTIME.operation_model(operation).input_shape)
    return call


def answer(operation: str, response: dict) -> dict:
    """A fake's response, checked against the API model's output shape (as botocore's Stubber does):
    the fake answers only what AWS can."""
    validate_parameters(response, RUNTIME.operation_model(operation).output_shape)
    return response


USAGE = {
    "topicPolicyUnits": 0,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 0,
    "sensitiveInformationPolicyUnits": 0,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}


class FakeBedrock:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.guardrail_checks: list[dict] = []
        self.script: list[Any] = []  # per invoke_model: an exception, or a response payload
        self.block: set[str] = set()  # sources whose check intervenes
        self.unguarded_images = 0  # images the guardrail reports it did not evaluate

    def invoke_model(self, **call):
        self.calls.append(valid("InvokeModel", call))
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, Exception):
            raise outcome
        body = json.loads(call["body"])
        count = body.get("imageGenerationConfig", {}).get("numberOfImages", 1)
        payload = outcome or {"images": [base64.b64encode(PNG).decode()] * count, "finish_reasons": [None]}
        return {"body": io.BytesIO(json.dumps(payload).encode()), "contentType": "application/json"}

    def apply_guardrail(self, **call):
        self.guardrail_checks.append(valid("ApplyGuardrail", call))
        if call["source"] in self.block:
            return answer(
                "ApplyGuardrail",
                {
                    "usage": USAGE,
                    "action": "GUARDRAIL_INTERVENED",
                    "outputs": [{"text": "Sorry, that is not allowed."}],
                    "assessments": [],
                },
            )
        images = sum(1 for block in call["content"] if "image" in block)
        coverage = {"images": {"guarded": images - self.unguarded_images, "total": images}} if images else {}
        return answer(
            "ApplyGuardrail",
            {
                "usage": USAGE,
                "action": "NONE",
                "outputs": [],
                "assessments": [],
                "guardrailCoverage": coverage,
            },
        )


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "InvokeModel")


@pytest.fixture
def s3(moto_endpoint):
    client = moto_client(moto_endpoint, "s3", config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="data")
    return client


@pytest.fixture
def bedrock():
    return FakeBedrock()


@pytest.fixture
def served(monkeypatch, bedrock, s3):
    """The handler served over HTTP with a gateway of our fakes; returns an openai client."""
    monkeypatch.setenv("GATEWAY_CONFIG", json.dumps({"chat": {"a": [{"kind": "bedrock", "model": "m"}]}}))
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    server = serve(module.on_event)
    metrics = RecordingMetrics()

    def use(*, guardrail: bool = False, store: bool = True, model: str = SD35):
        settings: dict[str, Any] = {"images": {"painter": {"model": model, "price_per_image": 0.08}}}
        if guardrail:
            settings["guardrail"] = {"identifier": "gr", "version": "1"}
        if store:
            settings["image_store"] = {"bucket": "data", "key_id": "alias/platform", "url_seconds": 900}
        clients = {"bedrock-runtime": bedrock, "s3": s3}
        gateway = build_gateway(Settings.model_validate(settings), lambda service: clients[service])
        module.gateway = lambda: gateway
        module.EmfMetrics = lambda: metrics
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return openai.OpenAI(base_url=url, api_key="local", max_retries=0)

    use.metrics = metrics
    yield use
    server.shutdown()


def test_b64_json_images_from_stable_diffusion_with_cost_per_image(served, bedrock):
    client = served()
    result = client.images.generate(
        model="painter", prompt="a red bicycle", size="1024x1024", response_format="b64_json", user="u-1"
    )
    assert base64.b64decode(result.data[0].b64_json) == PNG
    body = json.loads(bedrock.calls[0]["body"])
    assert bedrock.calls[0]["modelId"] == SD35
    assert body == {
        "prompt": "a red bicycle",
        "mode": "text-to-image",
        "aspect_ratio": "1:1",
        "output_format": "png",
    }
    usage, _tenant = served.metrics.records[-1]
    assert usage.alias == "painter"
    assert usage.cost_usd == pytest.approx(0.08)
    assert usage.user
    assert usage.user != "u-1"


def test_size_picks_the_aspect_ratio(served, bedrock):
    client = served()
    client.images.generate(
        model="painter", prompt="a red bicycle", size="1792x1008", response_format="b64_json"
    )
    assert json.loads(bedrock.calls[0]["body"])["aspect_ratio"] == "16:9"


def test_url_images_are_stored_encrypted_under_the_prefix_and_presigned(served, bedrock, s3):
    client = served()
    result = client.images.generate(model="painter", prompt="a red bicycle", response_format="url")
    url = result.data[0].url
    assert "/data/gateway-images/" in url
    assert "X-Amz-Expires=900" in url
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback moto server
        assert response.read() == PNG
    key = s3.list_objects_v2(Bucket="data", Prefix="gateway-images/")["Contents"][0]["Key"]
    head = s3.head_object(Bucket="data", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ContentType"] == "image/png"


def test_url_is_the_default_with_a_store_and_b64_json_without(served):
    assert served().images.generate(model="painter", prompt="a bicycle").data[0].url
    assert served(store=False).images.generate(model="painter", prompt="a bicycle").data[0].b64_json


def test_nova_canvas_body_and_several_images(served, bedrock):
    client = served(model=CANVAS)
    result = client.images.generate(
        model="painter", prompt="a bicycle", n=3, size="1280x720", quality="hd", response_format="b64_json"
    )
    assert len(result.data) == 3
    assert json.loads(bedrock.calls[0]["body"]) == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a bicycle"},
        "imageGenerationConfig": {"numberOfImages": 3, "width": 1280, "height": 720, "quality": "premium"},
    }
    assert served.metrics.records[-1][0].cost_usd == pytest.approx(0.24)


@pytest.mark.parametrize(
    ("kwargs", "param", "words"),
    [
        ({"size": "1000x1000"}, "size", "allowed: 512x512"),
        ({"n": 6}, "n", "at most 5"),
        ({"style": "vivid"}, "style", "not supported"),
        ({"prompt": "x" * 1025}, "prompt", "at most 1024"),
    ],
)
def test_refusals_name_the_parameter(served, bedrock, kwargs, param, words):
    client = served(model=CANVAS)
    body = {"model": "painter", "prompt": "a bicycle", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(**body)
    assert caught.value.body["param"] == param
    assert words in caught.value.body["message"]
    assert bedrock.calls == []


def test_stable_diffusion_makes_one_image_per_request(served, bedrock):
    with pytest.raises(openai.BadRequestError) as caught:
        served().images.generate(model="painter", prompt="a bicycle", n=2)
    assert caught.value.body["param"] == "n"
    assert "at most 1 image" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        served().images.generate(model="painter", prompt="a bicycle", size="1000x300")
    assert "16:9" in caught.value.body["message"]
    assert bedrock.calls == []


def test_the_guardrail_checks_the_prompt_before_the_model(served, bedrock):
    bedrock.block = {"INPUT"}
    with pytest.raises(openai.BadRequestError) as caught:
        served(guardrail=True).images.generate(model="painter", prompt="something bad")
    assert caught.value.body["code"] == "content_policy_violation"
    assert caught.value.body["message"] == "Sorry, that is not allowed."
    assert bedrock.calls == []
    assert bedrock.guardrail_checks[0]["content"] == [{"text": {"text": "something bad"}}]


def test_the_guardrail_checks_each_generated_image(served, bedrock):
    client = served(guardrail=True)
    client.images.generate(model="painter", prompt="a bicycle", response_format="b64_json")
    sources = [c["source"] for c in bedrock.guardrail_checks]
    assert sources == ["INPUT", "OUTPUT"]
    assert bedrock.guardrail_checks[1]["content"][0]["image"]["source"]["bytes"] == PNG
    bedrock.block = {"OUTPUT"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="painter", prompt="a bicycle", response_format="url")
    assert caught.value.body["code"] == "content_policy_violation"


def test_an_image_the_guardrail_did_not_evaluate_is_not_returned(served, bedrock):
    """ApplyGuardrail reports `guarded` below `total` images when no filter read one (GuardrailImageCoverage):
    "not intervened" then says nothing about the image."""
    client = served(guardrail=True)
    bedrock.unguarded_images = 1
    with pytest.raises(openai.InternalServerError) as caught:
        client.images.generate(model="painter", prompt="a bicycle", response_format="b64_json")
    assert caught.value.status_code == 502
    assert "0 of 1 images evaluated" in caught.value.message


def test_a_model_validation_exception_is_a_400_with_its_message(served, bedrock):
    bedrock.script = [client_error("ValidationException", "prompt contains blocked words")]
    with pytest.raises(openai.BadRequestError) as caught:
        served().images.generate(model="painter", prompt="a bicycle")
    assert "prompt contains blocked words" in caught.value.body["message"]
    assert caught.value.body["code"] == "model_rejected_request"


def test_a_filtered_stable_diffusion_answer_is_a_400(served, bedrock):
    bedrock.script = [{"finish_reasons": ["Filter reason: prompt"]}]
    with pytest.raises(openai.BadRequestError) as caught:
        served().images.generate(model="painter", prompt="a bicycle")
    assert "Filter reason: prompt" in caught.value.body["message"]


def test_a_stable_diffusion_inference_error_is_retried_then_a_502(served, bedrock):
    """SD3.5's finish_reasons "Inference error" is the model failing, not the caller's prompt."""
    bedrock.script = [{"finish_reasons": ["Inference error"]}] * 2
    with pytest.raises(openai.APIStatusError) as caught:
        served().images.generate(model="painter", prompt="a bicycle")
    assert caught.value.status_code == 502
    assert len(bedrock.calls) == 2  # retried within the deadline


def test_throttling_is_a_429_with_retry_after(served, bedrock):
    bedrock.script = [client_error("ThrottlingException", "slow down")] * 2
    with pytest.raises(openai.RateLimitError) as caught:
        served().images.generate(model="painter", prompt="a bicycle")
    assert caught.value.response.headers["retry-after"]


def test_image_aliases_are_listed(served):
    client = served()
    assert [m.id for m in client.models.list()] == ["painter"]
    assert client.models.retrieve("painter").id == "painter"


def test_settings_refuse_a_model_the_gateway_cannot_map():
    with pytest.raises(ValueError, match="not an image model the gateway maps"):
        Settings.model_validate({"images": {"p": {"model": "amazon.titan-image-generator-v1"}}})
