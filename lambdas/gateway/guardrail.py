"""One guardrail for every backend: targets that cannot enforce it themselves are wrapped with
ApplyGuardrail on the input and on the output (Bedrock passes it inside Converse instead)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.gateway.deadline import Deadline, as_timed
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.aws_errors import provider_error
from lambdas.gateway.providers.base import ChatProvider, ChatResult
from lambdas.gateway.schema import ChatCompletionRequest


class Guardrail:
    """`client`: a bedrock-runtime client or a TimedClients of them."""

    def __init__(self, client: Any, *, identifier: str, version: str) -> None:
        self.clients = as_timed(client)
        self.identifier = identifier
        self.version = version

    def check(self, source: str, text: str, deadline: Deadline | None = None) -> str | None:
        """None when the text passes, else the guardrail's blocked message."""
        client = self.clients.within(deadline, f"the guardrail check ({source})")
        try:
            response = client.apply_guardrail(
                guardrailIdentifier=self.identifier,
                guardrailVersion=self.version,
                source=source,
                content=[{"text": {"text": text}}],
            )
        except (ClientError, BotoCoreError) as error:
            raise provider_error("guardrail", error) from None
        if response.get("action") != "GUARDRAIL_INTERVENED":
            return None
        outputs = response.get("outputs") or [{"text": ""}]
        return "".join(o.get("text", "") for o in outputs)


class Guarded:
    """A target wrapped in ApplyGuardrail: INPUT before the call, OUTPUT after it."""

    applies_guardrail_itself = True

    def __init__(self, target: ChatProvider, guardrail: Guardrail) -> None:
        self.target = target
        self.guardrail = guardrail
        self.name = target.name

    def chat(self, request: ChatCompletionRequest, *, deadline: Deadline) -> ChatResult:
        prompt = "\n".join(m.text for m in request.messages if m.role != "assistant")
        blocked = self.guardrail.check("INPUT", prompt, deadline)
        if blocked is not None:
            return ChatResult(
                text=blocked,
                finish_reason="content_filter",
                input_tokens=0,
                output_tokens=0,
                guardrail_intervened=True,
            )
        result = self.target.chat(request, deadline=deadline)
        blocked = self.guardrail.check("OUTPUT", result.text, deadline)
        if blocked is None:
            return result
        return ChatResult(
            text=blocked,
            finish_reason="content_filter",
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            guardrail_intervened=True,
        )


__all__ = ["Guarded", "Guardrail", "ProviderError"]
