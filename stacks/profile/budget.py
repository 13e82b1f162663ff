"""The profile's cost allocation, notifications and budget sections."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    EmailStr,
    Field,
    field_validator,
)

from genai_stack.profile.common import TagKey, TagValue, _Strict


class CostAllocation(_Strict):
    """The cost-allocation tag every resource carries; budgets and anomaly monitors filter on it.

    Activate the tag key once in the Billing console (Cost allocation tags) so that Cost Explorer
    and AWS Budgets can filter by it.
    """

    tag_key: TagKey = "genai-stack:cost-center"
    tag_value: TagValue = Field(min_length=1)


class Notifications(_Strict):
    """Who hears about alarms, budget thresholds and cost anomalies."""

    # AWS Budgets accepts at most 10 e-mail subscribers per notification (Budgets quotas).
    emails: list[EmailStr] = Field(default_factory=list, max_length=10)


class BudgetThreshold(_Strict):
    """Notify when ACTUAL or FORECASTED spend crosses `percent` of the monthly limit."""

    percent: float = Field(gt=0, le=1000)
    kind: Literal["ACTUAL", "FORECASTED"]


def _default_thresholds() -> list[BudgetThreshold]:
    return [BudgetThreshold(percent=80, kind="ACTUAL"), BudgetThreshold(percent=100, kind="FORECASTED")]


class StopInvocations(_Strict):
    """An AWS Budgets action on the profile's budget: once ACTUAL spend reaches `at_percent` of the
    monthly limit, Budgets attaches a policy that denies model invocation (Bedrock and SageMaker
    endpoints) to every role of the profile that invokes models: the gateway's function and the
    knowledge bases' service roles. `automatic` applies it at once; `manual` waits for someone to
    approve it in the Budgets console (the alert reaches the topic and e-mails either way). Lift it by
    reversing the action (docs/operations.md, "When the spend cap stops invocations")."""

    at_percent: float = Field(default=100, gt=0, le=1000)
    approval: Literal["automatic", "manual"] = "automatic"


class Budget(_Strict):
    """A monthly AWS Budgets cost budget on the profile's cost-allocation tag, plus anomaly alerts."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000)
    # AWS Budgets allows at most 5 notifications per budget (Budgets quotas).
    thresholds: list[BudgetThreshold] = Field(default_factory=_default_thresholds, min_length=1, max_length=5)
    anomaly_threshold_usd: float = Field(
        default=25, gt=0, description="Alert on anomalies costing at least this"
    )
    stop_invocations: StopInvocations | None = Field(
        default=None,
        description="A Budgets action that denies model invocation to the profile's invoking roles once "
        "actual spend reaches a share of the limit (off by default)",
    )

    @field_validator("thresholds")
    @classmethod
    def _unique_thresholds(cls, thresholds: list[BudgetThreshold]) -> list[BudgetThreshold]:
        seen = set()
        for threshold in thresholds:
            key = (threshold.percent, threshold.kind)
            if key in seen:
                raise ValueError(f"lists {threshold.kind} {threshold.percent:g}% twice (each threshold once)")
            seen.add(key)
        return thresholds
