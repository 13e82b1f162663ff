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


class Budget(_Strict):
    """A monthly AWS Budgets cost budget on the profile's cost-allocation tag, plus anomaly alerts."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000)
    # AWS Budgets allows at most 5 notifications per budget (Budgets quotas).
    thresholds: list[BudgetThreshold] = Field(default_factory=_default_thresholds, min_length=1, max_length=5)
    anomaly_threshold_usd: float = Field(
        default=25, gt=0, description="Alert on anomalies costing at least this"
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
