"""Tenants' monthly spend allowances (lambdas/gateway/allowance.py) against DynamoDB in a moto server:
a tenant past its allowance gets 429 with Retry-After until the month ends, a warning header at 80 %,
concurrent requests never overspend by more than one request's cost, and a store outage admits."""

from __future__ import annotations

import calendar
import datetime as dt
import threading

import pytest

from lambdas.gateway.allowance import (
    MICROS,
    WARNING_HEADER,
    Allowance,
    SpendLedger,
    period,
)
from lambdas.gateway.errors import GatewayError
from lambdas.gateway.service import Gateway, Price
from tests.lambdas.gateway.conftest import moto_client, pk_table
from tests.lambdas.gateway.fakes import FixedEmbeddings, RecordingMetrics, ScriptedChat, answer
from tests.support.moto_server import moto_server

# 2026-12-31 23:00:00 UTC: an hour before the month ends.
NEW_YEARS_EVE = calendar.timegm(dt.datetime(2026, 12, 31, 23, 0, 0).timetuple())
PRICE = Price(input_per_1k=1.0, output_per_1k=2.0)  # answer(): 12 in, 3 out = 0.018 USD


def ledger(dynamodb, table: str, **allowances: Allowance) -> SpendLedger:
    return SpendLedger(dynamodb, table=table, allowances=allowances, clock=lambda: NEW_YEARS_EVE)


def spent(dynamodb, table: str, tenant: str) -> tuple[float, int]:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"{tenant}#2026-12"}}).get("Item", {})
    return int(item.get("usd_micros", {"N": "0"})["N"]) / MICROS, int(item.get("tokens", {"N": "0"})["N"])


def gateway(spend: SpendLedger, *, max_output_tokens: int = 100) -> Gateway:
    from lambdas.gateway.service import Limits

    return Gateway(
        chat_routes={"chat": [ScriptedChat("bedrock:m", answer())]},
        embedding_routes={"embed": FixedEmbeddings()},
        prices={"bedrock:m": PRICE},
        limits=Limits(max_output_tokens=max_output_tokens),
        ledger=spend,
    )


def ask(gw: Gateway, tenant: str = "team-a", content: str = "x" * 40, **extra):
    body = {"model": "chat", "messages": [{"role": "user", "content": content}], **extra}
    return gw.chat(body, tenant=tenant, metrics=RecordingMetrics())


def test_the_month_ends_at_midnight_utc_of_its_last_day():
    assert period(NEW_YEARS_EVE) == ("2026-12", NEW_YEARS_EVE + 3600)
    assert period(calendar.timegm(dt.datetime(2028, 2, 29, 12).timetuple()))[0] == "2028-02"


def test_a_request_counts_what_it_cost_not_what_was_reserved(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=1.0)}))
    _, headers = ask(gw)
    assert spent(dynamodb, spend_table, "team-a") == (pytest.approx(0.018), 15)
    assert WARNING_HEADER not in headers


def test_a_tenant_past_its_usd_allowance_gets_429_until_the_month_ends(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=0.05)}))
    answers = [ask(gw) for _ in range(3)]  # 3 x 0.018 = 0.054: the third was admitted at 0.036 < 0.05
    assert len(answers) == 3
    with pytest.raises(GatewayError) as refused:
        ask(gw)
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "insufficient_quota", "insufficient_quota")
    assert error.headers == {"Retry-After": "3600"}
    assert "0.05 USD" in error.message
    assert "team-a" in error.message
    # Another tenant, or one without an allowance, is not held back.
    ask(gw, tenant="team-b")
    assert spent(dynamodb, spend_table, "team-b") == (0.0, 0)


def test_a_token_allowance_counts_input_and_output_tokens(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_tokens=30)}))
    ask(gw)
    ask(gw)  # 15 + 15: the allowance is reached, not passed
    with pytest.raises(GatewayError) as refused:
        ask(gw)
    assert "30 tokens" in refused.value.message


def test_the_warning_header_comes_once_80_percent_is_spent(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=0.1)}))
    seen = [ask(gw)[1].get(WARNING_HEADER) for _ in range(6)]
    # Spent before each request: 0, 0.018, 0.036, 0.054, 0.072, 0.09 (of 0.1).
    assert seen[:5] == [None] * 5
    assert seen[5] == "90% of this month's allowance of 0.1 USD is spent"


def test_a_failed_request_gives_its_reservation_back(dynamodb, spend_table):
    from tests.lambdas.gateway.fakes import REJECTED

    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=1.0)}))
    gw.chat_routes = {"chat": [ScriptedChat("bedrock:m", REJECTED)]}
    with pytest.raises(GatewayError):
        ask(gw)
    assert spent(dynamodb, spend_table, "team-a") == (0.0, 0)


def test_embeddings_count_too(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_tokens=100)}))
    gw.chat(
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        tenant="team-a",
        metrics=RecordingMetrics(),
    )
    gw.embeddings({"model": "embed", "input": ["abcd" * 5]}, tenant="team-a", metrics=RecordingMetrics())
    assert spent(dynamodb, spend_table, "team-a")[1] == 15 + 20


@pytest.fixture(scope="module")
def serialized_endpoint():
    """A moto server that answers one request at a time, as DynamoDB applies each single-item write
    atomically (tests/support/moto_server.py SerializedMotoServer: moto alone does not)."""
    with moto_server(serialized=True) as endpoint:
        yield endpoint


def test_concurrent_requests_never_overspend_by_more_than_one_request(serialized_endpoint, request):
    """16 threads, each with its own client, against a 0.1 USD allowance. Each request reserves
    exactly what it costs (48 characters: 12 tokens in; max_output_tokens 3), so the bound is tight:
    a check made apart from the write would let up to 16 requests through at 0.09 and end at 0.378."""
    allowance, cost = 0.1, 0.018
    results: list[str] = []
    moto_endpoint = serialized_endpoint
    tables = pk_table(moto_client(moto_endpoint, "dynamodb"), request, "spend")
    spend_table = next(tables)

    def worker():
        client = moto_client(moto_endpoint, "dynamodb")
        gw = gateway(
            ledger(client, spend_table, **{"team-a": Allowance(monthly_usd=allowance)}), max_output_tokens=3
        )
        for _ in range(4):
            try:
                ask(gw, content="y" * 48)
                results.append("ok")
            except GatewayError as error:
                results.append(str(error.status))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = moto_client(moto_endpoint, "dynamodb")
    total, _ = spent(client, spend_table, "team-a")
    assert results.count("429") > 0
    assert total == pytest.approx(cost * results.count("ok"))
    assert total < allowance + cost  # six answers at most: 5 x 0.018 = 0.09 < 0.1 admits the sixth
    assert results.count("ok") == 6


def test_a_store_outage_admits_the_request_uncounted(moto_endpoint, caplog):
    client = moto_client(moto_endpoint, "dynamodb")
    gw = gateway(ledger(client, "no-such-table", **{"team-a": Allowance(monthly_usd=0.01)}))
    for _ in range(3):
        response, _ = ask(gw)
        assert response["choices"][0]["message"]["content"] == "Hello!"
    assert "allowance store failed" in caplog.text


class StreamingChat(ScriptedChat):
    """Streams "Hel", "lo!" and the usage of answer() (12 in, 3 out)."""

    def stream(self, request, *, deadline):
        from lambdas.gateway.providers.base import Delta

        yield Delta(text="Hel")
        yield Delta(text="lo!", finish_reason="stop", input_tokens=12, output_tokens=3)


def test_a_streamed_answer_is_settled_when_the_stream_ends(dynamodb, spend_table):
    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=1.0)}))
    gw.chat_routes = {"chat": [StreamingChat("bedrock:m", answer())]}
    body = {"model": "chat", "messages": [{"role": "user", "content": "x" * 40}], "stream": True}
    chunks, _ = gw.chat_stream(body, tenant="team-a", metrics=RecordingMetrics())
    reserved, _ = spent(dynamodb, spend_table, "team-a")
    assert reserved == pytest.approx((10 * 1.0 + 100 * 2.0) / 1000)  # admitted: the reservation
    assert b"Hello" not in b"".join(chunks)  # the text comes in two deltas
    assert spent(dynamodb, spend_table, "team-a") == (pytest.approx(0.018), 15)


def test_a_refusal_while_requests_are_in_flight_says_to_retry_soon(dynamodb, spend_table):
    spend = ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=0.1)})
    held = spend.admit("team-a", usd=0.2, tokens=10)  # a long request holds more than the allowance
    with pytest.raises(GatewayError) as refused:
        spend.admit("team-a", usd=0.01, tokens=10)
    assert refused.value.headers == {"Retry-After": "10"}
    assert "spent or reserved" in refused.value.message
    spend.settle(held, usd=0.01, tokens=10)  # it cost little: the tenant may go on
    assert spend.admit("team-a", usd=0.01, tokens=10).key == "team-a#2026-12"


def test_prompts_in_cjk_scripts_are_reserved_at_a_token_a_character():
    from lambdas.gateway.routing import estimated_tokens

    assert estimated_tokens("x" * 40) == 10
    assert estimated_tokens("請問今天的匯率是多少") == 10  # 10 characters, not 2.5 tokens
    assert estimated_tokens("abc", "日本") == 1 + 2


def test_a_grounding_check_that_fails_after_the_answer_still_counts_the_answer(dynamodb, spend_table):
    """The model answered (and billed) before the check failed: that spend is not given back."""
    from lambdas.gateway.errors import ProviderError
    from lambdas.gateway.retrieval import Passage

    class Retriever:
        def retrieve(self, knowledge_base_id, question, deadline):
            return [Passage(text="fact", source="s3://b/k")]

    class FailingGuardrail:
        def apply_guardrail(self, **_):
            raise ProviderError("guardrail down", retryable=True)

    gw = gateway(ledger(dynamodb, spend_table, **{"team-a": Allowance(monthly_usd=1.0)}))
    gw.knowledge_bases, gw.retriever = {"facts": "KB123"}, Retriever()
    gw.guardrail, gw.guardrail_client = ("gr", "1"), FailingGuardrail()
    with pytest.raises(GatewayError):
        ask(gw, knowledge_base="facts")
    assert spent(dynamodb, spend_table, "team-a") == (pytest.approx(0.018), 15)
