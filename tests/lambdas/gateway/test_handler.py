"""The handler end to end: the official openai client against the locally served gateway, raw HTTP
for bad requests, and property-based bodies that must never produce a 5xx of ours."""

from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.request

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.gateway.local import event_for, serve
from lambdas.gateway.service import Gateway
from tests.lambdas.gateway.fakes import FixedEmbeddings, ScriptedChat, answer

CONFIG = {
    "chat": {"copywriter": [{"kind": "bedrock", "model": "amazon.nova-lite-v1:0"}]},
    "embeddings": {"embedder": {"kind": "bedrock", "model": "amazon.titan-embed-text-v2:0"}},
    "max_body_bytes": 2000,
}


@pytest.fixture(scope="module")
def handler_module():
    import os

    previous = os.environ.get("GATEWAY_CONFIG")
    os.environ["GATEWAY_CONFIG"] = json.dumps(CONFIG)
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    stubbed = Gateway(
        chat_routes={
            "copywriter": [ScriptedChat("bedrock:amazon.nova-lite-v1:0", answer("Save more this spring."))]
        },
        embedding_routes={"embedder": FixedEmbeddings()},
    )
    module.gateway = lambda: stubbed
    yield module
    if previous is None:
        os.environ.pop("GATEWAY_CONFIG", None)
    else:
        os.environ["GATEWAY_CONFIG"] = previous


@pytest.fixture(scope="module")
def base_url(handler_module):
    server = serve(handler_module.on_event)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key="local-test-key", max_retries=0)


def test_the_openai_client_completes_a_chat(client):
    completion = client.chat.completions.create(
        model="copywriter", messages=[{"role": "user", "content": "A slogan for savings"}], temperature=0
    )
    assert completion.choices[0].message.content == "Save more this spring."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 15


def test_the_openai_client_gets_embeddings(client):
    result = client.embeddings.create(model="embedder", input=["hello", "hi"], dimensions=2)
    assert [d.embedding for d in result.data] == [[5.0, 5.0], [2.0, 2.0]]


def test_the_openai_client_lists_the_aliases(client):
    assert sorted(m.id for m in client.models.list()) == ["copywriter", "embedder"]


def test_the_openai_client_retrieves_one_model_and_gets_404_for_another(client):
    assert client.models.retrieve("embedder").id == "embedder"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.body["code"] == "model_not_found"


def test_token_id_embedding_input_is_refused_with_what_to_do_instead(client):
    """OpenAI-tokenized ids cannot be turned back into text for the profile's models: LangChain's
    default (check_embedding_ctx_length) sends them; the error says how to send text."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="embedder", input=[[15339, 1917]])
    assert "check_embedding_ctx_length=False" in caught.value.body["message"]


def test_the_openai_client_receives_proper_errors(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="copywriter", messages=[{"role": "wizard", "content": "x"}])
    assert caught.value.body["param"] == "messages.0.role"
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(
            model="copywriter", messages=[{"role": "user", "content": "x"}], max_tokens=10**6
        )


TOOL = {
    "type": "function",
    "function": {
        "name": "rate",
        "parameters": {"type": "object", "properties": {"term": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    ("options", "param"),
    [
        # Not implemented by the gateway at all:
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        # Implemented, but not by this alias's Bedrock target (tests/lambdas/gateway/test_features.py):
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_a_parameter_the_gateway_does_not_implement_is_refused_by_name_not_dropped(client, options, param):
    """A tool call answered as empty content, or a JSON schema ignored, looks like success to the caller:
    the gateway names what it will not honour instead."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="copywriter", messages=[{"role": "user", "content": "x"}], **options
        )
    assert caught.value.body["code"] == "unsupported_parameter"
    assert caught.value.body["param"] == param
    assert "'copywriter'" in caught.value.body["message"]


def test_the_developer_role_is_the_system_role(handler_module):
    """OpenAI clients send `developer` for the application's instructions (was a 400)."""
    from lambdas.gateway.schema import ChatCompletionRequest

    request = ChatCompletionRequest.model_validate(
        {
            "model": "copywriter",
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "x"}],
        }
    )
    assert [m.role for m in request.messages] == ["system", "user"]


def test_the_openai_defaults_that_clients_send_explicitly_are_served(client):
    """LangChain and others send some parameters at their neutral defaults; those change nothing."""
    completion = client.chat.completions.create(
        model="copywriter",
        messages=[{"role": "user", "content": "x"}],
        presence_penalty=0,
        frequency_penalty=0,
        logprobs=False,
        n=1,
    )
    assert completion.choices[0].message.content == "Save more this spring."


def raw(base_url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(base_url + path, data=body, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/chat/completions", b"{not json", 400, "invalid_json"),
        ("POST", "/chat/completions", b'{"model": 3}', 400, "invalid_value"),
        ("POST", "/chat/completions", b"x" * 3000, 413, "request_too_large"),
        # 2 KB nested 1,000 levels deep: Python's JSON parser recurses past its limit (was a 500).
        ("POST", "/chat/completions", b"[" * 1000 + b"]" * 1000, 400, "invalid_json"),
        ("GET", "/chat/completions", None, 405, "method_not_allowed"),
        ("GET", "/nothing-here", None, 404, "not_found"),
    ],
)
def test_bad_http_requests_get_openai_errors_without_traces(base_url, method, path, body, status, code):
    got, payload = raw(base_url, method, path, body)
    assert got == status
    assert payload["error"]["code"] == code
    assert "Traceback" not in json.dumps(payload)


def test_a_bug_of_ours_is_a_plain_500_with_no_detail_and_is_counted(handler_module, monkeypatch, capsys):
    """Lambda's Errors metric never counts a caught exception: the handler publishes UnhandledErrors,
    which the gateway's alarm watches (stacks/components/model_gateway.py)."""

    def explode():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handler_module, "gateway", explode)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "managed-api-gateway")
    capsys.readouterr()
    result = handler_module.on_event(event_for("GET", "/v1/models", {}, b""), None)
    assert result["statusCode"] == 500
    assert "secret internals" not in result["body"]
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (emf,) = [d for d in documents if "UnhandledErrors" in d]
    assert emf["UnhandledErrors"] == [1.0]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GenAiStack/Gateway"
    assert directive["Dimensions"] == [["service"]]
    assert emf["service"] == "managed-api-gateway"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["copywriter", "embedder", "nope"]) | JSON,
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "system", "x"]) | JSON,
                    "content": st.text(max_size=40) | JSON,
                }
            ),
            max_size=3,
        )
        | JSON,
        "temperature": st.floats(-1, 3) | JSON,
        "max_tokens": st.integers(-5, 10_000) | JSON,
        "input": st.text(max_size=20) | JSON,
        "stop": JSON,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSON, path=st.sampled_from(["/v1/chat/completions", "/v1/embeddings"]))
def test_arbitrary_json_bodies_never_cause_a_5xx_of_ours(handler_module, body, path):
    result = handler_module.on_event(event_for("POST", path, {}, json.dumps(body).encode()), None)
    payload = json.loads(result["body"])
    assert result["statusCode"] in (200, 400, 404, 413), payload
    if result["statusCode"] == 200:
        assert payload["object"] in ("chat.completion", "list")
    else:
        assert set(payload["error"]) == {"message", "type", "param", "code"}


def test_prompts_stay_out_of_the_logs_unless_the_profile_enables_them(handler_module, monkeypatch):
    import io

    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    monkeypatch.setattr(handler_module, "logger", Logger(service="gateway-log-test", stream=stream))
    body = {"model": "copywriter", "messages": [{"role": "user", "content": "my secret campaign idea"}]}
    event = event_for("POST", "/v1/chat/completions", {}, json.dumps(body).encode())
    handler_module.on_event(event, None)
    logged = stream.getvalue()
    assert '"message":"answered"' in logged  # the logs are captured: the next assertion can fail
    assert "my secret campaign idea" not in logged
    monkeypatch.setattr(
        handler_module, "SETTINGS", handler_module.SETTINGS.model_copy(update={"log_prompts": True})
    )
    handler_module.on_event(event, None)
    assert "my secret campaign idea" in stream.getvalue()


def test_the_local_server_takes_a_burst_of_parallel_connections(handler_module):
    """socketserver's default backlog of 5 refused connections at ~50 parallel clients."""
    import concurrent.futures

    server = serve(handler_module.on_event)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        assert server.request_queue_size >= 64
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(lambda _: raw(url, "GET", "/models")[0], range(50)))
        assert statuses == [200] * 50
    finally:
        server.shutdown()


def test_an_error_carries_its_headers_to_the_caller(handler_module, monkeypatch):
    from lambdas.gateway.errors import GatewayError

    def throttled():
        raise GatewayError(
            429, "every model is throttled", type="rate_limit_error", headers={"Retry-After": "2"}
        )

    monkeypatch.setattr(handler_module, "gateway", throttled)
    result = handler_module.on_event(event_for("GET", "/v1/models", {}, b""), None)
    assert result["statusCode"] == 429
    assert result["headers"]["Retry-After"] == "2"
    assert json.loads(result["body"])["error"]["type"] == "rate_limit_error"


def test_the_local_server_never_makes_a_key_the_tenant():
    """API Gateway gives the handler the key's id; the local adapter used the key itself, so the
    secret reached logs and the metrics' tenant dimension."""
    from lambdas.gateway.local import key_id

    for headers in ({"x-api-key": "sk-secret-123"}, {"Authorization": "Bearer sk-secret-123"}):
        tenant = event_for("GET", "/v1/models", headers, b"")["requestContext"]["identity"]["apiKeyId"]
        assert "secret" not in tenant
        assert tenant == key_id({"x-api-key": "sk-secret-123"})  # one tenant per key, either header
    assert event_for("GET", "/v1/models", {}, b"")["requestContext"]["identity"]["apiKeyId"] == "local"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(1, 5000),
    opener=st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]),
    where=st.sampled_from(["body", "content", "stop", "tools"]),
    padding=st.integers(0, 3000),
    path=st.sampled_from(["/v1/chat/completions", "/v1/embeddings"]),
    stream=st.booleans(),
)
def test_nested_and_oversized_bodies_get_a_4xx_never_a_5xx(
    handler_module, depth, opener, where, padding, path, stream
):
    """Bodies nested to any depth, anywhere in the request, and over the size limit: a 400 or 413
    (or an answer), never a 500 of ours (a RecursionError escaped the parser before)."""
    open_, close = opener
    nested = open_ * depth + b"1" + close * depth
    if where == "body":
        raw = nested
    else:
        field = {
            "content": b'"messages":[{"role":"user","content":%s}]',
            "stop": b'"stop":%s',
            "tools": b'"tools":%s',
        }
        raw = (
            b'{"model":"copywriter","stream":%s,"pad":"%s",'
            % (
                b"true" if stream else b"false",
                b"x" * padding,
            )
            + field[where] % nested
            + b"}"
        )
    result = handler_module.on_event(event_for("POST", path, {}, raw), None)
    assert result["statusCode"] in (200, 400, 404, 413), result
    if "body" in result:
        payload = json.loads(result["body"])
        if result["statusCode"] != 200:
            assert set(payload["error"]) == {"message", "type", "param", "code"}
