"""The OpenAI wire format the gateway accepts and returns (the subset it supports)."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant"]


class _Request(BaseModel):
    # Unknown fields that OpenAI clients send (user, n=1, ...) are ignored, not rejected.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["text"]
    text: str


class Message(_Request):
    role: Role
    content: str | list[TextPart]

    @field_validator("role", mode="before")
    @classmethod
    def _developer_is_system(cls, role: Any) -> Any:
        # OpenAI's `developer` role is the system role of its newer models ("developer messages are
        # instructions provided by the application developer, prioritized ahead of user messages",
        # OpenAI API reference, Chat Completions, messages): the backends know it as `system`.
        return "system" if role == "developer" else role

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatCompletionRequest(_Request):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream: Literal[False] = False
    n: Literal[1] = 1
    # Gateway extensions (pass them with the client's `extra_body`).
    cache: bool = False
    knowledge_base: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences")
        return stop

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[Message]) -> list[Message]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("needs at least one user message")
        return messages

    @property
    def stop_sequences(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: str | Annotated[list[str], Field(min_length=1, max_length=128)]
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"

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
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        **(extra or {}),
    }


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
