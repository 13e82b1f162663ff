"""User feedback on chat answers: POST /v1/feedback rates an answer by its response id, from the tenant
that got it, once. Stored in DynamoDB (the foundation stack's feedback table, retained) with a TTL.

Items (pk):
- `response#<id>`: written when the gateway answers (best effort: an answer is never held back for
  it), with the tenant, alias, target and prompt version (the request's `metadata.prompt_version`,
  else "none") the rating is published by;
- `feedback#<id>`: the rating (score 0 to 1, optional comment), written once (a condition on the
  item not existing: a second rating of the same answer is 409, so one caller cannot outweigh the
  others by repeating it).
Both expire `retention_days` after they are written (the table's TTL attribute `expires_at`).

A rating of an id this tenant did not get (another tenant's, an expired or unknown one) is 404
`response_not_found`: the same answer whether the id exists or not, so a tenant learns nothing about
another's answers. A store that fails is 503: a rating the caller asked to record is never dropped
silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .deadline import Deadline, as_timed
from .errors import GatewayError
from .schema import FeedbackRequest

logger = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 1.0
NO_PROMPT_VERSION = "none"


@dataclass(frozen=True)
class Answered:
    """What a rating is published by: the answer's tenant, alias, target and prompt version."""

    tenant: str
    alias: str
    target: str
    prompt_version: str


class FeedbackStore:
    """`client`: a DynamoDB client or a TimedClients of them (lambdas/gateway/deadline.py)."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = as_timed(client)
        self.table = table
        self.retention_seconds = retention_days * 24 * 3600
        self.clock = clock

    def _expires(self) -> dict[str, str]:
        return {"N": str(int(self.clock()) + self.retention_seconds)}

    def remember(self, response_id: str, answered: Answered, deadline: Deadline | None = None) -> None:
        """Record who got the answer (skipped, and logged, when the store fails or time is short)."""
        try:
            client = self.clients.within(deadline, "the feedback record", cap=STORE_TIMEOUT_SECONDS)
            client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"response#{response_id}"},
                    "tenant": {"S": answered.tenant},
                    "alias": {"S": answered.alias},
                    "target": {"S": answered.target},
                    "prompt_version": {"S": answered.prompt_version},
                    "expires_at": self._expires(),
                },
            )
        except (ClientError, BotoCoreError, GatewayError) as error:
            logger.warning(
                "feedback record not written; the answer cannot be rated", extra={"error": str(error)}
            )

    def rate(self, request: FeedbackRequest, *, tenant: str, deadline: Deadline | None = None) -> Answered:
        """Store the rating; the answer it rates, for the metric. 404 / 409 / 503 as the module says."""
        client = self.clients.within(deadline, "the feedback lookup", cap=STORE_TIMEOUT_SECONDS)
        try:
            item = client.get_item(
                TableName=self.table,
                Key={"pk": {"S": f"response#{request.response_id}"}},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise unavailable(error) from None
        # DynamoDB deletes expired items lazily: one past its TTL is gone for a rating too.
        if not item or item["tenant"]["S"] != tenant or int(item["expires_at"]["N"]) <= self.clock():
            raise GatewayError(
                404,
                f"no answer {request.response_id!r} to rate for this tenant (unknown, another tenant's, or "
                "older than the feedback retention)",
                param="response_id",
                code="response_not_found",
            )
        answered = Answered(tenant, item["alias"]["S"], item["target"]["S"], item["prompt_version"]["S"])
        rating: dict[str, Any] = {
            "pk": {"S": f"feedback#{request.response_id}"},
            "tenant": {"S": tenant},
            "score": {"N": repr(request.score)},
            "expires_at": self._expires(),
        }
        if request.comment:
            rating["comment"] = {"S": request.comment}
        client = self.clients.within(deadline, "the feedback write", cap=STORE_TIMEOUT_SECONDS)
        try:
            client.put_item(TableName=self.table, Item=rating, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise GatewayError(
                    409,
                    f"answer {request.response_id!r} is already rated (one rating per answer)",
                    param="response_id",
                    code="already_rated",
                ) from None
            raise unavailable(error) from None
        except BotoCoreError as error:
            raise unavailable(error) from None
        return answered


def unavailable(error: Exception) -> GatewayError:
    logger.warning("feedback store failed", extra={"error": str(error)})
    return GatewayError(
        503,
        "the rating could not be stored; send it again",
        type="server_error",
        code="feedback_unavailable",
        headers={"Retry-After": "1"},
    )
