"""A local stand-in for every model (used by `make gateway-local --echo` and benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator

from .config import Settings
from .providers.base import ChatResult, Delta, EmbeddingResult
from .service import Gateway


class EchoChat:
    applies_guardrail_itself = True

    def __init__(self, name: str) -> None:
        self.name = f"echo:{name}"

    def chat(self, request, *, deadline) -> ChatResult:
        text = request.messages[-1].text
        return ChatResult(
            text=f"echo: {text}", finish_reason="stop", input_tokens=len(text.split()), output_tokens=2
        )

    def stream(self, request, *, deadline) -> Iterator[Delta]:
        """The same answer, a word at a time."""
        answer = self.chat(request, deadline=deadline)
        words = answer.text.split(" ")
        for index, word in enumerate(words):
            yield Delta(text=word if index == 0 else f" {word}")
        yield Delta(finish_reason="stop", input_tokens=answer.input_tokens, output_tokens=len(words))


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
