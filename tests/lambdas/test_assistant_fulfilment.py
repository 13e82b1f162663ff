"""The customer assistant's fulfilment function: Lex V2 turns in, records and gateway answers out.
logic.py on fakes; handler.py's records over a moto server (DynamoDB over HTTP) and its gateway calls
against a local HTTP server that sees the signed request."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import boto3
import pytest

from lambdas.assistant_fulfilment import handler, logic
from tests.support.moto_server import moto_client, moto_server

TODAY = dt.date(2026, 12, 2)
HOTLINE = "2555 0000"


def event(intent: str, locale: str = "en_GB", slots: dict | None = None, transcript: str = "") -> dict:
    """A Lex V2 fulfilment event (Lex V2 developer guide, "Interpreting the input event format")."""
    return {
        "messageVersion": "1.0",
        "invocationSource": "FulfillmentCodeHook",
        "inputMode": "Text",
        "inputTranscript": transcript,
        "bot": {
            "id": "BOT1234567",
            "name": "utility-assistant-assistant",
            "localeId": locale,
            "version": "1",
        },
        "sessionId": "s-1",
        "sessionState": {
            "sessionAttributes": {"channel": "web"},
            "intent": {
                "name": intent,
                "state": "ReadyForFulfillment",
                "confirmationState": "None",
                "slots": {
                    name: {"shape": "Scalar", "value": {"originalValue": said, "interpretedValue": value}}
                    for name, (said, value) in (slots or {}).items()
                },
            },
        },
        "newFieldLexMayAdd": {"ignored": True},
    }


class FakeRecords:
    def __init__(self) -> None:
        self.accounts = {"HK1234567": {"balance_hkd": "1234.5", "due_date": "2026-12-20"}}
        self.outages = {"sha tin": {"estimated_restore": "18:00"}}
        self.added: list[tuple[str, str, dict]] = []

    def account(self, number):
        return self.accounts.get(number)

    def outage(self, district):
        return self.outages.get(district.lower())

    def add(self, kind, reference, item):
        self.added.append((kind, reference, dict(item)))


def no_answers(question, lang):
    raise AssertionError("the gateway must not be asked")


def fulfil(evt, records=None, answers=no_answers):
    return logic.fulfil(
        evt,
        records=records or FakeRecords(),
        answers=answers,
        hotline=HOTLINE,
        today=TODAY,
        make_id=lambda: "abcdef0123",
    )


def message(response: dict) -> str:
    (only,) = messages(response)
    return only


def messages(response: dict) -> list[str]:
    assert all(m["contentType"] == "PlainText" for m in response["messages"])
    assert all(1 <= len(m["content"]) <= 1024 for m in response["messages"])  # Lex's limit per message
    return [m["content"] for m in response["messages"]]


def test_a_bill_is_read_and_the_intent_closes_fulfilled_in_the_customer_s_language():
    english = fulfil(event("CheckBill", slots={"AccountNumber": ("hk 1234567", "hk 1234567")}))
    assert english["sessionState"]["dialogAction"] == {"type": "Close"}
    assert english["sessionState"]["intent"]["state"] == "Fulfilled"
    assert english["sessionState"]["sessionAttributes"] == {"channel": "web"}  # kept for the next turn
    assert message(english) == "The balance on account HK1234567 is HK$1,234.50, due on 2026-12-20."
    chinese = fulfil(event("CheckBill", "zh_HK", {"AccountNumber": ("HK1234567", "HK1234567")}))
    assert message(chinese).startswith("戶口 HK1234567 的結欠為港幣 1,234.50 元")


def test_an_unknown_account_is_asked_for_again_not_failed():
    response = fulfil(event("CheckBill", slots={"AccountNumber": ("X1", "X1")}))
    assert response["sessionState"]["dialogAction"] == {"type": "ElicitSlot", "slotToElicit": "AccountNumber"}
    assert response["sessionState"]["intent"]["slots"]["AccountNumber"] is None
    assert response["sessionState"]["intent"]["state"] == "InProgress"
    assert "could not find account X1" in message(response)


def test_an_outage_report_is_recorded_and_a_known_outage_is_told_with_the_customer_s_words():
    records = FakeRecords()
    response = fulfil(
        event(
            "ReportOutage",
            "zh_HK",
            {"District": ("沙田", "Sha Tin"), "ContactNumber": ("91234567", "91234567")},
        ),
        records,
    )
    assert records.added == [
        ("report", "OUT-ABCDEF01", {"district": "Sha Tin", "phone": "91234567", "reported": "2026-12-02"})
    ]
    text = message(response)
    assert "沙田" in text
    assert "18:00" in text
    assert "OUT-ABCDEF01" in text
    unknown = fulfil(
        event("ReportOutage", slots={"District": ("Tai Po", "Tai Po"), "ContactNumber": ("1", "1")})
    )
    assert "an engineer will be assigned" in message(unknown)


def test_a_connection_for_a_past_date_is_asked_again_and_a_future_one_is_recorded():
    records = FakeRecords()
    past = fulfil(
        event(
            "ConnectService",
            slots={"PremisesNumber": ("p1", "p1"), "MoveInDate": ("yesterday", "2026-12-01")},
        ),
        records,
    )
    assert past["sessionState"]["dialogAction"]["slotToElicit"] == "MoveInDate"
    assert records.added == []
    done = fulfil(
        event(
            "ConnectService",
            slots={"PremisesNumber": ("p1", "p1"), "MoveInDate": ("next Monday", "2026-12-07")},
        ),
        records,
    )
    assert records.added[0][:2] == ("connection", "CON-ABCDEF01")
    assert records.added[0][2]["premises"] == "P1"
    assert "CON-ABCDEF01" in message(done)


def test_the_fallback_asks_the_gateway_and_cites_the_sources():
    asked = []

    def answers(question, lang):
        asked.append((question, lang))
        return "Bills are issued every two months.", ["billing.md", "tariffs.pdf"]

    response = fulfil(event("FallbackIntent", "zh_HK", transcript="幾耐出一次單？"), answers=answers)
    assert asked == [("幾耐出一次單？", "zh")]
    assert messages(response) == ["Bills are issued every two months.", "資料來源：billing.md, tariffs.pdf"]
    assert response["sessionState"]["intent"]["state"] == "Fulfilled"


def test_a_long_answer_is_split_into_messages_lex_takes():
    paragraph = "Meters are read every two months. " * 20  # 680 characters
    answer = "\n\n".join([paragraph.strip()] * 3)  # about 2,000

    response = fulfil(
        event("FallbackIntent", transcript="how are meters read"), answers=lambda q, lang: (answer, [])
    )
    parts = messages(response)
    assert len(parts) == 3
    assert all(part == paragraph.strip() for part in parts)  # cut at the paragraph ends
    endless = fulfil(
        event("FallbackIntent", transcript="everything"), answers=lambda q, lang: ("word " * 2000, ["a.md"])
    )
    parts = messages(endless)
    assert len(parts) == logic.MAX_MESSAGES + 1  # the answer's messages, then the sources
    assert parts[logic.MAX_MESSAGES - 1].endswith("…")
    assert parts[-1] == "Sources: a.md"


@pytest.mark.parametrize("typed", ["HK1234567", "9123 4567", "+852 9123 4567", "A123456(7)"])
def test_a_bare_number_that_fell_through_to_the_fallback_never_reaches_the_model(typed):
    response = fulfil(event("FallbackIntent", transcript=typed))  # no_answers fails if asked
    assert response["sessionState"]["intent"]["state"] == "Failed"
    assert HOTLINE in message(response)


def test_an_unknown_account_is_asked_once_more_then_the_hotline():
    first = fulfil(event("CheckBill", slots={"AccountNumber": ("X1", "X1")}))
    assert first["sessionState"]["dialogAction"]["type"] == "ElicitSlot"
    assert first["sessionState"]["sessionAttributes"][logic.ACCOUNT_MISSES] == "1"
    again = event("CheckBill", slots={"AccountNumber": ("X2", "X2")})
    again["sessionState"]["sessionAttributes"] = first["sessionState"]["sessionAttributes"]
    second = fulfil(again)
    assert second["sessionState"]["dialogAction"] == {"type": "Close"}
    assert second["sessionState"]["intent"]["state"] == "Failed"
    assert HOTLINE in message(second)


def test_today_is_hong_kong_s_day():
    assert handler.HONG_KONG.utcoffset(None) == dt.timedelta(hours=8)
    assert abs((handler.hong_kong_today() - dt.datetime.now(dt.UTC).date()).days) <= 1


def test_no_answer_from_the_gateway_closes_failed_with_the_hotline():
    def unavailable(question, lang):
        raise logic.AnswerUnavailable("502")

    response = fulfil(event("FallbackIntent", transcript="what is a kWh"), answers=unavailable)
    assert response["sessionState"]["intent"]["state"] == "Failed"
    assert HOTLINE in message(response)


@pytest.mark.parametrize(
    "bad",
    [{}, {"bot": {"localeId": "en_GB"}}, event("OrderPizza")],
)
def test_an_event_that_is_not_this_bot_s_is_refused(bad):
    with pytest.raises(logic.BadEvent):
        fulfil(bad)


def test_a_bug_is_answered_with_the_hotline_and_logged(caplog):
    class Broken(FakeRecords):
        def account(self, number):
            raise RuntimeError("table gone")

    response = handler.handle(
        event("CheckBill", "zh_HK", {"AccountNumber": ("1", "1")}),
        records=Broken(),
        answers=no_answers,
        hotline=HOTLINE,
        today=TODAY,
    )
    assert response["sessionState"]["intent"]["state"] == "Failed"
    assert message(response) == f"抱歉，系統出現問題，請致電熱線 {HOTLINE}。"
    assert "fulfilment failed" in caplog.text


def test_the_texts_exist_in_both_languages_with_the_same_fields():
    import string

    def fields(text):
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    assert set(logic.TEXTS) == {"en", "zh"}
    assert logic.TEXTS["en"].keys() == logic.TEXTS["zh"].keys()
    for key in logic.TEXTS["en"]:
        assert fields(logic.TEXTS["en"][key]) == fields(logic.TEXTS["zh"][key]), key


# --------------------------------------------------------------------------------------------------
# handler.py: the records table over DynamoDB (moto server) and the signed gateway call


@pytest.fixture(scope="module")
def dynamodb() -> Iterator:
    with moto_server() as endpoint:
        client = moto_client("dynamodb", endpoint)
        client.create_table(
            TableName="records",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_the_records_table_reads_accounts_and_never_reuses_a_reference(dynamodb):
    dynamodb.put_item(
        TableName="records",
        Item={"pk": {"S": "account#HK1"}, "balance_hkd": {"N": "88.1"}, "due_date": {"S": "2026-12-31"}},
    )
    dynamodb.put_item(
        TableName="records", Item={"pk": {"S": "outage#kwun tong"}, "estimated_restore": {"S": "21:00"}}
    )
    records = handler.DynamoRecords(dynamodb, "records")
    assert records.account("HK1") == {"pk": "account#HK1", "balance_hkd": "88.1", "due_date": "2026-12-31"}
    assert records.account("HK2") is None
    assert records.outage("Kwun Tong")["estimated_restore"] == "21:00"
    records.add("report", "OUT-1", {"district": "Kwun Tong"})
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        records.add("report", "OUT-1", {"district": "Sha Tin"})
    item = dynamodb.get_item(TableName="records", Key={"pk": {"S": "report#OUT-1"}})["Item"]
    assert item["district"] == {"S": "Kwun Tong"}


class _Gateway(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []
    answer: ClassVar[tuple[int, dict]] = (200, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, dict(self.headers), body))
        status, document = type(self).answer
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway() -> Iterator[handler.GatewayAnswers]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.seen = []
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="ap-southeast-2"
    )
    try:
        yield handler.GatewayAnswers(
            session,
            f"http://127.0.0.1:{server.server_port}/api/v1/",
            "answers",
            "service-faq",
            "ap-southeast-2",
        )
    finally:
        server.shutdown()


def test_the_gateway_call_is_signed_grounded_and_in_the_customer_s_language(gateway):
    _Gateway.answer = (
        200,
        {
            "choices": [{"message": {"content": " Bills come every two months. "}, "finish_reason": "stop"}],
            "citations": [
                {"index": 1, "source": "s3://data/knowledge-bases/service-faq/billing.md"},
                {"index": 2, "source": "s3://data/knowledge-bases/service-faq/billing.md"},
            ],
        },
    )
    assert gateway("幾耐出一次單？", "zh") == ("Bills come every two months.", ["billing.md"])
    ((path, headers, body),) = _Gateway.seen
    assert path == "/api/v1/chat/completions"
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-southeast-2/execute-api/aws4_request" in authorization
    assert body["model"] == "answers"
    assert body["knowledge_base"] == "service-faq"
    assert body["messages"][0] == {"role": "system", "content": logic.TEXTS["zh"]["system"]}
    assert body["messages"][1] == {"role": "user", "content": "幾耐出一次單？"}


@pytest.mark.parametrize(
    "answer",
    [
        (502, {"error": {"message": "upstream"}}),
        (200, {"choices": [{"message": {"content": "blocked"}, "finish_reason": "content_filter"}]}),
        (200, {"choices": [{"message": {"content": "  "}, "finish_reason": "stop"}]}),
    ],
)
def test_an_error_a_blocked_or_an_empty_answer_is_no_answer(gateway, answer):
    _Gateway.answer = answer
    with pytest.raises(logic.AnswerUnavailable):
        gateway("what is a kWh", "en")
