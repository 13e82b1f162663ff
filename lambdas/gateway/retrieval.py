"""Retrieval-augmented answers: passages from a Bedrock knowledge base ground the prompt, the answer
carries citations, and the contextual grounding check of the guardrail judges it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import Deadline, as_timed
from .providers.aws_errors import provider_error


@dataclass(frozen=True)
class Passage:
    text: str
    source: str


class Retriever:
    """`client`: a bedrock-agent-runtime client or a TimedClients of them."""

    def __init__(self, client: Any, *, results: int = 5) -> None:
        self.clients = as_timed(client)
        self.results = results

    def retrieve(self, knowledge_base_id: str, query: str, deadline: Deadline | None = None) -> list[Passage]:
        client = self.clients.within(deadline, "knowledge base retrieval")
        try:
            response = client.retrieve(
                knowledgeBaseId=knowledge_base_id,
                retrievalQuery={"text": query},
                retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": self.results}},
            )
        except (ClientError, BotoCoreError) as error:
            raise provider_error("knowledge base", error) from None
        passages = []
        for result in response.get("retrievalResults", []):
            location = result.get("location", {})
            # An S3 data source's object, or a Kendra GenAI index's document (RetrievalResultLocation:
            # s3Location.uri, kendraDocumentLocation.uri); else the location's type.
            source = (
                location.get("s3Location", {}).get("uri")
                or location.get("kendraDocumentLocation", {}).get("uri")
                or location.get("type", "unknown")
            )
            passages.append(Passage(text=result.get("content", {}).get("text", ""), source=source))
        return passages


def grounding_prompt(passages: list[Passage]) -> str:
    numbered = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, start=1))
    return (
        "Answer only from the numbered passages below and cite them as [n]. If they do not contain the "
        f"answer, say that you do not know.\n\n{numbered}"
    )


def grounding_check(
    client: Any,
    *,
    guardrail: tuple[str, str],
    passages: list[Passage],
    query: str,
    answer: str,
    deadline: Deadline | None = None,
) -> str | None:
    """The guardrail's contextual grounding check (qualifiers grounding_source, query, guard_content):
    None when the answer is grounded and relevant, else the guardrail's blocked message."""
    timed = as_timed(client).within(deadline, "the grounding check")
    try:
        response = timed.apply_guardrail(
            guardrailIdentifier=guardrail[0],
            guardrailVersion=guardrail[1],
            source="OUTPUT",
            content=[
                {"text": {"text": "\n".join(p.text for p in passages), "qualifiers": ["grounding_source"]}},
                {"text": {"text": query, "qualifiers": ["query"]}},
                {"text": {"text": answer, "qualifiers": ["guard_content"]}},
            ],
        )
    except (ClientError, BotoCoreError) as error:
        raise provider_error("guardrail", error) from None
    if response.get("action") != "GUARDRAIL_INTERVENED":
        return None
    return "".join(o.get("text", "") for o in response.get("outputs") or [])
