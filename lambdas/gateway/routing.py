"""Routing by request: a route is a name clients call that picks, per request, a small (cheap, fast)
chat alias or a large one by what the request measurably needs; the large one when any of its
conditions holds: the prompt's estimated tokens above `prompt_tokens_over`, tools offered, an image
in a message. Each alias keeps its own targets and fallbacks. The choice and its reason are in the
`x-genai-route` header and the RoutedLarge metric (lambdas/gateway/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ChatCompletionRequest

CHARS_PER_TOKEN = 4  # a rough estimate of ASCII text's tokens before a model is called
ROUTE_HEADER = "x-genai-route"


def estimated_tokens(*texts: str) -> int:
    """A token per 4 characters of ASCII (the usual rate of English and code) and one per other
    character (Chinese, Japanese and Korean text run about one token per character)."""
    total = 0
    for text in texts:
        ascii_chars = sum(1 for c in text if c.isascii())
        total += -(-ascii_chars // CHARS_PER_TOKEN) + (len(text) - ascii_chars)
    return total


@dataclass(frozen=True)
class Route:
    small: str
    large: str
    prompt_tokens_over: int | None = None
    tools: bool = False
    images: bool = False

    def choose(self, request: ChatCompletionRequest) -> tuple[str, str]:
        """The alias that answers, and why (the header's text)."""
        reasons = []
        if self.prompt_tokens_over is not None:
            tokens = estimated_tokens(*(m.text for m in request.messages))
            if tokens > self.prompt_tokens_over:
                reasons.append(f"prompt of about {tokens} tokens > {self.prompt_tokens_over}")
        if self.tools and request.tools:
            reasons.append(f"{len(request.tools)} tool{'s' if len(request.tools) != 1 else ''} offered")
        if self.images and any(not m.text_only for m in request.messages):
            reasons.append("an image")
        if reasons:
            return self.large, "; ".join(reasons)
        return self.small, "no condition of the large alias holds"
