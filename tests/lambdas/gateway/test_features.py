"""OpenAI request features (issue 12, item 3): each is forwarded to every backend type that supports
it (the fake backend records exactly what it received) or refused with 400 unsupported_parameter
naming the parameter and the alias, per alias (a fallback target that cannot honour it refuses it)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters

from lambdas.gateway.cache import cache_key
from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.errors import GatewayError
from lambdas.gateway.schema import ChatCompletionRequest
from tests.lambdas.gateway.fakes import ModelServer, RecordingMetrics

CLAUDE = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-lite-v1:0"
NOVA_2 = "us.amazon.nova-2-lite-v1:0"

TOOL = {
    "type": "function",
    "function": {
        "name": "rate",
        "description": "The savings rate for a term",
        "parameters": {"type": "object", "properties": {"term": {"type": "string"}}, "required": ["term"]},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


# -- fakes: each records exactly what the backend received ---------------------------------------
def converse_answer(*blocks: dict, stop: str = "end_turn", usage: dict | None = None) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks) or [{"text": "Hello"}]}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
    }


BEDROCK_MODEL = boto3.session.Session(region_name="us-east-1").client("bedrock-runtime").meta.service_model


def valid(operation: str, call: dict) -> dict:
    """botocore's own check of a call against the Bedrock Runtime API model (what boto3 does before
    sending): the fake takes only what the real client would send."""
    validate_parameters(call, BEDROCK_MODEL.operation_model(operation).input_shape)
    return call


class FakeBedrock:
    def __init__(self, response: dict | None = None) -> None:
        self.response = response or converse_answer()
        self.calls: list[dict] = []
        self.guardrail_checks: list[dict] = []

    def converse(self, **call):
        self.calls.append(valid("Converse", call))
        return self.response

    def apply_guardrail(self, **call):
        self.guardrail_checks.append(valid("ApplyGuardrail", call))
        return {"action": "NONE", "outputs": []}


def openai_answer(message: dict | None = None, *, finish: str = "stop", n: int = 1) -> dict:
    message = message or {"role": "assistant", "content": "Hello"}
    return {
        "choices": [{"index": i, "message": message, "finish_reason": finish} for i in range(n)],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 5}},
    }


class FakeSageMaker:
    def __init__(self, payload: dict | None = None) -> None:
        self.payload = payload or openai_answer()
        self.bodies: list[dict] = []

    def invoke_endpoint(self, **call):
        self.bodies.append(json.loads(call["Body"]))
        return {"Body": io.BytesIO(json.dumps(self.payload).encode())}


@pytest.fixture(scope="module")
def model_server():
    server = ModelServer(openai_answer())
    yield server
    server.server.shutdown()


class Backends:
    def __init__(self, model_server: ModelServer) -> None:
        self.bedrock = FakeBedrock()
        self.sagemaker = FakeSageMaker()
        self.server = model_server
        model_server.bodies.clear()
        model_server.payload = openai_answer()

    def target(self, kind: str, model: str = NOVA) -> dict:
        return {
            "bedrock": {"kind": "bedrock", "model": model},
            "sagemaker": {"kind": "sagemaker", "endpoint": "mistral"},
            "self_hosted": {"kind": "openai_http", "url": self.server.url, "model": "mistral"},
        }[kind]

    def gateway(self, *aliases: tuple[str, list[dict]], guardrail: bool = False):
        settings: dict[str, Any] = {"chat": dict(aliases)}
        if guardrail:
            settings["guardrail"] = {"identifier": "gr", "version": "1"}
        clients = {"bedrock-runtime": self.bedrock, "sagemaker-runtime": self.sagemaker}
        return build_gateway(Settings.model_validate(settings), lambda service: clients[service])

    def received(self, kind: str) -> dict:
        """What the backend of `kind` received in its last call."""
        if kind == "bedrock":
            return self.bedrock.calls[-1]
        return (self.sagemaker.bodies if kind == "sagemaker" else self.server.bodies)[-1]

    def answer(self, kind: str, *, converse: dict | None = None, openai: dict | None = None) -> None:
        if kind == "bedrock":
            self.bedrock.response = converse
        elif kind == "sagemaker":
            self.sagemaker.payload = openai
        else:
            self.server.payload = openai


@pytest.fixture
def backends(model_server):
    return Backends(model_server)


def chat(gateway, **body) -> dict:
    body.setdefault("model", "a")
    body.setdefault("messages", [{"role": "user", "content": "What is the rate for 12 months?"}])
    response, _ = gateway.chat(body, tenant="t", metrics=RecordingMetrics())
    return response


OPENAI_KINDS = ["sagemaker", "self_hosted"]
ALL_KINDS = ["bedrock", *OPENAI_KINDS]


def error_of(caught: pytest.ExceptionInfo) -> tuple[int, str, str | None, str | None]:
    error = caught.value
    return error.status, str(error), getattr(error, "param", None), getattr(error, "code", None)


def refuse(gateway, **body) -> tuple[str, str | None, str | None]:
    with pytest.raises(GatewayError) as caught:
        chat(gateway, **body)
    status, message, param, code = error_of(caught)
    assert status == 400
    return message, param, code


# -- 1. tools ---------------------------------------------------------------------------------------
def test_tools_reach_converse_as_tool_config_and_its_tool_use_comes_back_as_tool_calls(backends):
    """Converse: Tool/ToolSpecification {name, description, inputSchema.json}, ToolChoice auto;
    the answer's toolUse block is an OpenAI tool call, stopReason tool_use is finish_reason tool_calls
    (was: content "" and finish_reason stop, the tools never sent)."""
    backends.answer(
        "bedrock",
        converse=converse_answer(
            {"toolUse": {"toolUseId": "tooluse_1", "name": "rate", "input": {"term": "12 months"}}},
            stop="tool_use",
        ),
    )
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    response = chat(gateway, tools=[TOOL], tool_choice="auto")
    assert backends.received("bedrock")["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "rate",
                    "description": "The savings rate for a term",
                    "inputSchema": {"json": TOOL["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "tooluse_1",
            "type": "function",
            "function": {"name": "rate", "arguments": json.dumps({"term": "12 months"})},
        }
    ]


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Rates for 12 and 24 months?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "rate", "arguments": '{"term": "12"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "rate", "arguments": '{"term": "24"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "3.1%"},
    {"role": "tool", "tool_call_id": "call_2", "content": "3.4%"},
]


def test_tool_calls_and_results_become_tool_use_and_one_user_turn_of_tool_results(backends):
    """Converse wants user and assistant turns to alternate: the results of parallel calls travel
    together in one user turn (ToolResultBlock), the calls as the assistant's ToolUseBlocks."""
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    chat(gateway, messages=CONVERSATION, tools=[TOOL])
    call = backends.received("bedrock")
    assert call["system"] == [{"text": "Be brief."}]
    assert call["messages"] == [
        {"role": "user", "content": [{"text": "Rates for 12 and 24 months?"}]},
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "rate", "input": {"term": "12"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "rate", "input": {"term": "24"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "3.1%"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "3.4%"}]}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "converse"),
    [
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "rate"}}, {"tool": {"name": "rate"}}),
    ],
)
def test_tool_choice_maps_onto_converse(backends, choice, converse):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    chat(gateway, tools=[TOOL], tool_choice=choice)
    assert backends.received("bedrock")["toolConfig"]["toolChoice"] == converse


def test_tool_choice_none_sends_no_tools_to_converse_or_is_refused_mid_tool_conversation(backends):
    """Converse's ToolChoice has no "none": without tools the model cannot call one; a conversation
    that already holds tool blocks needs a toolConfig, so "none" is refused there."""
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    chat(gateway, tools=[TOOL], tool_choice="none")
    assert "toolConfig" not in backends.received("bedrock")
    message, param, code = refuse(gateway, messages=CONVERSATION, tools=[TOOL], tool_choice="none")
    assert (param, code) == ("tool_choice", "unsupported_parameter")
    assert "'a'" in message


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_openai_format_backends_get_tools_and_tool_turns_as_sent_and_their_calls_come_back(backends, kind):
    calls = [{"id": "call_9", "type": "function", "function": {"name": "rate", "arguments": '{"term": "6"}'}}]
    backends.answer(
        kind,
        openai=openai_answer(
            {"role": "assistant", "content": None, "tool_calls": calls}, finish="tool_calls"
        ),
    )
    gateway = backends.gateway(("a", [backends.target(kind)]))
    response = chat(
        gateway, messages=CONVERSATION, tools=[TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    body = backends.received(kind)
    assert body["tools"] == [TOOL]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("auto", False)
    assert body["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": CONVERSATION[2]["tool_calls"],
    }
    assert body["messages"][3:] == [
        {"role": "tool", "content": "3.1%", "tool_call_id": "call_1"},
        {"role": "tool", "content": "3.4%", "tool_call_id": "call_2"},
    ]
    choice = response["choices"][0]
    assert (choice["finish_reason"], choice["message"]["tool_calls"]) == ("tool_calls", calls)
    assert choice["message"]["content"] is None


def test_a_tool_call_alone_is_checked_by_the_guardrail_as_its_arguments(backends):
    """ApplyGuardrail wraps SageMaker and self-hosted targets: a tool call's arguments are its output."""
    calls = [{"id": "c", "type": "function", "function": {"name": "rate", "arguments": '{"term": "6"}'}}]
    backends.answer(
        "sagemaker", openai=openai_answer({"role": "assistant", "content": None, "tool_calls": calls})
    )
    gateway = backends.gateway(("a", [backends.target("sagemaker")]), guardrail=True)
    chat(gateway, tools=[TOOL])
    output = backends.bedrock.guardrail_checks[-1]
    assert output["source"] == "OUTPUT"
    assert output["content"] == [{"text": {"text": '\n{"term": "6"}'}}]


# -- 2. response_format -----------------------------------------------------------------------------
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "rate",
        "description": "A rate",
        "schema": {"type": "object", "properties": {"rate": {"type": "number"}}, "required": ["rate"]},
    },
}


def test_a_json_schema_reaches_converse_as_output_config(backends):
    """Bedrock structured outputs: outputConfig.textFormat {type json_schema, structure.jsonSchema
    {schema as a JSON string, name, description}} (was: the schema silently ignored)."""
    gateway = backends.gateway(("a", [backends.target("bedrock", CLAUDE)]))
    chat(gateway, response_format=SCHEMA)
    assert backends.received("bedrock")["outputConfig"] == {
        "textFormat": {
            "type": "json_schema",
            "structure": {
                "jsonSchema": {
                    "schema": json.dumps(SCHEMA["json_schema"]["schema"]),
                    "name": "rate",
                    "description": "A rate",
                }
            },
        }
    }


def test_json_mode_without_a_schema_is_refused_for_bedrock_and_text_is_neutral(backends):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    message, param, code = refuse(gateway, response_format={"type": "json_object"})
    assert (param, code) == ("response_format", "unsupported_parameter")
    assert "'a'" in message
    assert "json_schema" in message
    chat(gateway, response_format={"type": "text"})
    assert "outputConfig" not in backends.received("bedrock")


@pytest.mark.parametrize("kind", OPENAI_KINDS)
@pytest.mark.parametrize("response_format", [{"type": "json_object"}, SCHEMA])
def test_openai_format_backends_get_the_response_format_as_sent(backends, kind, response_format):
    gateway = backends.gateway(("a", [backends.target(kind)]))
    chat(gateway, response_format=response_format)
    assert backends.received(kind)["response_format"] == response_format


# -- 3. images --------------------------------------------------------------------------------------
def image_message(url: str, text: str = "What is in this picture?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


def test_a_data_url_image_is_a_converse_image_block(backends):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    chat(gateway, messages=image_message(PNG_URL))
    assert backends.received("bedrock")["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "What is in this picture?"},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/cat.png", "does not fetch image URLs"),
        ("data:image/bmp;base64," + base64.b64encode(b"BM").decode(), "not an image format"),
        ("data:image/png;base64," + base64.b64encode(b"\x00" * 3_750_001).decode(), "3.75 MB"),
    ],
)
def test_images_bedrock_cannot_take_are_refused_with_the_reason(backends, url, reason):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    message, param, code = refuse(gateway, messages=image_message(url))
    assert (param, code) == ("image_url", "unsupported_parameter")
    assert reason in message
    assert "'a'" in message
    assert backends.bedrock.calls == []


def test_more_images_than_converse_takes_in_one_message_are_refused(backends):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    parts = [{"type": "image_url", "image_url": {"url": PNG_URL}}] * 21
    message, _, code = refuse(gateway, messages=[{"role": "user", "content": parts}])
    assert code == "unsupported_parameter"
    assert "20 images" in message


@pytest.mark.parametrize("kind", OPENAI_KINDS)
@pytest.mark.parametrize("url", [PNG_URL, "https://example.com/cat.png"])
def test_openai_format_backends_get_image_parts_as_sent(backends, kind, url):
    gateway = backends.gateway(("a", [backends.target(kind)]))
    chat(gateway, messages=image_message(url))
    assert backends.received(kind)["messages"] == image_message(url)


def test_a_malformed_image_part_is_a_400_for_every_backend(backends):
    gateway = backends.gateway(("a", [backends.target("sagemaker")]))
    with pytest.raises(GatewayError) as caught:
        chat(gateway, messages=image_message("data:image/png;base64,@@@"))
    assert caught.value.status == 400


def test_merging_the_system_prompt_keeps_the_first_user_turns_image(backends):
    target = {**backends.target("sagemaker"), "system_prompt": "merge"}
    gateway = backends.gateway(("a", [target]))
    chat(gateway, messages=[{"role": "system", "content": "Be brief."}, *image_message(PNG_URL, "What?")])
    assert backends.received("sagemaker")["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Be brief."},
                {"type": "text", "text": "What?"},
                {"type": "image_url", "image_url": {"url": PNG_URL}},
            ],
        }
    ]


# -- 4. n, seed, logprobs, penalties, user ----------------------------------------------------------
SAMPLING = [
    ({"n": 2}, "n"),
    ({"seed": 7}, "seed"),
    ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": -0.5}, "frequency_penalty"),
    ({"tools": [TOOL], "parallel_tool_calls": False}, "parallel_tool_calls"),
]


@pytest.mark.parametrize(("options", "param"), SAMPLING)
def test_what_converse_lacks_is_refused_by_name_for_bedrock(backends, options, param):
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    message, got, code = refuse(gateway, **options)
    assert (got, code) == (param, "unsupported_parameter")
    assert "'a'" in message
    assert "bedrock:" in message
    assert backends.bedrock.calls == []


@pytest.mark.parametrize("kind", OPENAI_KINDS)
@pytest.mark.parametrize(("options", "param"), SAMPLING)
def test_openai_format_backends_get_the_sampling_parameters_as_sent(backends, kind, options, param):
    gateway = backends.gateway(("a", [backends.target(kind)]))
    chat(gateway, **options)
    body = backends.received(kind)
    assert {key: body[key] for key in options if key != "tools"} == {
        key: value for key, value in options.items() if key != "tools"
    }


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_n_choices_come_back_from_openai_format_backends(backends, kind):
    backends.answer(kind, openai=openai_answer(n=3))
    gateway = backends.gateway(("a", [backends.target(kind)]))
    response = chat(gateway, n=3)
    assert [c["index"] for c in response["choices"]] == [0, 1, 2]


def test_n_is_refused_where_the_guardrail_checks_one_answer(backends):
    gateway = backends.gateway(("a", [backends.target("sagemaker")]), guardrail=True)
    message, param, _ = refuse(gateway, n=2)
    assert param == "n"
    assert "guardrail" in message


@pytest.mark.parametrize("order", [("sagemaker", "bedrock"), ("bedrock", "self_hosted")])
def test_an_alias_refuses_what_any_of_its_targets_cannot_honour(backends, order):
    """A fallback to Bedrock would answer without the seed the first target honoured: refused up front,
    naming the target that cannot take it."""
    gateway = backends.gateway(("mixed", [backends.target(kind) for kind in order]))
    message, param, _ = refuse(gateway, model="mixed", seed=7)
    assert param == "seed"
    assert "'mixed'" in message
    assert f"bedrock:{NOVA}" in message
    assert backends.sagemaker.bodies == []
    assert backends.server.bodies == []
    assert backends.bedrock.calls == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_user_is_served_not_forwarded_and_only_its_hash_is_logged(backends, kind, capsys):
    from lambdas.gateway.metrics import EmfMetrics

    gateway = backends.gateway(("a", [backends.target(kind)]))
    body = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "user": "alice@example.com"}
    gateway.chat(body, tenant="t", metrics=EmfMetrics())
    assert "alice" not in json.dumps(backends.received(kind), default=str)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    per_request = next(d for d in documents if "Latency" in d)
    assert per_request["user"] == hashlib.sha256(b"alice@example.com").hexdigest()[:16]
    dimensions = per_request["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert all("user" not in names for names in dimensions)
    assert "alice" not in json.dumps(documents)


# -- 5. reasoning_effort ----------------------------------------------------------------------------
def test_reasoning_effort_is_claudes_extended_thinking_and_its_reasoning_comes_back(backends):
    backends.answer(
        "bedrock",
        converse=converse_answer(
            {"reasoningContent": {"reasoningText": {"text": "12 months: 3.1%", "signature": "sig"}}},
            {"text": "3.1%"},
        ),
    )
    gateway = backends.gateway(("a", [{**backends.target("bedrock", CLAUDE), "max_tokens": 4096}]))
    response = chat(gateway, reasoning_effort="medium", max_tokens=3000)
    call = backends.received("bedrock")
    assert call["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2999}}
    assert "temperature" not in call["inferenceConfig"]
    message = response["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("3.1%", "12 months: 3.1%")


def test_reasoning_effort_is_nova_2s_reasoning_config(backends):
    gateway = backends.gateway(("a", [backends.target("bedrock", NOVA_2)]))
    chat(gateway, reasoning_effort="high")
    assert backends.received("bedrock")["additionalModelRequestFields"] == {
        "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "high"}
    }


@pytest.mark.parametrize(
    ("model", "options", "param"),
    [
        (NOVA, {}, "reasoning_effort"),
        (CLAUDE, {"temperature": 0.2}, "temperature"),
        (CLAUDE, {"tools": [TOOL], "tool_choice": "required"}, "tool_choice"),
    ],
)
def test_reasoning_effort_is_refused_where_the_model_cannot_take_it(backends, model, options, param):
    gateway = backends.gateway(("a", [backends.target("bedrock", model)]))
    message, got, code = refuse(gateway, reasoning_effort="low", **options)
    assert (got, code) == (param, "unsupported_parameter")
    assert "'a'" in message


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_openai_format_backends_get_reasoning_effort_and_their_reasoning_comes_back(backends, kind):
    backends.answer(
        kind, openai=openai_answer({"role": "assistant", "content": "3.1%", "reasoning_content": "think"})
    )
    gateway = backends.gateway(("a", [backends.target(kind)]))
    response = chat(gateway, reasoning_effort="low")
    assert backends.received(kind)["reasoning_effort"] == "low"
    assert response["choices"][0]["message"]["reasoning_content"] == "think"


# -- usage details ----------------------------------------------------------------------------------
def test_cached_prompt_tokens_are_reported_in_usage(backends):
    backends.answer(
        "bedrock",
        converse=converse_answer(usage={"inputTokens": 9, "outputTokens": 1, "cacheReadInputTokens": 6}),
    )
    gateway = backends.gateway(("a", [backends.target("bedrock")]))
    assert chat(gateway)["usage"]["prompt_tokens_details"] == {"cached_tokens": 6}
    sagemaker = backends.gateway(("s", [backends.target("sagemaker")]))
    assert chat(sagemaker, model="s")["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}


# -- cache key --------------------------------------------------------------------------------------
def request(**body) -> ChatCompletionRequest:
    body.setdefault("model", "a")
    body.setdefault("messages", [{"role": "user", "content": "Rate?"}])
    return ChatCompletionRequest.model_validate(body)


def old_key(alias: str, request: ChatCompletionRequest) -> str:
    """The key before this change, for a plain request: such requests keep their cache entries."""
    normalised = {
        "alias": alias,
        "guardrail": None,
        "messages": [[m.role, m.text.strip()] for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.token_limit,
        "stop": request.stop_sequences,
        "knowledge_base": request.knowledge_base,
    }
    return hashlib.sha256(json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize(
    "options",
    [
        {"tools": [TOOL]},
        {"tools": [TOOL], "tool_choice": "required"},
        {"response_format": SCHEMA},
        {"response_format": {"type": "json_object"}},
        {"messages": image_message(PNG_URL)},
        {"messages": CONVERSATION},
        {"seed": 7},
        {"n": 2},
        {"logprobs": True},
        {"presence_penalty": 1.0},
        {"frequency_penalty": 1.0},
        {"reasoning_effort": "high"},
        {"parallel_tool_calls": False},
    ],
)
def test_every_parameter_that_changes_the_answer_changes_the_cache_key(options):
    plain = request()
    assert cache_key("a", request(**options), None) != cache_key("a", plain, None)


def test_a_plain_request_keeps_its_cache_key_and_user_is_not_in_it():
    plain = request(temperature=0)
    assert cache_key("a", plain, None) == old_key("a", plain)
    assert cache_key("a", request(temperature=0, user="bob"), None) == cache_key("a", plain, None)
    # Two images differ: the image is in the key, not only the text around it.
    other = "data:image/png;base64," + base64.b64encode(PNG + b"\x01").decode()
    assert cache_key("a", request(messages=image_message(PNG_URL)), None) != cache_key(
        "a", request(messages=image_message(other)), None
    )


# -- the official openai SDK against the locally served handler -------------------------------------
@pytest.fixture(scope="module")
def sdk_backend():
    return FakeBedrock()


@pytest.fixture(scope="module")
def sdk(sdk_backend):
    import importlib
    import os

    import openai

    from lambdas.gateway.local import serve

    config = {"chat": {"a": [{"kind": "bedrock", "model": NOVA}]}}
    previous = os.environ.get("GATEWAY_CONFIG")
    os.environ["GATEWAY_CONFIG"] = json.dumps(config)
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    gateway = build_gateway(Settings.model_validate(config), lambda service: sdk_backend)
    module.gateway = lambda: gateway
    server = serve(module.on_event)
    yield openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="local-test-key", max_retries=0
    )
    server.shutdown()
    if previous is None:
        os.environ.pop("GATEWAY_CONFIG", None)
    else:
        os.environ["GATEWAY_CONFIG"] = previous


def test_the_openai_sdk_round_trips_a_tool_call(sdk, sdk_backend):
    """The SDK's own tool-calling loop: the call comes back parsed, its result goes back as a `tool`
    message, and Converse receives the toolUse and toolResult blocks."""
    sdk_backend.response = converse_answer(
        {"toolUse": {"toolUseId": "tooluse_7", "name": "rate", "input": {"term": "12 months"}}},
        stop="tool_use",
    )
    messages: list[Any] = [{"role": "user", "content": "Rate for 12 months?"}]
    first = sdk.chat.completions.create(model="a", messages=messages, tools=[TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tooluse_7",
        "rate",
        {"term": "12 months"},
    )
    sdk_backend.response = converse_answer({"text": "It is 3.1%."})
    messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "3.1%"}]
    second = sdk.chat.completions.create(model="a", messages=messages, tools=[TOOL])
    assert second.choices[0].message.content == "It is 3.1%."
    assert sdk_backend.calls[-1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "tooluse_7", "name": "rate", "input": {"term": "12 months"}}}
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "tooluse_7", "content": [{"text": "3.1%"}]}}],
        },
    ]


def test_the_openai_sdk_sends_an_image_part(sdk, sdk_backend):
    sdk_backend.response = converse_answer({"text": "A tiny black square."})
    completion = sdk.chat.completions.create(model="a", messages=image_message(PNG_URL))
    assert completion.choices[0].message.content == "A tiny black square."
    assert sdk_backend.calls[-1]["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": PNG}}
    }


def test_the_openai_sdk_gets_a_400_naming_an_https_image_and_the_alias(sdk):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="a", messages=image_message("https://example.com/cat.png"))
    assert caught.value.body["code"] == "unsupported_parameter"
    assert caught.value.body["param"] == "image_url"
    assert "'a'" in caught.value.body["message"]


# -- 6. prompt caching ------------------------------------------------------------------------------
CACHED = [
    {"role": "system", "content": "A long policy document.", "cache_control": {"type": "ephemeral"}},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "The contract text.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Summarise it."},
        ],
    },
]


def test_cache_control_breakpoints_are_converse_cache_points_on_models_with_prompt_caching(backends):
    gateway = backends.gateway(("a", [backends.target("bedrock", CLAUDE)]))
    chat(gateway, messages=CACHED)
    call = backends.received("bedrock")
    assert call["system"] == [{"text": "A long policy document."}, {"cachePoint": {"type": "default"}}]
    assert call["messages"][0]["content"] == [
        {"text": "The contract text."},
        {"cachePoint": {"type": "default"}},
        {"text": "Summarise it."},
    ]


def test_cache_control_is_dropped_where_there_is_no_prompt_cache(backends):
    """A hint for cost and latency, not the answer: models without Converse prompt caching and
    OpenAI-format servers (vLLM caches prefixes by itself) get the text without it."""
    gateway = backends.gateway(("a", [backends.target("bedrock", "mistral.mistral-large-2402-v1:0")]))
    chat(gateway, messages=CACHED)
    assert "cachePoint" not in json.dumps(backends.received("bedrock"), default=str)
    sagemaker = backends.gateway(("s", [backends.target("sagemaker")]))
    chat(sagemaker, model="s", messages=CACHED)
    assert backends.received("sagemaker")["messages"] == [
        {"role": "system", "content": "A long policy document."},
        {"role": "user", "content": "The contract text.Summarise it."},
    ]


def test_embeddings_take_user_and_log_only_its_hash():
    from lambdas.gateway.service import Gateway
    from tests.lambdas.gateway.fakes import FixedEmbeddings

    metrics = RecordingMetrics()
    gateway = Gateway(chat_routes={}, embedding_routes={"e": FixedEmbeddings()})
    gateway.embeddings({"model": "e", "input": "hi", "user": "alice"}, tenant="t", metrics=metrics)
    assert metrics.records[0][0].user == hashlib.sha256(b"alice").hexdigest()[:16]


def test_a_strict_tool_is_a_strict_converse_tool_spec(backends):
    strict = {"type": "function", "function": {**TOOL["function"], "strict": True}}
    gateway = backends.gateway(("a", [backends.target("bedrock", CLAUDE)]))
    chat(gateway, tools=[strict])
    assert backends.received("bedrock")["toolConfig"]["tools"][0]["toolSpec"]["strict"] is True


def test_a_tool_call_is_not_grounding_checked_and_retrieval_searches_the_users_question():
    from lambdas.gateway.providers.base import ChatResult
    from lambdas.gateway.retrieval import Passage
    from lambdas.gateway.service import Gateway
    from tests.lambdas.gateway.fakes import ScriptedChat

    class Retriever:
        def __init__(self) -> None:
            self.queries: list[str] = []

        def retrieve(self, knowledge_base_id, query, deadline=None):
            self.queries.append(query)
            return [Passage(text="Rates change monthly.", source="s3://docs/rates.pdf")]

    calls = ({"id": "c", "type": "function", "function": {"name": "rate", "arguments": "{}"}},)
    target = ScriptedChat("bedrock:m", ChatResult("", "tool_calls", 5, 2, tool_calls=calls))
    guardrail = FakeBedrock()
    retriever = Retriever()
    gateway = Gateway(
        chat_routes={"a": [target]},
        embedding_routes={},
        knowledge_bases={"faq": "KB1"},
        retriever=retriever,
        guardrail=("g", "1"),
        guardrail_client=guardrail,
    )
    response = chat(gateway, messages=CONVERSATION, tools=[TOOL], knowledge_base="faq")
    assert response["choices"][0]["message"]["tool_calls"] == list(calls)
    assert guardrail.guardrail_checks == []  # nothing to ground yet
    assert retriever.queries == ["Rates for 12 and 24 months?"]


def test_a_passage_s_source_is_its_s3_object_or_its_kendra_document(stubs):
    """RetrievalResultLocation: s3Location for an S3 data source, kendraDocumentLocation for a knowledge
    base on a Kendra GenAI index; the citation names either."""
    from lambdas.gateway.retrieval import Retriever

    client = stubs("bedrock-agent-runtime")
    stubs["bedrock-agent-runtime"].add_response(
        "retrieve",
        {
            "retrievalResults": [
                {
                    "content": {"text": "a"},
                    "location": {"type": "S3", "s3Location": {"uri": "s3://b/faq.md"}},
                },
                {
                    "content": {"text": "b"},
                    "location": {
                        "type": "KENDRA",
                        "kendraDocumentLocation": {"uri": "https://intranet/manual.pdf"},
                    },
                },
                {"content": {"text": "c"}, "location": {"type": "WEB"}},
            ]
        },
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"text": "q"},
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 5}},
        },
    )
    passages = Retriever(client).retrieve("KB12345678", "q")
    assert [p.source for p in passages] == ["s3://b/faq.md", "https://intranet/manual.pdf", "WEB"]


@pytest.mark.parametrize("grounding", [True, False])
def test_a_guardrail_without_a_grounding_policy_gets_no_grounding_call(grounding):
    """`guardrail.grounding` (stacks/orchestration_stack.py: the profile's contextual_grounding): without
    a grounding policy, the ApplyGuardrail of a grounded answer would check nothing the model call's
    guardrail has not, and bill its text units again."""
    settings = Settings.model_validate(
        {
            "chat": {"a": [{"kind": "bedrock", "model": NOVA}]},
            "guardrail": {"identifier": "gr", "version": "1", "grounding": grounding},
            "knowledge_bases": {"faq": "KB12345678"},
        }
    )
    gateway = build_gateway(settings, lambda service: FakeBedrock())
    assert (gateway.guardrail_client is not None) is grounding
    # A configuration written before the flag existed keeps checking grounded answers.
    older = {
        "chat": {"a": [{"kind": "bedrock", "model": NOVA}]},
        "guardrail": {"identifier": "gr", "version": "1"},
    }
    assert Settings.model_validate(older).guardrail.grounding
