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


def close(turn: Turn, event: Mapping[str, Any], state: str, message: str) -> dict[str, Any]:
    """The Close response: the intent Fulfilled or Failed, and one plain-text message."""
    intent = dict(event["sessionState"]["intent"])
    intent["state"] = state
    return {
        "sessionState": {
            "sessionAttributes": turn.session_attributes,
            "dialogAction": {"type": "Close"},
            "intent": intent,
        },
        "messages": [{"contentType": "PlainText", "content": message}],
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
            return elicit(turn, event, "AccountNumber", text["no_account"].format(account=account or "-"))
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
    # FallbackIntent: what the customer typed goes to the gateway, grounded on the knowledge base.
    try:
        answer, sources = answers(turn.transcript, turn.lang)
    except AnswerUnavailable:
        return close(turn, event, "Failed", text["no_answer"].format(phone=hotline))
    if sources:
        answer = f"{answer}\n{text['sources'].format(sources=', '.join(sources))}"
    return close(turn, event, "Fulfilled", answer)
