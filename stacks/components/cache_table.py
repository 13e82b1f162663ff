"""The stateful tables: the gateway's exact-match response cache, key table, tenants' spend and feedback,
and the customer assistant's records (all retained)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct


class CacheTable(Construct):
    """On-demand DynamoDB table keyed by `pk` (a request hash), encrypted with the platform key,
    with point-in-time recovery; items expire through the TTL attribute `expires_at`
    (lambdas/gateway/cache.py writes both)."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = stateful_table(
            self, "Table", encryption_key=encryption_key, time_to_live_attribute="expires_at"
        )


class GatewayKeyTable(Construct):
    """The gateway's keys: `pk` is a key's SHA-256 (never the key), with `tenant` and `key_id` (the
    API Gateway key in the tenant's usage plan). Written by `genai-stack keys`, read by the key
    authorizer (lambdas/gateway_authorizer). Stateful and retained: losing it revokes every key."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = stateful_table(self, "Table", encryption_key=encryption_key)


class GatewaySpendTable(Construct):
    """The tenants' monthly spend: `pk` `<tenant>#<YYYY-MM>`, `usd_micros` and `tokens` counted by the
    gateway (lambdas/gateway/allowance.py), expiring through `expires_at` after the month. Retained:
    losing it mid-month would hand every tenant its whole allowance again."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = stateful_table(
            self, "Table", encryption_key=encryption_key, time_to_live_attribute="expires_at"
        )


class GatewayFeedbackTable(Construct):
    """Who got each answer and its rating: `pk` `response#<id>` / `feedback#<id>`, expiring through
    `expires_at` (lambdas/gateway/feedback.py). Retained: the ratings are the record of what users
    thought of the answers."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = stateful_table(
            self, "Table", encryption_key=encryption_key, time_to_live_attribute="expires_at"
        )


class AssistantRecordsTable(Construct):
    """The customer assistant's stand-in for the utility's systems (lambdas/assistant_fulfilment):
    `pk` `account#<number>` and `outage#<district>` (loaded by the utility), `report#<reference>` and
    `connection#<reference>` (written by the bot). Retained: the reports and requests are customers'."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = stateful_table(self, "Table", encryption_key=encryption_key)


def stateful_table(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: kms.IKey,
    time_to_live_attribute: str | None = None,
) -> dynamodb.Table:
    """On-demand, keyed by the string `pk`, encrypted with the platform key, point-in-time recovery,
    retained on stack deletion."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=encryption_key,
        time_to_live_attribute=time_to_live_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )
