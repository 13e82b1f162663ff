"""Bedrock targets: chat through Converse (the guardrail travels with the call), embeddings through
InvokeModel (Titan Text Embeddings V2 body)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.gateway.deadline import Deadline, as_timed
from lambdas.gateway.providers.aws_errors import provider_error
from lambdas.gateway.providers.base import ChatResult, EmbeddingResult
from lambdas.gateway.schema import ChatCompletionRequest

# Converse stop reasons -> OpenAI finish reasons.
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
}


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

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        system = [{"text": m.text} for m in request.messages if m.role == "system"]
        messages = [
            {"role": m.role, "content": [{"text": m.text}]} for m in request.messages if m.role != "system"
        ]
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
        if self.guardrail:
            call["guardrailConfig"] = {
                "guardrailIdentifier": self.guardrail[0],
                "guardrailVersion": self.guardrail[1],
            }
        client = self.clients.within(deadline, self.name)
        try:
            response = client.converse(**call)
        except (ClientError, BotoCoreError) as error:
            raise provider_error(self.name, error) from None
        content = response["output"]["message"]["content"]
        usage = response.get("usage", {})
        reason = response.get("stopReason", "end_turn")
        return ChatResult(
            text="".join(block.get("text", "") for block in content),
            finish_reason=FINISH.get(reason, "stop"),
            input_tokens=usage.get("inputTokens", 0),
            output_tokens=usage.get("outputTokens", 0),
            guardrail_intervened=reason == "guardrail_intervened",
        )


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
            try:
                response = client.invoke_model(
                    modelId=self.invoke_id,
                    body=json.dumps(body),
                    contentType="application/json",
                    accept="application/json",
                )
            except (ClientError, BotoCoreError) as error:
                raise provider_error(self.name, error) from None
            payload = json.loads(response["body"].read())
            vectors.append(payload["embedding"])
            tokens += payload.get("inputTextTokenCount", 0)
        return EmbeddingResult(vectors=vectors, input_tokens=tokens)
