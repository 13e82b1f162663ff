"""Monthly spend allowances per tenant: USD and tokens, counted in DynamoDB, refused with 429 once spent.

One item per tenant and calendar month (UTC): pk `<tenant>#<YYYY-MM>`, `usd_micros` and `tokens`
(numbers DynamoDB adds atomically), `inflight` (requests admitted and not yet settled), `expires_at`
(the table's TTL attribute: the month's end plus AFTER_PERIOD_SECONDS, so last month's figures can
still be read).

A request is admitted, then settled:
- admit: one UpdateItem that ADDs the request's reservation (an estimate of the most it can cost:
  service.py Gateway._chat_reservation) under the condition that the tenant has not yet spent its
  allowance. DynamoDB evaluates the condition and applies the ADD as one write ("Condition
  expressions", DynamoDB developer guide: a conditional update succeeds only if the condition is
  true when it is applied), so concurrent requests each see the others' reservations: once the count
  reaches the allowance every further request is refused. When every reservation covers what its
  request costs, a tenant overspends by at most the request admitted last; a request the estimate
  undercounts (an image, retrieved passages, a prompt in an unusual script) can add its shortfall;
- settle: one UpdateItem that ADDs (actual - reserved), negative when the answer cost less (a failed
  request gives all of it back), and takes the request off `inflight`.
A function that dies between the two, or a stream the client abandons, leaves its reservation
counted: the safe direction.
A refusal while requests are in flight may be theirs (their reservations count until they settle):
its Retry-After is then IN_FLIGHT_RETRY_SECONDS, else the month's end (the refused update returns the
item: ReturnValuesOnConditionCheckFailure ALL_OLD, DynamoDB API reference, UpdateItem).

A store that fails (throttling, timeout, an outage) admits the request unchecked and logs it: a
DynamoDB problem must not take the gateway down. The tenant's spend of that request is then not
counted; the profile's AWS Budgets action (stacks/components/cost_controls.py) is the backstop.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import Deadline, as_timed
from .errors import GatewayError

logger = logging.getLogger(__name__)

MICROS = 1_000_000  # USD are counted in micro-dollars: integers add exactly
WARN_SHARE = 0.8  # a response says how much is spent once this share of an allowance is
AFTER_PERIOD_SECONDS = 40 * 24 * 3600
STORE_TIMEOUT_SECONDS = 1.0
WARNING_HEADER = "x-genai-allowance-warning"
IN_FLIGHT_RETRY_SECONDS = 10


@dataclass(frozen=True)
class Allowance:
    monthly_usd: float | None = None
    monthly_tokens: int | None = None


@dataclass(frozen=True)
class Admission:
    """What admit counted for one request: settle adds the difference to the actual figures."""

    key: str | None  # None: not counted (no allowance, or the store failed)
    usd_micros: int = 0
    tokens: int = 0
    warning: str | None = None
    expires_at: int = 0


UNCOUNTED = Admission(None)


def period(now: float) -> tuple[str, float]:
    """The calendar month (UTC) of `now`, as YYYY-MM, and the epoch second it ends."""
    day = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    last = calendar.monthrange(day.year, day.month)[1]
    end = dt.datetime(day.year, day.month, last, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return f"{day.year:04d}-{day.month:02d}", end.timestamp()


class SpendLedger:
    """`client`: a DynamoDB client or a TimedClients of them (lambdas/gateway/deadline.py)."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        allowances: Mapping[str, Allowance],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = as_timed(client)
        self.table = table
        self.allowances = dict(allowances)
        self.clock = clock

    def admit(self, tenant: str, *, usd: float, tokens: int, deadline: Deadline | None = None) -> Admission:
        """Count the reservation, or raise a 429 when the tenant's allowance for the month is spent."""
        allowance = self.allowances.get(tenant)
        if allowance is None:
            return UNCOUNTED
        now = self.clock()
        month, ends = period(now)
        key = f"{tenant}#{month}"
        reserved_micros = round(usd * MICROS)
        expires_at = int(ends) + AFTER_PERIOD_SECONDS
        conditions: list[str] = []
        values = {
            ":u": {"N": str(reserved_micros)},
            ":t": {"N": str(tokens)},
            ":one": {"N": "1"},
            ":e": {"N": str(expires_at)},
        }
        if allowance.monthly_usd is not None:
            conditions.append("(attribute_not_exists(usd_micros) OR usd_micros < :usd_limit)")
            values[":usd_limit"] = {"N": str(round(allowance.monthly_usd * MICROS))}
        if allowance.monthly_tokens is not None:
            conditions.append("(attribute_not_exists(tokens) OR tokens < :token_limit)")
            values[":token_limit"] = {"N": str(allowance.monthly_tokens)}
        try:
            client = self.clients.within(deadline, "the allowance check", cap=STORE_TIMEOUT_SECONDS)
            updated = client.update_item(
                TableName=self.table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD usd_micros :u, tokens :t, inflight :one SET expires_at = :e",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ).get("Attributes", {})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                inflight = int(error.response.get("Item", {}).get("inflight", {}).get("N", "0"))
                raise spent(
                    tenant,
                    allowance,
                    seconds_left=ends - now,
                    retry_after=IN_FLIGHT_RETRY_SECONDS if inflight > 0 else None,
                ) from None
            logger.warning("allowance store failed; request admitted uncounted", extra={"error": str(error)})
            return UNCOUNTED
        except BotoCoreError as error:
            logger.warning("allowance store failed; request admitted uncounted", extra={"error": str(error)})
            return UNCOUNTED
        # UPDATED_NEW returns the attributes the update wrote (an ADD of 0 may be left out).
        before_micros = int(updated.get("usd_micros", {}).get("N", reserved_micros)) - reserved_micros
        before_tokens = int(updated.get("tokens", {}).get("N", tokens)) - tokens
        return Admission(
            key, reserved_micros, tokens, warning(allowance, before_micros, before_tokens), expires_at
        )

    def settle(
        self, admission: Admission, *, usd: float, tokens: int, deadline: Deadline | None = None
    ) -> None:
        """Replace the reservation by what the request cost (a failure there is logged: the
        reservation, the larger figure, stays counted)."""
        if admission.key is None:
            return
        delta_micros, delta_tokens = round(usd * MICROS) - admission.usd_micros, tokens - admission.tokens
        try:
            # Settling is worth its call even past the request's deadline: without it the
            # reservation stays counted. It gets the store's own short timeout.
            client = self.clients.within(None, "the allowance settlement", cap=STORE_TIMEOUT_SECONDS)
            client.update_item(
                TableName=self.table,
                Key={"pk": {"S": admission.key}},
                # A settlement after the item expired would otherwise create one that never does.
                UpdateExpression="ADD usd_micros :u, tokens :t, inflight :minus_one "
                "SET expires_at = if_not_exists(expires_at, :e)",
                ExpressionAttributeValues={
                    ":u": {"N": str(delta_micros)},
                    ":t": {"N": str(delta_tokens)},
                    ":minus_one": {"N": "-1"},
                    ":e": {"N": str(admission.expires_at)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("allowance settlement failed; the reservation stays", extra={"error": str(error)})


def warning(allowance: Allowance, usd_micros: int, tokens: int) -> str | None:
    """The warning header's text once WARN_SHARE of an allowance is spent (before this request)."""
    shares = []
    if allowance.monthly_usd:
        shares.append((usd_micros / (allowance.monthly_usd * MICROS), f"{allowance.monthly_usd:g} USD"))
    if allowance.monthly_tokens:
        shares.append((tokens / allowance.monthly_tokens, f"{allowance.monthly_tokens} tokens"))
    share, what = max(shares, default=(0.0, ""))
    if share < WARN_SHARE:
        return None
    return f"{min(share, 1.0):.0%} of this month's allowance of {what} is spent"


def spent(
    tenant: str, allowance: Allowance, *, seconds_left: float, retry_after: int | None = None
) -> GatewayError:
    """429 in OpenAI's format for an exhausted quota, with Retry-After: the start of next month, or
    `retry_after` seconds when requests in flight hold part of it."""
    limits = " and ".join(
        part
        for part in (
            f"{allowance.monthly_usd:g} USD" if allowance.monthly_usd is not None else "",
            f"{allowance.monthly_tokens} tokens" if allowance.monthly_tokens is not None else "",
        )
        if part
    )
    if retry_after is not None:
        message = (
            f"tenant {tenant!r} has spent or reserved its monthly allowance ({limits}); requests still "
            "running may give some back when they finish"
        )
    else:
        message = (
            f"tenant {tenant!r} has spent its monthly allowance ({limits}); it renews at the start of "
            "next month (UTC)"
        )
    seconds = retry_after if retry_after is not None else max(1, int(seconds_left + 0.999))
    return GatewayError(
        429,
        message,
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"Retry-After": str(seconds)},
    )
