"""Bedrock targets: chat through Converse (the guardrail travels with the call), embeddings through
InvokeModel (Titan Text Embeddings V2 body)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..deadline import Deadline, as_timed
from ..errors import ProviderError
from ..schema import ChatCompletionRequest, ImagePart, Message, NamedToolChoice, ToolCall
from .aws_errors import provider_error
from .base import ChatResult, Delta, EmbeddingResult

# Converse stop reasons -> OpenAI finish reasons.
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
}

# Converse image limits (Bedrock API reference, Message, content: "You can include up to 20 images.
# Each image's size, height, and width must be no more than 3.75 MB, 8000 px, and 8000 px";
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html) and formats
# (ImageBlock, format: png | jpeg | gif | webp;
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ImageBlock.html).
MAX_IMAGES_PER_MESSAGE = 20
MAX_IMAGE_BYTES = 3_750_000
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

# reasoning_effort -> Anthropic Claude extended thinking's budget_tokens (at least 1,024 and below
# max_tokens; "Extended thinking", Bedrock user guide:
# https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html).
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024
# Claude models with extended thinking (the page's table) and Amazon Nova 2 (reasoningConfig with
# maxReasoningEffort low | medium | high; "Extended thinking in Amazon Nova 2", Nova 2 user guide:
# https://docs.aws.amazon.com/nova/latest/nova2-userguide/extended-thinking.html), matched on the
# model id without its inference-profile prefix (us., eu., global., ...).
CLAUDE_THINKING = re.compile(r"anthropic\.claude-(3-7-sonnet|sonnet-4|opus-4|haiku-4-5)")
NOVA_REASONING = re.compile(r"amazon\.nova-2-")


# Models with Converse prompt caching ("Prompt caching for faster model inference", Bedrock user guide:
# https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html): Claude 3.7 Sonnet, 3.5
# Haiku and the Claude 4 family, Amazon Nova Micro, Lite, Pro, Premier and Nova 2. A cache point
# before the model's minimum prefix "still succeeds but the prefix is not cached" (same page).
PROMPT_CACHING = re.compile(
    r"anthropic\.claude-(3-7-sonnet|3-5-haiku|sonnet-4|opus-4|haiku-4-5)|amazon\.nova-(micro|lite|pro|premier|2-)"
)
CACHE_POINT = {"cachePoint": {"type": "default"}}


def reasoning_family(model_id: str) -> str | None:
    """ "claude", "nova" or None: how (whether) a Bedrock model takes reasoning_effort."""
    if CLAUDE_THINKING.search(model_id):
        return "claude"
    if NOVA_REASONING.search(model_id):
        return "nova"
    return None


def unsupported(model_id: str, request: ChatCompletionRequest) -> list[tuple[str, str]]:
    """(parameter, reason) for each thing in `request` that Converse cannot honour for `model_id`:
    the service refuses them with a 400 before any call, rather than answer without them."""
    out: list[tuple[str, str]] = []
    # Converse InferenceConfiguration has maxTokens, stopSequences, temperature and topP only
    # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InferenceConfiguration.html)
    # and its response one message without log probabilities
    # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).
    if request.n > 1:
        out.append(("n", "Converse returns one answer per call"))
    if request.seed is not None:
        out.append(("seed", "Converse has no seed"))
    if request.wants_logprobs:
        out.append(
            ("logprobs" if request.logprobs else "top_logprobs", "Converse returns no log probabilities")
        )
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(request, name):
            out.append((name, "Converse has no penalties"))
    if request.parallel_tool_calls is False:
        out.append(("parallel_tool_calls", "Converse cannot forbid parallel tool calls"))
    if request.response_type == "json_object":
        # OutputFormat type takes json_schema only
        # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_OutputFormat.html).
        out.append(("response_format", "Converse has no JSON mode without a schema; send a json_schema"))
    if request.tool_choice == "none" and _has_tool_blocks(request):
        # ToolChoice is auto | any | tool (no "none"), and tool blocks in the messages need a toolConfig
        # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolChoice.html).
        out.append(("tool_choice", 'Converse has no tool choice "none" for a conversation with tool calls'))
    for index, message in enumerate(request.messages):
        images = message.images
        if len(images) > MAX_IMAGES_PER_MESSAGE:
            out.append(
                (
                    f"messages[{index}].content",
                    f"Converse takes at most {MAX_IMAGES_PER_MESSAGE} images a message",
                )
            )
        for image in images:
            data = image.data
            if data is None:
                out.append(
                    (
                        "image_url",
                        "the gateway does not fetch image URLs (it would make the gateway a proxy to any "
                        "address, and it may have no internet access): send the image as a data URL",
                    )
                )
            elif data[0] not in IMAGE_FORMATS:
                out.append(
                    ("image_url", f"{data[0]} is not an image format Converse takes (png, jpeg, gif, webp)")
                )
            elif len(data[1]) > MAX_IMAGE_BYTES:
                out.append(("image_url", "Converse takes images up to 3.75 MB"))
    if request.reasoning_effort is not None:
        family = reasoning_family(model_id)
        if family is None:
            out.append(("reasoning_effort", f"{model_id} has no reasoning configuration the gateway knows"))
        elif family == "claude":
            # "Thinking isn't compatible with temperature, top_p, or top_k modifications as well as
            # forced tool use" (Extended thinking, Feature compatibility).
            if request.temperature != 1:
                out.append(("temperature", "Claude's extended thinking takes no temperature other than 1"))
            if request.top_p is not None:
                out.append(("top_p", "Claude's extended thinking takes no top_p"))
            if request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice):
                out.append(("tool_choice", "Claude's extended thinking takes no forced tool use"))
    return out


def _has_tool_blocks(request: ChatCompletionRequest) -> bool:
    return any(m.role == "tool" or m.tool_calls for m in request.messages)


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.function.arguments or "{}")
    except ValueError:
        raise ProviderError(
            f"tool call {call.id}: arguments are not JSON",
            retryable=False,
            client_message=f"tool call {call.id!r}: function.arguments is not JSON text",
        ) from None


def converse_content(message: Message, *, caching: bool = False) -> list[dict[str, Any]]:
    """One OpenAI message as Converse content blocks (Bedrock API reference, ContentBlock:
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html); with
    `caching`, its cache_control breakpoints as cachePoint blocks (CachePointBlock {type: default}:
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CachePointBlock.html)."""
    blocks = _content(message, caching)
    if caching and message.cache_control and blocks:
        blocks.append(dict(CACHE_POINT))
    return blocks


def _content(message: Message, caching: bool) -> list[dict[str, Any]]:
    if message.role == "tool":
        # ToolResultBlock {toolUseId, content: [{text}]}, sent in a user turn
        # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolResultBlock.html).
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": [{"text": message.text}]}}]
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, list):
        for part in message.content:
            if isinstance(part, ImagePart):
                mime, raw = part.image_url.data  # web URLs and other formats were refused (unsupported)
                blocks.append({"image": {"format": IMAGE_FORMATS[mime], "source": {"bytes": raw}}})
            elif part.text:
                blocks.append({"text": part.text})
                if caching and part.cache_control:
                    blocks.append(dict(CACHE_POINT))
    elif message.content:
        blocks.append({"text": message.content})
    for call in message.tool_calls or []:
        # ToolUseBlock {toolUseId, name, input: a JSON document}
        # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolUseBlock.html).
        blocks.append(
            {"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": _arguments(call)}}
        )
    return blocks


def converse_messages(messages: list[Message], *, caching: bool = False) -> list[dict[str, Any]]:
    """Non-system messages as Converse turns: tool results are user turns, and consecutive turns of one
    role are merged into one (Converse wants user and assistant to alternate, so the results of
    parallel tool calls travel together in one user turn)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "user" if message.role == "tool" else message.role
        content = converse_content(message, caching=caching)
        if not content:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(content)
        else:
            turns.append({"role": role, "content": content})
    return turns


def tool_config(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """OpenAI tools -> Converse ToolConfiguration: each a ToolSpecification {name, description,
    inputSchema: {json}} (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Tool.html,
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolSpecification.html); tool_choice
    auto -> auto, required -> any, a named function -> tool (ToolChoice:
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolChoice.html). "none" sends no
    toolConfig: the model then has no tool to call (refused above when the messages hold tool calls)."""
    if not request.tools or request.tool_choice == "none":
        return None
    tools = []
    for tool in request.tools:
        spec: dict[str, Any] = {
            "name": tool.function.name,
            "inputSchema": {"json": tool.function.parameters or {"type": "object", "properties": {}}},
        }
        if tool.function.description:
            spec["description"] = tool.function.description
        if tool.function.strict is not None:  # strict tool use: the call's input follows the schema
            spec["strict"] = tool.function.strict
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if request.tool_choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif request.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(request.tool_choice, NamedToolChoice):
        config["toolChoice"] = {"tool": {"name": request.tool_choice.function.name}}
    return config


def output_config(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """json_schema -> outputConfig.textFormat {type: json_schema, structure: {jsonSchema: {schema (a JSON
    string), name, description}}} ("Get validated JSON results from models", Bedrock user guide:
    https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html; OutputFormat,
    JsonSchemaDefinition: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_JsonSchemaDefinition.html).
    A model without structured outputs answers ValidationException: a 400 with Bedrock's message."""
    if request.response_type != "json_schema":
        return None
    spec = request.response_format["json_schema"]
    definition: dict[str, Any] = {"schema": json.dumps(spec.get("schema") or {}), "name": spec["name"]}
    if spec.get("description"):
        definition["description"] = spec["description"]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


class BedrockChat:
    applies_guardrail_itself = True

    def __init__(
        self, client: Any, *, model_id: str, guardrail: tuple[str, str] | None, invoke_id: str | None = None
    ) -> None:
        """`model_id` names the target (metrics, prices, logs); the call's modelId is `invoke_id`, the
        application inference profile ARN whose tags reach the bill, when given."""
        self.clients = as_timed(client)
        self.model_id = model_id
        self.invoke_id = invoke_id or model_id
        self.name = f"bedrock:{model_id}"
        self.guardrail = guardrail

    def _reasoning(self, request: ChatCompletionRequest, inference: dict[str, Any]) -> dict[str, Any] | None:
        """additionalModelRequestFields for reasoning_effort (the service refused it for other models)."""
        effort = request.reasoning_effort
        family = reasoning_family(self.model_id) if effort else None
        if family == "nova":
            # Nova 2: reasoningConfig {type: enabled, maxReasoningEffort: low | medium | high}.
            level = "low" if effort == "minimal" else effort
            return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": level}}
        if family == "claude":
            limit = inference.get("maxTokens") or 0
            budget = min(THINKING_BUDGET[effort], limit - 1)
            if budget < MIN_THINKING_BUDGET:
                raise ProviderError(
                    f"{self.name}: max_tokens {limit} leaves no thinking budget",
                    retryable=False,
                    client_message=f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on "
                    f"{self.model_id} (Claude's thinking budget: 1,024 tokens or more, below max_tokens)",
                )
            inference.pop("temperature", None)  # thinking takes only the default (checked as 1)
            return {"thinking": {"type": "enabled", "budget_tokens": budget}}
        return None

    def _call(self, request: ChatCompletionRequest) -> dict[str, Any]:
        """The Converse (and ConverseStream) request for `request`."""
        caching = bool(PROMPT_CACHING.search(self.model_id))
        system = [
            block
            for m in request.messages
            if m.role == "system"
            for block in converse_content(m, caching=caching)
        ]
        messages = converse_messages(request.messages, caching=caching)
        inference: dict[str, Any] = {"temperature": request.temperature}  # 0-1, checked by the service
        if request.token_limit:
            inference["maxTokens"] = request.token_limit
        if request.top_p is not None:
            inference["topP"] = request.top_p
        if request.stop_sequences:
            inference["stopSequences"] = request.stop_sequences
        call: dict[str, Any] = {"modelId": self.invoke_id, "messages": messages, "inferenceConfig": inference}
        if system:
            call["system"] = system
        if tools := tool_config(request):
            call["toolConfig"] = tools
        if output := output_config(request):
            call["outputConfig"] = output
        if reasoning := self._reasoning(request, inference):
            call["additionalModelRequestFields"] = reasoning
        if self.guardrail:
            call["guardrailConfig"] = {
                "guardrailIdentifier": self.guardrail[0],
                "guardrailVersion": self.guardrail[1],
            }
        return call

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        call = self._call(request)
        client = self.clients.within(deadline, self.name)
        try:
            response = client.converse(**call)
        except (ClientError, BotoCoreError) as error:
            raise provider_error(self.name, error) from None
        content = response["output"]["message"]["content"]
        usage = response.get("usage", {})
        reason = response.get("stopReason", "end_turn")
        tool_calls = tuple(
            {
                "id": block["toolUse"]["toolUseId"],
                "type": "function",
                "function": {
                    "name": block["toolUse"]["name"],
                    "arguments": json.dumps(block["toolUse"].get("input", {})),
                },
            }
            for block in content
            if "toolUse" in block
        )
        # ReasoningContentBlock: reasoningText {text, signature} (or redactedContent, not text)
        # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlock.html).
        reasoning = "".join(
            block["reasoningContent"].get("reasoningText", {}).get("text", "")
            for block in content
            if "reasoningContent" in block
        )
        return ChatResult(
            text="".join(block.get("text", "") for block in content),
            finish_reason=FINISH.get(reason, "stop"),
            input_tokens=usage.get("inputTokens", 0),
            output_tokens=usage.get("outputTokens", 0),
            guardrail_intervened=reason == "guardrail_intervened",
            tool_calls=tool_calls,
            reasoning_content=reasoning or None,
            cached_tokens=usage.get("cacheReadInputTokens"),
        )

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        """ConverseStream: text, reasoning and tool-use deltas as Bedrock sends them. The guardrail
        checks the stream synchronously (`streamProcessingMode: sync`: Bedrock releases a chunk only
        after the guardrail has scanned it, so no blocked text reaches the caller; "Use a guardrail
        with the Converse API", streaming, Bedrock user guide:
        https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-use-converse-api.html;
        GuardrailStreamConfiguration:
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_GuardrailStreamConfiguration.html).
        Events (ConverseStreamOutput: messageStart, contentBlockStart, contentBlockDelta,
        contentBlockStop, messageStop, metadata, and the stream's exceptions:
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html)."""
        call = self._call(request)
        if "guardrailConfig" in call:
            call["guardrailConfig"] = {**call["guardrailConfig"], "streamProcessingMode": "sync"}
        client = self.clients.within(deadline, self.name)
        try:
            events = client.converse_stream(**call)["stream"]
            tools: dict[int, int] = {}  # Converse content block index -> OpenAI tool call index
            for event in events:
                if "contentBlockStart" in event:
                    start = event["contentBlockStart"]
                    use = start.get("start", {}).get("toolUse")
                    if use is not None:
                        index = tools.setdefault(start.get("contentBlockIndex", 0), len(tools))
                        yield Delta(
                            tool_calls=(
                                {
                                    "index": index,
                                    "id": use["toolUseId"],
                                    "type": "function",
                                    "function": {"name": use["name"], "arguments": ""},
                                },
                            )
                        )
                elif "contentBlockDelta" in event:
                    block = event["contentBlockDelta"]
                    delta = block.get("delta", {})
                    if "text" in delta:
                        yield Delta(text=delta["text"])
                    elif "toolUse" in delta:
                        index = tools.setdefault(block.get("contentBlockIndex", 0), len(tools))
                        fragment = {
                            "index": index,
                            "function": {"arguments": delta["toolUse"].get("input", "")},
                        }
                        yield Delta(tool_calls=(fragment,))
                    elif "reasoningContent" in delta:
                        yield Delta(reasoning=delta["reasoningContent"].get("text", ""))
                elif "messageStop" in event:
                    reason = event["messageStop"].get("stopReason", "end_turn")
                    yield Delta(
                        finish_reason=FINISH.get(reason, "stop"),
                        guardrail_intervened=reason == "guardrail_intervened",
                    )
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                    yield Delta(
                        input_tokens=usage.get("inputTokens", 0),
                        output_tokens=usage.get("outputTokens", 0),
                        cached_tokens=usage.get("cacheReadInputTokens"),
                    )
        except (ClientError, BotoCoreError) as error:  # EventStreamError is a ClientError
            raise provider_error(self.name, error) from None


def invoke_json(client: Any, target: str, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """InvokeModel with a JSON body and a JSON answer (embedding and image models)."""
    try:
        response = client.invoke_model(
            modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
    except (ClientError, BotoCoreError) as error:
        raise provider_error(target, error) from None
    return json.loads(response["body"].read())


class BedrockEmbeddings:
    def __init__(self, client: Any, *, model_id: str, invoke_id: str | None = None) -> None:
        self.clients = as_timed(client)
        self.model_id = model_id
        self.invoke_id = invoke_id or model_id  # as BedrockChat
        self.name = f"bedrock:{model_id}"

    def embed(self, inputs: list[str], *, dimensions: int | None, deadline: Deadline) -> EmbeddingResult:
        vectors, tokens = [], 0
        for index, text in enumerate(inputs):  # Titan Text Embeddings V2 takes one text per call
            body: dict[str, Any] = {"inputText": text}
            if dimensions:
                body["dimensions"] = dimensions
            client = self.clients.within(deadline, f"{self.name} input {index + 1} of {len(inputs)}")
            payload = invoke_json(client, self.name, self.invoke_id, body)
            vectors.append(payload["embedding"])
            tokens += payload.get("inputTextTokenCount", 0)
        return EmbeddingResult(vectors=vectors, input_tokens=tokens)


# The statuses a serving resource answers in (Bedrock API reference: GetCustomModelDeployment status
# Creating | Active | Failed; GetProvisionedModelThroughput status Creating | InService | Updating |
# Failed). "While a Provisioned Throughput is updating, you can run inference using the Provisioned
# Throughput without disrupting the on-going traffic" (Bedrock user guide, "Modify a Provisioned
# Throughput"): each pipeline run updates it to the new model.
CUSTOM_MODEL_READY = {"on_demand": {"Active"}, "provisioned": {"InService", "Updating"}}


class CustomModelChat(BedrockChat):
    """A custom model the training approach serves: its on-demand deployment or its Provisioned
    Throughput, called with Converse by ARN ("Use a deployment for on-demand inference", Bedrock user
    guide: the deployment's ARN is the modelId; a Provisioned Throughput's ARN likewise). The ARNs are
    made when the customization pipeline first runs, so the target knows the resource by the name the
    pipeline gives it and looks the ARN up (GetCustomModelDeployment / GetProvisionedModelThroughput)
    on first use, again after RESOLVED_SECONDS. A resource that does not exist yet or is not ready
    (Creating, Updating, Failed) is a retryable failure: the alias falls back to its next target."""

    RESOLVED_SECONDS = 300.0
    LOOKUP_SECONDS = 2.0

    def __init__(
        self,
        runtime_client: Any,
        control_client: Any,
        *,
        resource_name: str,
        serving: str,
        guardrail: tuple[str, str] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(runtime_client, model_id=f"custom/{resource_name}", guardrail=guardrail)
        self.control = as_timed(control_client)
        self.resource_name = resource_name
        self.serving = serving
        self.clock = clock
        self._resolved_until = 0.0

    def _resolve(self, deadline: Deadline) -> None:
        if self.clock() < self._resolved_until:
            return
        client = self.control.within(deadline, f"{self.name} lookup", cap=self.LOOKUP_SECONDS)
        try:
            if self.serving == "on_demand":
                found = client.get_custom_model_deployment(customModelDeploymentIdentifier=self.resource_name)
                arn = found["customModelDeploymentArn"]
            else:
                found = client.get_provisioned_model_throughput(provisionedModelId=self.resource_name)
                arn = found["provisionedModelArn"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise ProviderError(
                    f"{self.name}: not deployed yet (the customization pipeline creates it on its first run)",
                    retryable=True,
                ) from None
            raise provider_error(self.name, error) from None
        except BotoCoreError as error:
            raise provider_error(self.name, error) from None
        if found["status"] not in CUSTOM_MODEL_READY[self.serving]:
            raise ProviderError(f"{self.name}: {found['status']}, not ready to answer", retryable=True)
        self.invoke_id = arn
        self._resolved_until = self.clock() + self.RESOLVED_SECONDS

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        self._resolve(deadline)
        try:
            return super().chat(request, deadline=deadline)
        except ProviderError as error:
            raise self._stale(error) from None

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        """Not a generator itself: the lookup runs (and fails) at the call, before any byte is sent."""
        self._resolve(deadline)
        return self._watched(super().stream(request, deadline=deadline))

    def _watched(self, deltas: Iterator[Delta]) -> Iterator[Delta]:
        try:
            yield from deltas
        except ProviderError as error:
            raise self._stale(error) from None

    def _stale(self, error: ProviderError) -> ProviderError:
        """A refused call forgets the ARN (the pipeline may have made the resource anew, under the same
        name and a new ARN), so the next request looks it up again. A refusal of ours (AccessDenied,
        ResourceNotFound: no message for the caller) is made retryable, so the alias falls back
        instead of answering 502; the model's own refusal of the request (a 400) stays as it is."""
        self._resolved_until = 0.0
        if error.retryable or error.client_message is not None:
            return error
        return ProviderError(f"{error} (the custom model's ARN is looked up again)", retryable=True)
