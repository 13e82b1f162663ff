"""Image aliases on a SageMaker asynchronous endpoint: the official openai SDK's images.generate against
the locally served handler; the request body goes to a moto S3 server over HTTP, and a fake
sagemaker-runtime (every call checked against botocore's model) plays the endpoint: it answers at
once, after a while, never (an endpoint starting from zero instances) or with a failure."""

from __future__ import annotations

import base64
import importlib
import json
import threading
import uuid
from typing import Any

import boto3
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.images import EndpointImages
from lambdas.gateway.local import serve
from tests.lambdas.gateway.conftest import moto_client
from tests.lambdas.gateway.fakes import RecordingMetrics
from tests.lambdas.gateway.test_images import PNG, FakeBedrock

SAGEMAKER = boto3.session.Session(region_name="us-west-2").client("sagemaker-runtime").meta.service_model
ENDPOINT = "product-imagery-brand-sdxl"
PREFIX = f"async/{ENDPOINT}/input/gateway/"


class FakeEndpoint:
    """InvokeEndpointAsync as SageMaker answers it; `mode` says what the endpoint then does with the
    queued request: "answer" writes the images to the output location, "fail" a failure, "cold"
    nothing (no instance yet)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.calls: list[dict] = []
        self.bodies: list[dict] = []
        self.mode = "answer"
        self.delay = 0.0

    def invoke_endpoint_async(self, **call: Any) -> dict:
        validate_parameters(call, SAGEMAKER.operation_model("InvokeEndpointAsync").input_shape)
        self.calls.append(call)
        bucket, _, key = call["InputLocation"].removeprefix("s3://").partition("/")
        self.bodies.append(json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        inference = uuid.uuid4().hex  # the moto server outlives a test: every answer has its own key
        output = f"s3://{bucket}/async/{ENDPOINT}/output/{inference}.out"
        failure = f"s3://{bucket}/async/{ENDPOINT}/failure/{inference}-error.out"
        body = self.bodies[-1]
        if self.mode == "answer":
            answer = json.dumps({"images": [base64.b64encode(PNG).decode()] * body["num_images"]})
            self._later(output, answer.encode())
        elif self.mode == "fail":
            self._later(failure, b"CUDA out of memory")
        response = {
            "InferenceId": f"id-{len(self.calls)}",
            "OutputLocation": output,
            "FailureLocation": failure,
        }
        validate_parameters(response, SAGEMAKER.operation_model("InvokeEndpointAsync").output_shape)
        return response

    def _later(self, location: str, data: bytes) -> None:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        write = lambda: self.s3.put_object(Bucket=bucket, Key=key, Body=data)  # noqa: E731 - a one-line callback
        if self.delay:
            threading.Timer(self.delay, write).start()  # the endpoint answers while the gateway polls
        else:
            write()


class WithoutListBucketOnGet:
    """The artifacts bucket as IAM makes it look to the gateway role: a GetObject of a missing key is
    a 403 AccessDenied, not a 404, since the role's s3:ListBucket is limited to prefixes (Amazon S3
    API reference, GetObject); moto enforces no IAM, so this wrapper does."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.gets: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_object(self, **call: Any) -> dict:
        self.gets.append(call["Key"])
        listed = self.client.list_objects_v2(Bucket=call["Bucket"], Prefix=call["Key"], MaxKeys=1)
        if not listed.get("KeyCount"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        return self.client.get_object(**call)


@pytest.fixture
def s3(moto_endpoint):
    client = moto_client(moto_endpoint, "s3", config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="artifacts")
    client.create_bucket(Bucket="data")
    return client


@pytest.fixture
def endpoint(s3):
    return FakeEndpoint(s3)


@pytest.fixture
def bedrock():
    return FakeBedrock()


@pytest.fixture
def served(monkeypatch, s3, endpoint, bedrock):
    monkeypatch.setenv("GATEWAY_CONFIG", json.dumps({"chat": {"a": [{"kind": "bedrock", "model": "m"}]}}))
    monkeypatch.setattr(EndpointImages, "poll_seconds", 0.05)
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    server = serve(module.on_event)
    metrics = RecordingMetrics()

    def use(*, fallback: bool = False, wait_seconds: float = 2, gateway_s3: Any = None):
        alias: dict[str, Any] = {
            "endpoint": {
                "endpoint": ENDPOINT,
                "bucket": "artifacts",
                "input_prefix": PREFIX,
                "key_id": "alias/platform",
                "wait_seconds": wait_seconds,
            }
        }
        if fallback:
            alias |= {"fallback": "stability.sd3-5-large-v1:0", "fallback_price_per_image": 0.08}
        settings = {"images": {"brand": alias}, "guardrail": {"identifier": "gr", "version": "1"}}
        clients = {"s3": gateway_s3 or s3, "sagemaker-runtime": endpoint, "bedrock-runtime": bedrock}
        gateway = build_gateway(Settings.model_validate(settings), lambda service: clients[service])
        module.gateway = lambda: gateway
        module.EmfMetrics = lambda: metrics
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return openai.OpenAI(base_url=url, api_key="local", max_retries=0)

    use.metrics = metrics
    yield use
    server.shutdown()


def test_the_endpoint_makes_the_images_from_a_request_it_reads_from_s3(served, endpoint, bedrock, s3):
    client = served()
    result = client.images.generate(
        model="brand", prompt="a sofa in a bright room", n=2, size="1152x768", response_format="b64_json"
    )
    assert [base64.b64decode(d.b64_json) for d in result.data] == [PNG, PNG]
    (call,) = endpoint.calls
    assert call["EndpointName"] == ENDPOINT
    assert call["InputLocation"].startswith(f"s3://artifacts/{PREFIX}")
    assert call["RequestTTLSeconds"] == 900  # queued long enough to start an instance from zero
    assert endpoint.bodies == [
        {"prompt": "a sofa in a bright room", "width": 1152, "height": 768, "num_images": 2}
    ]
    key = call["InputLocation"].removeprefix("s3://artifacts/")
    assert s3.head_object(Bucket="artifacts", Key=key)["ServerSideEncryption"] == "aws:kms"
    # The guardrail read the prompt and both images; the endpoint costs nothing per image.
    assert [c["source"] for c in bedrock.guardrail_checks] == ["INPUT", "OUTPUT", "OUTPUT"]
    usage, _ = served.metrics.records[-1]
    assert usage.target == f"sagemaker:{ENDPOINT}"
    assert usage.cost_usd == 0


def test_an_answer_that_takes_a_few_seconds_is_waited_for(served, endpoint):
    endpoint.delay = 0.5
    result = served().images.generate(model="brand", prompt="a lamp", response_format="b64_json")
    assert base64.b64decode(result.data[0].b64_json) == PNG


def test_an_endpoint_at_zero_instances_is_a_504_that_says_so_and_is_asked_once(served, endpoint):
    endpoint.mode = "cold"
    with pytest.raises(openai.APIStatusError) as caught:
        served(wait_seconds=0.5).images.generate(model="brand", prompt="a lamp", response_format="b64_json")
    assert caught.value.status_code == 504
    assert "scales from zero instances when idle" in caught.value.message
    assert len(endpoint.calls) == 1  # a second attempt would queue the same images twice


def test_the_fallback_answers_while_the_endpoint_starts_and_costs_its_price(served, endpoint, bedrock):
    endpoint.mode = "cold"
    result = served(fallback=True, wait_seconds=0.5).images.generate(
        model="brand", prompt="a lamp", size="1024x1024", response_format="b64_json"
    )
    assert base64.b64decode(result.data[0].b64_json) == PNG
    assert json.loads(bedrock.calls[0]["body"])["aspect_ratio"] == "1:1"
    usage, _ = served.metrics.records[-1]
    assert usage.target == "bedrock:stability.sd3-5-large-v1:0"
    assert usage.cost_usd == pytest.approx(0.08)


def test_a_failed_invocation_falls_back_or_is_a_502_with_the_endpoint_s_reason(served, endpoint):
    endpoint.mode = "fail"
    with pytest.raises(openai.APIStatusError) as caught:
        served().images.generate(model="brand", prompt="a lamp", response_format="b64_json")
    assert caught.value.status_code == 502
    assert "CUDA out of memory" in caught.value.message
    assert served(fallback=True).images.generate(model="brand", prompt="a lamp").data


def test_sizes_the_endpoint_does_not_make_are_refused_before_anything_is_queued(served, endpoint):
    with pytest.raises(openai.BadRequestError) as caught:
        served().images.generate(model="brand", prompt="a lamp", size="1792x1024")
    assert "size '1792x1024' is not supported" in caught.value.message
    assert "1024x1024, 1152x768" in caught.value.message
    assert endpoint.calls == []


def test_an_alias_names_a_model_or_an_endpoint_and_a_fallback_only_after_an_endpoint():
    endpoint = {"endpoint": ENDPOINT, "bucket": "artifacts", "input_prefix": PREFIX, "wait_seconds": 10}
    with pytest.raises(ValueError, match="exactly one of model or endpoint"):
        Settings.model_validate(
            {"images": {"x": {"model": "stability.sd3-5-large-v1:0", "endpoint": endpoint}}}
        )
    with pytest.raises(ValueError, match="a fallback follows an endpoint only"):
        Settings.model_validate(
            {
                "images": {
                    "x": {"model": "stability.sd3-5-large-v1:0", "fallback": "stability.sd3-5-large-v1:0"}
                }
            }
        )


def test_waiting_for_the_answer_never_reads_a_key_that_is_not_there_yet(served, endpoint, s3):
    """A GetObject of a missing key would be a 403 for the gateway role: the answer is looked for with
    ListObjectsV2 first, so a slow endpoint is waited for and a cold one falls back."""
    strict = WithoutListBucketOnGet(s3)
    endpoint.delay = 0.5
    result = served(gateway_s3=strict).images.generate(
        model="brand", prompt="a lamp", response_format="b64_json"
    )
    assert base64.b64decode(result.data[0].b64_json) == PNG
    assert len(strict.gets) == 1  # the answer, once it was there
    endpoint.mode = "cold"
    fallen_back = served(fallback=True, wait_seconds=0.5, gateway_s3=strict).images.generate(
        model="brand", prompt="a lamp", response_format="b64_json"
    )
    assert fallen_back.data


def test_a_request_must_suit_the_fallback_too_so_nothing_asked_for_is_dropped(served, endpoint):
    with pytest.raises(openai.BadRequestError) as caught:
        served(fallback=True).images.generate(model="brand", prompt="a lamp", n=2)
    assert caught.value.body["param"] == "n"
    assert "makes at most 1 image per request" in caught.value.message
    assert endpoint.calls == []


def test_the_gateway_page_gives_the_endpoint_alias_s_figures_the_code_uses():
    """docs/gateway.md's endpoint paragraph: the wait reserves, the queue TTL, the sizes, n and prompt
    length, as lambdas/gateway/images.py and stacks/orchestration_stack.py have them."""
    from genai_stack.orchestration_stack import AFTER_IMAGE_SECONDS, FALLBACK_SECONDS
    from lambdas.gateway.images import ENDPOINT_IMAGES, REQUEST_TTL_SECONDS
    from tests.support import REPO_ROOT

    page = " ".join((REPO_ROOT / "docs" / "gateway.md").read_text(encoding="utf-8").split())
    assert f"the deadline less {FALLBACK_SECONDS:g} s with a fallback" in page
    assert f"the deadline less {AFTER_IMAGE_SECONDS:g} s without one" in page
    assert f"(`RequestTTLSeconds` {REQUEST_TTL_SECONDS})" in page
    assert f"are {', '.join(ENDPOINT_IMAGES.sizes)} (SDXL's" in page
    assert (
        f"`n` up to {ENDPOINT_IMAGES.max_images} and prompts up to {ENDPOINT_IMAGES.max_prompt_chars:,}"
        in page
    )


def test_invoke_errors_are_classified_as_every_aws_error_of_the_gateway(served, endpoint):
    """InvokeEndpointAsync's errors go through providers/aws_errors.py: throttling falls back, a
    ValidationException is the caller's 400, an AccessDenied (our configuration) a 502."""

    def fail(code: str, status: int):
        def invoke(**call):
            raise ClientError(
                {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                "InvokeEndpointAsync",
            )

        return invoke

    endpoint.invoke_endpoint_async = fail("ThrottlingException", 429)
    assert served(fallback=True).images.generate(model="brand", prompt="a lamp").data
    endpoint.invoke_endpoint_async = fail("ValidationException", 400)
    with pytest.raises(openai.BadRequestError):
        served().images.generate(model="brand", prompt="a lamp")
    endpoint.invoke_endpoint_async = fail("AccessDeniedException", 403)
    with pytest.raises(openai.APIStatusError) as caught:
        served(fallback=True).images.generate(model="brand", prompt="a lamp")
    assert caught.value.status_code == 502
