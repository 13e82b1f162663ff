"""One guardrail for every backend: targets that cannot enforce it themselves are wrapped with
ApplyGuardrail on the input and on the output (Bedrock passes it inside Converse instead)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import Deadline, as_timed
from .errors import ProviderError
from .providers.aws_errors import provider_error
from .providers.base import ChatProvider, ChatResult, Delta
from .schema import ChatCompletionRequest


class Guardrail:
    """`client`: a bedrock-runtime client or a TimedClients of them."""

    def __init__(self, client: Any, *, identifier: str, version: str) -> None:
        self.clients = as_timed(client)
        self.identifier = identifier
        self.version = version

    def check(self, source: str, text: str, deadline: Deadline | None = None) -> str | None:
        """None when the text passes, else the guardrail's blocked message."""
        return self.check_content(source, {"text": {"text": text}}, deadline)

    def check_content(
        self, source: str, content: dict[str, Any], deadline: Deadline | None = None
    ) -> str | None:
        """One GuardrailContentBlock (text, or an image: lambdas/gateway/images.py); as `check`."""
        client = self.clients.within(deadline, f"the guardrail check ({source})")
        try:
            response = client.apply_guardrail(
                guardrailIdentifier=self.identifier,
                guardrailVersion=self.version,
                source=source,
                content=[content],
            )
        except (ClientError, BotoCoreError) as error:
            raise provider_error("guardrail", error) from None
        images = (response.get("guardrailCoverage") or {}).get("images")
        if "image" in content and images and images.get("guarded", 0) < images.get("total", 0):
            # "The count of images guardrails guarded" below the total: an image went through no
            # filter (GuardrailImageCoverage, Bedrock API reference:
            # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_GuardrailImageCoverage.html).
            raise ProviderError(
                f"guardrail: {images.get('guarded', 0)} of {images.get('total', 0)} images evaluated",
                retryable=False,
            )
        if response.get("action") != "GUARDRAIL_INTERVENED":
            return None
        outputs = response.get("outputs") or [{"text": ""}]
        return "".join(o.get("text", "") for o in outputs)


# A stream is checked in windows before it is released: the first short, for a quick first token,
# then one ApplyGuardrail text unit each ("a text unit can contain up to 1,000 characters", Amazon
# Bedrock pricing, Guardrails; ApplyGuardrail:
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ApplyGuardrail.html). Each
# check also sees the end of the text released before it, so that words cut at a window's edge are
# read whole.
FIRST_WINDOW_CHARS = 200
WINDOW_CHARS = 1000
OVERLAP_CHARS = 100


class Guarded:
    """A target wrapped in ApplyGuardrail: INPUT before the call, OUTPUT after it (on a stream: on
    each window of output before it is released, and the stream ends with the guardrail's message
    when it intervenes)."""

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
        # A tool call's arguments are output too (and a tool call alone has no text to check).
        output = "\n".join(
            [result.text, *(c.get("function", {}).get("arguments", "") for c in result.tool_calls)]
        )
        blocked = self.guardrail.check("OUTPUT", output, deadline) if output.strip() else None
        if blocked is None:
            return result
        return ChatResult(
            text=blocked,
            finish_reason="content_filter",
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            guardrail_intervened=True,
        )

    def stream(self, request: ChatCompletionRequest, *, deadline: Deadline) -> Iterator[Delta]:
        prompt = "\n".join(m.text for m in request.messages if m.role != "assistant")
        blocked = self.guardrail.check("INPUT", prompt, deadline)
        if blocked is not None:
            yield Delta(text=blocked, finish_reason="content_filter", guardrail_intervened=True)
            return
        held: list[Delta] = []
        pending, released = "", ""
        window = FIRST_WINDOW_CHARS
        upstream = self.target.stream(request, deadline=deadline)
        try:
            for delta in upstream:
                held.append(delta)
                pending += delta.text + "".join(
                    c.get("function", {}).get("arguments", "") for c in delta.tool_calls
                )
                if len(pending) < window and delta.finish_reason is None:
                    continue
                if pending.strip():
                    blocked = self.guardrail.check("OUTPUT", released[-OVERLAP_CHARS:] + pending, deadline)
                    if blocked is not None:
                        yield Delta(text=blocked, finish_reason="content_filter", guardrail_intervened=True)
                        return
                released += pending
                pending, window = "", WINDOW_CHARS
                yield from held
                held = []
            if pending.strip():
                blocked = self.guardrail.check("OUTPUT", released[-OVERLAP_CHARS:] + pending, deadline)
                if blocked is not None:
                    yield Delta(text=blocked, finish_reason="content_filter", guardrail_intervened=True)
                    return
            yield from held
        finally:
            close = getattr(upstream, "close", None)
            if close is not None:
                close()  # an intervention stops reading the model (and frees its connection)


__all__ = ["Guarded", "Guardrail", "ProviderError"]
