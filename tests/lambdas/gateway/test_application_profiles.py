"""Bedrock targets invoke their application inference profile (GATEWAY_CONFIG `invoke`), so the
spend carries the profile's cost-allocation tag (on-demand calls are tagged only through application
inference profiles: Bedrock user guide, inference-profiles.html); the target keeps its model's name
in metrics, prices and the response."""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from pydantic import ValidationError

from lambdas.gateway.config import Settings, build_gateway
from tests.lambdas.gateway.fakes import RecordingMetrics
from tests.support.stubs import offline_client, stubbed

CHAT_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/chatprof1234"
EMBED_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/embprof12345"
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1000, "outputTokens": 500, "totalTokens": 1500},
    "metrics": {"latencyMs": 10},
}


def gateway():
    settings = Settings.model_validate(
        {
            "chat": {"copy": [{"kind": "bedrock", "model": "amazon.nova-lite-v1:0", "invoke": CHAT_ARN}]},
            "embeddings": {
                "embed": {"kind": "bedrock", "model": "amazon.titan-embed-text-v2:0", "invoke": EMBED_ARN}
            },
            "prices": {"bedrock:amazon.nova-lite-v1:0": [0.00006, 0.00024]},
        }
    )
    runtime = offline_client("bedrock-runtime")
    return build_gateway(settings, lambda service: runtime), runtime


def test_chat_calls_bedrock_with_the_application_profile_arn_and_prices_the_model():
    gw, runtime = gateway()
    metrics = RecordingMetrics()
    expected = {
        "modelId": CHAT_ARN,
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "inferenceConfig": {"temperature": 1.0, "maxTokens": 4096},
    }
    with stubbed(runtime) as stub:
        stub.add_response("converse", CONVERSE, expected)
        response, headers = gw.chat(
            {"model": "copy", "messages": [{"role": "user", "content": "Hello"}]},
            tenant="t",
            metrics=metrics,
        )
    ((usage, _),) = metrics.records
    assert usage.target == "bedrock:amazon.nova-lite-v1:0"  # metrics name the model, not the ARN
    assert usage.cost_usd == pytest.approx((1000 * 0.00006 + 500 * 0.00024) / 1000)
    assert headers["x-genai-target"] == "bedrock:amazon.nova-lite-v1:0"
    assert CHAT_ARN not in json.dumps(response)


def test_embeddings_call_bedrock_with_the_application_profile_arn():
    gw, runtime = gateway()
    raw = json.dumps({"embedding": [0.1], "inputTextTokenCount": 2}).encode()
    with stubbed(runtime) as stub:
        stub.add_response(
            "invoke_model",
            {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"},
            {
                "modelId": EMBED_ARN,
                "body": json.dumps({"inputText": "ab"}),
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
        gw.embeddings({"model": "embed", "input": "ab"}, tenant="t", metrics=RecordingMetrics())


def test_only_bedrock_targets_name_an_application_profile():
    with pytest.raises(ValidationError, match="no application inference profile"):
        Settings.model_validate({"chat": {"x": [{"kind": "sagemaker", "endpoint": "e", "invoke": CHAT_ARN}]}})
