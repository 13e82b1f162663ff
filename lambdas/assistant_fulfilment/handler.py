"""Lambda entry point of the utility assistant's Lex V2 bot (every intent's fulfilment code hook; see
logic.py for what each does).

Environment: RECORDS_TABLE (the DynamoDB stand-in of the utility's systems: `pk` `account#<number>`,
`outage#<district>`, `report#<reference>`, `connection#<reference>`), GATEWAY_URL (the gateway's
base URL, ending in /v1), GATEWAY_ALIAS and KNOWLEDGE_BASE (the chat alias and knowledge base the
fallback asks), HOTLINE (the number the replies give when they cannot help).

The gateway takes IAM (SigV4) auth (`gateway.auth: iam`): the request is signed for execute-api with
this function's credentials (API Gateway developer guide, "Control access to a REST API with IAM
permissions"). Anything unexpected is logged and answered with the hotline, never a stack trace.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .logic import TEXTS, AnswerUnavailable, BadEvent, fulfil, language

logger = Logger(service="assistant-fulfilment")

# The customer waits for the whole turn: the bot sends nothing until the fulfilment function returns
# (Lex V2 developer guide, "Configuring fulfillment progress updates"; updates exist for streaming
# conversations only). The gateway gets 20 seconds of the function's 30.
GATEWAY_TIMEOUT_SECONDS = 20


class DynamoRecords:
    """logic.Records over the stand-in table (low-level client: numbers come back as strings)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def _get(self, pk: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        return {key: next(iter(value.values())) for key, value in item.items()}

    def account(self, number: str) -> Mapping[str, Any] | None:
        return self._get(f"account#{number}")

    def outage(self, district: str) -> Mapping[str, Any] | None:
        return self._get(f"outage#{district.lower()}")

    def add(self, kind: str, reference: str, item: Mapping[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={"pk": {"S": f"{kind}#{reference}"}, **{k: {"S": str(v)} for k, v in item.items()}},
            ConditionExpression="attribute_not_exists(pk)",  # a reference is never reused
        )


class GatewayAnswers:
    """logic.Answers: POST {GATEWAY_URL}/chat/completions, signed with SigV4, grounded on the knowledge
    base; the citations' S3 keys become the sources' names."""

    def __init__(self, session: Any, url: str, alias: str, knowledge_base: str, region: str) -> None:
        self.session, self.url, self.alias, self.knowledge_base, self.region = (
            session,
            url.rstrip("/"),
            alias,
            knowledge_base,
            region,
        )

    def request(self, question: str, lang: str) -> AWSRequest:
        body = json.dumps(
            {
                "model": self.alias,
                "messages": [
                    {"role": "system", "content": TEXTS[lang]["system"]},
                    {"role": "user", "content": question},
                ],
                "knowledge_base": self.knowledge_base,
                "max_tokens": 300,  # about 1,200 characters of English: within two Lex messages
            }
        )
        request = AWSRequest(
            method="POST",
            url=f"{self.url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(
            self.session.get_credentials().get_frozen_credentials(), "execute-api", self.region
        ).add_auth(request)
        return request

    def __call__(self, question: str, lang: str) -> tuple[str, list[str]]:
        signed = self.request(question, lang)
        # S310 (both noqa): the URL is GATEWAY_URL, the gateway's https base URL the stack writes, not input.
        http = urllib.request.Request(  # noqa: S310
            signed.url, data=signed.body, headers=dict(signed.headers), method="POST"
        )
        try:
            with urllib.request.urlopen(http, timeout=GATEWAY_TIMEOUT_SECONDS) as response:  # noqa: S310
                document = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            logger.warning("the gateway did not answer", extra={"error": str(error)})
            raise AnswerUnavailable(str(error)) from None
        choice = (document.get("choices") or [{}])[0]
        if choice.get("finish_reason") == "content_filter":  # the guardrail's blocked message is no answer
            raise AnswerUnavailable("blocked by the guardrail")
        text = ((choice.get("message") or {}).get("content") or "").strip()
        if not text:
            raise AnswerUnavailable("an empty answer")
        sources = [c["source"].rsplit("/", 1)[-1] for c in document.get("citations") or [] if c.get("source")]
        return text, list(dict.fromkeys(sources))


# The customers' day: Hong Kong time (UTC+8, no daylight saving), not the function's UTC.
HONG_KONG = dt.timezone(dt.timedelta(hours=8), "HKT")


def hong_kong_today() -> dt.date:
    return dt.datetime.now(HONG_KONG).date()


@cache
def _records() -> DynamoRecords:
    return DynamoRecords(boto3.client("dynamodb"), os.environ["RECORDS_TABLE"])


@cache
def _answers() -> GatewayAnswers:
    session = boto3.Session()
    return GatewayAnswers(
        session,
        os.environ["GATEWAY_URL"],
        os.environ["GATEWAY_ALIAS"],
        os.environ["KNOWLEDGE_BASE"],
        session.region_name or os.environ["AWS_REGION"],
    )


def handle(
    event: dict[str, Any], *, records: Any, answers: Any, hotline: str, today: dt.date
) -> dict[str, Any]:
    try:
        return fulfil(
            event,
            records=records,
            answers=answers,
            hotline=hotline,
            today=today,
            make_id=lambda: uuid.uuid4().hex,
        )
    except BadEvent:
        raise  # not a turn of this bot: Lex shows its own error, and the log says why
    except Exception:
        logger.exception("fulfilment failed")
        lang = language(((event.get("bot") or {}).get("localeId")) or "en")
        intent = dict(event["sessionState"]["intent"], state="Failed")
        return {
            "sessionState": {"dialogAction": {"type": "Close"}, "intent": intent},
            "messages": [
                {"contentType": "PlainText", "content": TEXTS[lang]["failed"].format(phone=hotline)}
            ],
        }


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    intent = ((event.get("sessionState") or {}).get("intent") or {}).get("name")
    logger.info("turn", extra={"intent": intent, "locale": (event.get("bot") or {}).get("localeId")})
    return handle(
        event, records=_records(), answers=_answers(), hotline=os.environ["HOTLINE"], today=hong_kong_today()
    )
