"""The OpenAI wire format the gateway accepts and returns (the subset it supports)."""

from __future__ import annotations

import base64
import re
import struct
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]

# What an OpenAI data URL may carry as an image (OpenAI API reference, Chat Completions, image_url:
# "Either a URL of the image or the base64 encoded image data").
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


PROMPT_VERSION = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _Request(BaseModel):
    # Unknown fields that OpenAI clients send (user, n=1, ...) are ignored, not rejected.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["text"]
    text: str
    # A prompt-cache breakpoint after this part ({"type": "ephemeral"}, the Anthropic and LiteLLM
    # convention): a Converse cachePoint on models with prompt caching, dropped elsewhere (it changes
    # the cost and latency of a request, never its answer).
    cache_control: dict[str, Any] | None = None


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _data_or_web(cls, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        match = DATA_URL.match(url)
        if match is None or not match["mime"].startswith("image/"):
            raise ValueError("an image is a data URL (data:image/png;base64,...) or an http(s) URL")
        try:
            base64.b64decode(match["data"], validate=True)
        except ValueError:
            raise ValueError("the data URL's image is not valid base64") from None
        return url

    @property
    def data(self) -> tuple[str, bytes] | None:
        """(media type, bytes) of a data URL; None for a web URL."""
        match = DATA_URL.match(self.url)
        return (match["mime"], base64.b64decode(match["data"])) if match else None


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Request):
    name: str = Field(min_length=1)
    arguments: str  # JSON text, as the model produced it


class ToolCall(_Request):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Request):
    role: Role
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None  # assistant: the tools the model called
    tool_call_id: str | None = None  # tool: which call this is the result of
    cache_control: dict[str, Any] | None = None  # a prompt-cache breakpoint after the message (as TextPart)

    @field_validator("role", mode="before")
    @classmethod
    def _developer_is_system(cls, role: Any) -> Any:
        # OpenAI's `developer` role is the system role of its newer models ("developer messages are
        # instructions provided by the application developer, prioritized ahead of user messages",
        # OpenAI API reference, Chat Completions, messages): the backends know it as `system`.
        return "system" if role == "developer" else role

    @model_validator(mode="after")
    def _fields_for_role(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id (the id of the call it answers)")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (null only on an assistant message with tool_calls)")
        if self.images and self.role != "user":
            raise ValueError("image content parts are accepted in user messages only")
        return self

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> list[ImageUrl]:
        if not isinstance(self.content, list):
            return []
        return [part.image_url for part in self.content if isinstance(part, ImagePart)]

    @property
    def text_only(self) -> bool:
        return not self.images

    def prefixed(self, text: str) -> Message:
        """This message with `text` before its own, its other parts (images) kept."""
        if isinstance(self.content, list):
            return self.model_copy(update={"content": [TextPart(type="text", text=text), *self.content]})
        return self.model_copy(update={"content": "\n\n".join(t for t in (text, self.content) if t)})


class FunctionDefinition(_Request):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Request):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Request):
    name: str = Field(min_length=1)


class StreamOptions(BaseModel):
    """OpenAI's stream_options: include_usage adds a last chunk with the usage and no choices."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    include_usage: bool = False


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


# The optional OpenAI parameters that change the answer when set: part of the cache key
# (lambdas/gateway/cache.py) and forwarded as sent to OpenAI-format backends (providers/openai_format.py).
ANSWER_OPTIONS = (
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
)


class ChatCompletionRequest(_Request):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=16)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = Field(default=None, max_length=256)  # hashed into the request's log, never sent on
    reasoning_effort: ReasoningEffort | None = None
    # OpenAI's request metadata: up to 16 pairs, keys up to 64 characters, values up to 512 (OpenAI API
    # reference, "Create chat completion", metadata). Never sent to a model and not in the cache key;
    # `prompt_version` names the prompt in the user-feedback metric (lambdas/gateway/feedback.py).
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = (
        Field(default=None, max_length=16)
    )
    # Gateway extensions (pass them with the client's `extra_body`).
    cache: bool = False
    knowledge_base: str | None = None

    @field_validator("metadata")
    @classmethod
    def _prompt_version(cls, metadata: dict[str, str] | None) -> dict[str, str] | None:
        """`prompt_version` becomes a CloudWatch dimension value (ASCII, not blank: CloudWatch API
        reference, Dimension), so it is held to a label's characters."""
        version = (metadata or {}).get("prompt_version")
        if version is not None and not PROMPT_VERSION.fullmatch(version):
            raise ValueError(
                f"metadata.prompt_version {version!r}: use 1 to 64 of A-Z a-z 0-9 . _ : - "
                "(it becomes a metric dimension)"
            )
        return metadata

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences")
        return stop

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # OpenAI API reference, Chat Completions, response_format: {type: text | json_object |
        # json_schema}, json_schema = {name, description?, schema?, strict?}.
        if value is None:
            return None
        kind = value.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError("type must be text, json_object or json_schema")
        if kind == "json_schema":
            spec = value.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ValueError("json_schema needs an object with a name (and a schema)")
            if not isinstance(spec.get("schema", {}), dict):
                raise ValueError("json_schema.schema must be a JSON Schema object")
        return value

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[Message]) -> list[Message]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("needs at least one user message")
        return messages

    @model_validator(mode="after")
    def _named_tool_exists(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice names {self.tool_choice.function.name!r}, which is not in tools"
                )
        if self.tool_choice not in (None, "none") and not self.tools:
            raise ValueError("tool_choice needs tools")
        return self

    @property
    def stop_sequences(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def response_type(self) -> str:
        return (self.response_format or {}).get("type", "text")

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.logprobs) or bool(self.top_logprobs)


class ImageRequest(_Request):
    """OpenAI's images.generate parameters the gateway honours (any other is refused by name)."""

    model: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = Field(default=None, pattern=r"^(auto|[0-9]{1,5}x[0-9]{1,5})$")
    quality: Literal["auto", "standard", "hd", "medium", "high"] | None = None
    # OpenAI's default is url; without an image store the gateway answers b64_json (images.py).
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = Field(default=None, max_length=256)  # hashed into the metrics, not sent on


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: str | Annotated[list[str], Field(min_length=1, max_length=128)]
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = Field(default=None, max_length=256)  # as in chat: hashed into the log, not sent on

    @field_validator("input", mode="before")
    @classmethod
    def _text_not_tokens(cls, value: Any) -> Any:
        # OpenAI accepts token ids (a list of ints, or of int lists) that its own tokenizer made;
        # the gateway's models tokenize text themselves, so ids cannot be turned back into text here.
        if (
            isinstance(value, list)
            and value
            and all(
                isinstance(item, int) or (isinstance(item, list) and all(isinstance(i, int) for i in item))
                for item in value
            )
        ):
            raise ValueError(
                "token ids are not accepted, send text (LangChain's OpenAIEmbeddings: "
                "check_embedding_ctx_length=False)"
            )
        return value

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def chat_response(
    *,
    model: str,
    text: str,
    finish_reason: str,
    input_tokens: int,
    output_tokens: int,
    extra: dict[str, Any] | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    reasoning_content: str | None = None,
    cached_tokens: int | None = None,
    logprobs: dict[str, Any] | None = None,
    choices: Sequence[dict[str, Any]] = (),
    response_id: str | None = None,
) -> dict[str, Any]:
    """`choices`: every choice as an OpenAI-format backend gave it (n > 1); else the one answer.
    `response_id`: the id the gateway chose (POST /v1/feedback names it), else a new one."""
    if choices:
        answers = [{**choice, "index": i} for i, choice in enumerate(choices)]
    else:
        # OpenAI answers a tool call with content null and the calls in message.tool_calls.
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = list(tool_calls)
        if reasoning_content:
            message["reasoning_content"] = reasoning_content
        answer: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
        if logprobs is not None:
            answer["logprobs"] = logprobs
        answers = [answer]
    usage: dict[str, Any] = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {
        "id": response_id or new_response_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": answers,
        "usage": usage,
        **(extra or {}),
    }


def new_response_id() -> str:
    """A chat completion's id, as OpenAI writes them (chatcmpl-...)."""
    return f"chatcmpl-{uuid.uuid4().hex}"


class FeedbackRequest(_Request):
    """POST /v1/feedback: a rating of one chat answer by the tenant that got it."""

    response_id: str = Field(pattern=r"^chatcmpl-[A-Za-z0-9]{1,64}$")
    score: float = Field(ge=0, le=1)  # 1: satisfied (thumbs up), 0: not (thumbs down), or between
    comment: str | None = Field(default=None, max_length=2000)


def encode_vector(vector: list[float], encoding_format: str) -> list[float] | str:
    """`base64`: the little-endian float32 bytes, base64-encoded (what OpenAI clients ask for by default)."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embedding_response(
    *, model: str, vectors: list[list[float]], input_tokens: int, encoding_format: str = "float"
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
    }
