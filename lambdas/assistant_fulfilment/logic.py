"""What the utility assistant's Lex V2 bot asks its fulfilment function to do, without AWS: read the
intent and slots of a Lex V2 event, act on the records of the utility's systems (a DynamoDB stand-in:
`Records`), ask the gateway for everything else (`Answers`), and write the Lex V2 response.

Lex V2 Lambda input and response formats: Lex V2 developer guide, "Interpreting the input event
format" and "Preparing the response format"
(https://docs.aws.amazon.com/lexv2/latest/dg/lambda-input-format.html,
https://docs.aws.amazon.com/lexv2/latest/dg/lambda-response-format.html). Every reply is written in
the language of the session's locale (`bot.localeId`): en_* in English, zh_HK in written Chinese."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

INTENTS = ("CheckBill", "ReportOutage", "ConnectService", "FallbackIntent")
ACCOUNT_MISSES = "accountMisses"  # session attribute: account numbers not found in this session
MAX_ACCOUNT_TRIES = 2
# A transcript that is only an identifier (an account, premises or phone number), not a question.
IDENTIFIER = re.compile(r"[+A-Za-z]{0,4}[0-9][0-9 ()+\-]{4,}[0-9A-Za-z)]?")

# The customer-facing texts, by language. {…} fields are filled from the records.
# The customer-facing texts by language ({...} fields are filled from the records), and the gateway's
# system prompt: texts.json beside this module.
TEXTS: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "texts.json").read_text(encoding="utf-8")
)


def language(locale: str) -> str:
    return "zh" if locale.startswith("zh") else "en"


class Records(Protocol):
    """The utility's systems, as the bot sees them (lambdas/assistant_fulfilment/handler.py: DynamoDB)."""

    def account(self, number: str) -> Mapping[str, Any] | None: ...
    def outage(self, district: str) -> Mapping[str, Any] | None: ...
    def add(self, kind: str, reference: str, item: Mapping[str, Any]) -> None: ...


class Answers(Protocol):
    """The gateway: (question, language) -> (answer text, sources); raises AnswerUnavailable."""

    def __call__(self, question: str, lang: str) -> tuple[str, list[str]]: ...


class AnswerUnavailable(Exception):
    """The gateway did not answer (an error status, a timeout, a blocked answer)."""


class BadEvent(ValueError):
    """Not a Lex V2 fulfilment event this bot sends."""


@dataclass(frozen=True)
class Turn:
    intent: str
    locale: str
    slots: dict[str, str]  # interpreted values of the filled slots (a district's English name)
    said: dict[str, str]  # what the customer said (the Chinese name of Sha Tin), for replies
    transcript: str
    session_attributes: dict[str, str]

    @property
    def lang(self) -> str:
        return language(self.locale)


def parse(event: Mapping[str, Any]) -> Turn:
    try:
        intent = event["sessionState"]["intent"]
        locale = event["bot"]["localeId"]
    except (KeyError, TypeError):
        raise BadEvent("not a Lex V2 event: sessionState.intent and bot.localeId are required") from None
    if intent.get("name") not in INTENTS:
        raise BadEvent(f"intent {intent.get('name')!r} is not one of {', '.join(INTENTS)}")
    slots, said = {}, {}
    for name, slot in (intent.get("slots") or {}).items():
        value = (slot or {}).get("value") or {}
        if value.get("interpretedValue"):
            slots[name] = str(value["interpretedValue"])
            said[name] = str(value.get("originalValue") or value["interpretedValue"])
    return Turn(
        intent=intent["name"],
        locale=locale,
        slots=slots,
        said=said,
        transcript=str(event.get("inputTranscript") or ""),
        session_attributes=dict((event.get("sessionState") or {}).get("sessionAttributes") or {}),
    )


# Lex V2 takes at most 1,024 characters in a message's content (Lex V2 runtime API reference, Message:
# content, length 1 to 1024; botocore's lexv2-runtime model); a longer answer is split at paragraph or
# sentence ends into at most MAX_MESSAGES messages, and the rest is cut with an ellipsis.
MESSAGE_LIMIT = 1000
MAX_MESSAGES = 4
# Paragraph, line and sentence ends in English and Chinese (full stop, exclamation and question marks).
_BREAKS = ("\n\n", "\n", "\u3002", ". ", "\uff01", "\uff1f", "; ", ", ", " ")


def split_message(text: str) -> list[str]:
    parts: list[str] = []
    rest = text.strip()
    while rest and len(parts) < MAX_MESSAGES:
        if len(rest) <= MESSAGE_LIMIT:
            parts.append(rest)
            rest = ""
            break
        window = rest[:MESSAGE_LIMIT]
        # The strongest break that still fills a third of a message: a paragraph before a sentence.
        cut = next(
            (window.rfind(mark) + len(mark) for mark in _BREAKS if window.rfind(mark) >= MESSAGE_LIMIT // 3),
            MESSAGE_LIMIT,
        )
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts[-1] = parts[-1][: MESSAGE_LIMIT - 1].rstrip() + "…"
    return parts


def close(turn: Turn, event: Mapping[str, Any], state: str, *messages: str) -> dict[str, Any]:
    """The Close response: the intent Fulfilled or Failed, and its plain-text messages (each within
    Lex's limit)."""
    intent = dict(event["sessionState"]["intent"])
    intent["state"] = state
    return {
        "sessionState": {
            "sessionAttributes": turn.session_attributes,
            "dialogAction": {"type": "Close"},
            "intent": intent,
        },
        "messages": [
            {"contentType": "PlainText", "content": part} for text in messages for part in split_message(text)
        ][: MAX_MESSAGES + 1],
    }


def elicit(turn: Turn, event: Mapping[str, Any], slot: str, message: str) -> dict[str, Any]:
    """Ask again for one slot (a value the records refuse), keeping the others."""
    intent = dict(event["sessionState"]["intent"])
    intent["slots"] = {**(intent.get("slots") or {}), slot: None}
    intent["state"] = "InProgress"
    return {
        "sessionState": {
            "sessionAttributes": turn.session_attributes,
            "dialogAction": {"type": "ElicitSlot", "slotToElicit": slot},
            "intent": intent,
        },
        "messages": [{"contentType": "PlainText", "content": message}],
    }


def _money(amount: Any) -> str:
    return f"{Decimal(str(amount)):,.2f}"


def _reference(prefix: str, make_id: Callable[[], str]) -> str:
    return f"{prefix}-{make_id()[:8].upper()}"


def fulfil(
    event: Mapping[str, Any],
    *,
    records: Records,
    answers: Answers,
    hotline: str,
    today: dt.date,
    make_id: Callable[[], str],
) -> dict[str, Any]:
    turn = parse(event)
    text = TEXTS[turn.lang]
    if turn.intent == "CheckBill":
        account = re.sub(r"\s+", "", turn.slots.get("AccountNumber", "")).upper()
        found = records.account(account) if account else None
        if found is None:
            misses = int(turn.session_attributes.get(ACCOUNT_MISSES, "0")) + 1
            turn.session_attributes[ACCOUNT_MISSES] = str(misses)
            if misses >= MAX_ACCOUNT_TRIES:  # no third guess: a person helps from here
                return close(turn, event, "Failed", text["failed"].format(phone=hotline))
            return elicit(turn, event, "AccountNumber", text["no_account"].format(account=account or "-"))
        turn.session_attributes.pop(ACCOUNT_MISSES, None)
        message = text["bill"].format(
            account=account, balance=_money(found["balance_hkd"]), due=found["due_date"]
        )
        return close(turn, event, "Fulfilled", message)
    if turn.intent == "ReportOutage":
        district, phone = turn.slots["District"], turn.slots["ContactNumber"]
        named = turn.said.get("District", district)
        reference = _reference("OUT", make_id)
        records.add(
            "report", reference, {"district": district, "phone": phone, "reported": today.isoformat()}
        )
        known = records.outage(district)
        if known is not None:
            message = text["known_outage"].format(
                district=named, restore=known["estimated_restore"], reference=reference, phone=phone
            )
        else:
            message = text["outage_logged"].format(district=named, reference=reference, phone=phone)
        return close(turn, event, "Fulfilled", message)
    if turn.intent == "ConnectService":
        date = turn.slots["MoveInDate"]
        if dt.date.fromisoformat(date) < today:
            return elicit(turn, event, "MoveInDate", text["past_date"].format(date=date))
        premises = turn.slots["PremisesNumber"].upper()
        reference = _reference("CON", make_id)
        records.add(
            "connection", reference, {"premises": premises, "from": date, "requested": today.isoformat()}
        )
        return close(
            turn,
            event,
            "Fulfilled",
            text["connection"].format(reference=reference, premises=premises, date=date),
        )
    # FallbackIntent: what the customer typed goes to the gateway, grounded on the knowledge base. Lex
    # falls back here when a slot's retries run out, and the transcript is then often the bare account
    # or phone number: that is not a question, and it stays out of the model's prompts and logs.
    if IDENTIFIER.fullmatch(turn.transcript.strip()):
        return close(turn, event, "Failed", text["no_answer"].format(phone=hotline))
    try:
        answer, sources = answers(turn.transcript, turn.lang)
    except AnswerUnavailable:
        return close(turn, event, "Failed", text["no_answer"].format(phone=hotline))
    cited = [text["sources"].format(sources=", ".join(sources))] if sources else []
    return close(turn, event, "Fulfilled", answer, *cited)
