"""The customer assistant: an Amazon Lex V2 bot in front of the gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from genai_stack.catalog import missing_types
from genai_stack.profile.common import _known_retention, _Strict, located
from genai_stack.profile.gateway import Gateway

# Lex V2 locales the bot's texts exist for (stacks/components/assistant_bot.py). zh_HK is Cantonese
# (Hong Kong) ("Supported languages and locales in Amazon Lex V2":
# https://docs.aws.amazon.com/lexv2/latest/dg/how-languages.html).
Locale = Literal["en_GB", "en_US", "zh_HK"]
# Regions where that page says zh_HK (and other locales) are not offered.
NO_CANTONESE = ("ap-southeast-1", "af-south-1")


class Assistant(_Strict):
    """A Lex V2 bot for a utility's customers: intents CheckBill, ReportOutage and ConnectService,
    fulfilled by a function over a DynamoDB stand-in of the utility's systems, and a fallback that asks
    the gateway (`alias`, grounded on `knowledge_base`, with citations) for anything else."""

    locales: list[Locale] = Field(
        min_length=1, max_length=3, description="Lex V2 locales: en_GB, en_US, zh_HK"
    )
    alias: str = Field(description="The gateway chat alias the fallback intent asks")
    knowledge_base: str = Field(description="A knowledge base of gateway.knowledge_bases the answers cite")
    hotline: str = Field(
        min_length=3, max_length=40, description="The phone number replies give when the bot cannot help"
    )
    idle_session_seconds: int = Field(default=300, ge=60, le=86400)
    conversation_log_days: int = Field(default=90, description="Retention of the text conversation logs")

    _retention = field_validator("conversation_log_days")(
        classmethod(lambda cls, days: _known_retention(days))
    )

    @field_validator("locales")
    @classmethod
    def _unique(cls, locales: list[str]) -> list[str]:
        if len(set(locales)) != len(locales):
            raise ValueError("lists a locale more than once")
        return locales


def assistant_problems(assistant: Assistant, gateway: Gateway | None, region: str | None) -> list[str]:
    if gateway is None:
        return [located("", "needs a gateway section: the fallback intent asks the gateway")]
    problems = []
    if gateway.auth != "iam":
        problems.append(
            located(
                "alias",
                "needs gateway.auth: iam: the fulfilment function signs its requests with its role "
                "(SigV4); it holds no API key",
            )
        )
    if assistant.alias not in gateway.aliases:
        known = ", ".join(gateway.aliases) or "none"
        problems.append(located("alias", f"{assistant.alias!r} is not a chat alias of the gateway ({known})"))
    if assistant.knowledge_base not in gateway.knowledge_bases:
        known = ", ".join(gateway.knowledge_bases) or "none"
        problems.append(
            located(
                "knowledge_base",
                f"{assistant.knowledge_base!r} is not one of gateway.knowledge_bases ({known})",
            )
        )
    if region is not None:
        if "AWS::Lex::Bot" in missing_types(region):
            problems.append(
                located("locales", f"needs Amazon Lex V2, which CloudFormation does not offer in {region}")
            )
        elif "zh_HK" in assistant.locales and region in NO_CANTONESE:
            problems.append(
                located(
                    "locales",
                    f"zh_HK (Cantonese) is not offered in {region} (Lex V2 supported languages page); "
                    "deploy to ap-southeast-2, ap-northeast-1 or another Lex region",
                )
            )
    return problems
