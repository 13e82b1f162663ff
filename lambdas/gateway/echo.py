"""A local stand-in for every model (used by `make gateway-local --echo` and benchmarks)."""

from __future__ import annotations

from lambdas.gateway.config import Settings
from lambdas.gateway.providers.base import ChatResult, EmbeddingResult
from lambdas.gateway.service import Gateway


class EchoChat:
    applies_guardrail_itself = True

    def __init__(self, name: str) -> None:
        self.name = f"echo:{name}"

    def chat(self, request, *, deadline) -> ChatResult:
        text = request.messages[-1].text
        return ChatResult(
            text=f"echo: {text}", finish_reason="stop", input_tokens=len(text.split()), output_tokens=2
        )


class EchoEmbeddings:
    def __init__(self, name: str) -> None:
        self.name = f"echo:{name}"

    def embed(self, inputs, *, dimensions, deadline) -> EmbeddingResult:
        return EmbeddingResult(
            vectors=[[float(len(t))] * (dimensions or 8) for t in inputs], input_tokens=len(inputs)
        )


def echo_gateway(settings: Settings) -> Gateway:
    return Gateway(
        chat_routes={alias: [EchoChat(alias)] for alias in settings.chat},
        embedding_routes={alias: EchoEmbeddings(alias) for alias in settings.embeddings},
    )
