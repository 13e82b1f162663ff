"""`genai-stack cost PROFILE --by KEY`: a month's spend of the profile, split by a tag its application
inference profiles carry (`campaign`, or `alias` for the gateway's), from Cost Explorer.

On-demand Bedrock calls carry cost-allocation tags only through an application inference profile
(stacks/components/application_inference_profile.py), so the split covers what was invoked through the
profile's campaign and gateway profiles; everything else under the profile's cost-allocation tag (the
bucket, the functions, a model called by its id) is the "(no <key> tag)" row. Cost Explorer groups by a
user-defined tag only once it is an active cost-allocation tag, and only for costs incurred after it
was activated (Billing guide, "Activating user-defined cost allocation tags":
https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html). Anthropic's models
are sold through AWS Marketplace, so their lines carry a service name of their own: the report groups by
service as well as by the tag (GetCostAndUsage takes two GroupBy entries:
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetCostAndUsage.html)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from genai_stack.components.application_inference_profile import ALIAS_TAG
from genai_stack.components.application_inference_profile import gateway_routes as routes_of
from genai_stack.config import Profile

METRIC = "UnblendedCost"
NO_TAG = "(no {key} tag)"
# Cost Explorer API requests are billed (0.01 USD each, Cost Explorer pricing); a report is one
# ListCostAllocationTags and one GetCostAndUsage per page.


@dataclass(frozen=True)
class Group:
    """One value of the tag: the application inference profiles that carry it."""

    value: str
    profiles: tuple[str, ...]


@dataclass
class Row:
    value: str  # the tag's value, or NO_TAG
    service: str
    usd: float
    profiles: tuple[str, ...] = ()


@dataclass
class SpendReport:
    profile: str
    key: str
    month: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(row.usd for row in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "by": self.key,
            "month": self.month,
            "metric": METRIC,
            "rows": [
                {"value": r.value, "service": r.service, "usd": round(r.usd, 6), "profiles": list(r.profiles)}
                for r in self.rows
            ],
            "total_usd": round(self.total_usd, 6),
            "notes": self.notes,
        }


def tag_groups(profile: Profile, key: str) -> dict[str, Group]:
    """The values of `key` on the profile's application inference profiles: the campaign profiles'
    own tags (bedrock.application_inference_profiles[].tags) and `alias` on the gateway's. A key none
    of them carries is an error that names the keys they do carry."""
    carried: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    bedrock = profile.bedrock
    for app in bedrock.application_inference_profiles if bedrock else ():
        for tag, value in app.tags.items():
            carried[tag][value].append(f"{profile.name}-{app.name}")
    if bedrock is not None and profile.gateway is not None:
        for route in routes_of(profile.name, profile.gateway, bedrock):
            if route.campaign is None:
                carried[ALIAS_TAG][route.alias].append(route.name)
    if key not in carried:
        known = ", ".join(sorted(carried)) or "none: the profile has no application inference profiles"
        raise ValueError(
            f"no application inference profile of {profile.name} carries a {key!r} tag "
            f"(tags they carry: {known})"
        )
    return {value: Group(value, tuple(names)) for value, names in sorted(carried[key].items())}


def month_period(month: str | None, *, today: dt.date) -> tuple[str, str, str]:
    """(label, Start, End) of a calendar month, End exclusive as Cost Explorer takes it; the current
    month ends today (month to date). Default: the last full month."""
    if month is None:
        first = today.replace(day=1)
        start = (first - dt.timedelta(days=1)).replace(day=1)
    else:
        try:
            start = dt.datetime.strptime(month, "%Y-%m").date()
        except ValueError:
            raise ValueError(f"--month {month!r} is not a month in the form YYYY-MM") from None
    if start > today:
        raise ValueError(f"--month {month} has not started yet")
    end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if end > today:
        end = today
    if end <= start:  # the first day of the current month: nothing has been incurred yet
        end = start + dt.timedelta(days=1)
    return start.strftime("%Y-%m"), start.isoformat(), end.isoformat()


def cost_request(profile: Profile, key: str, start: str, end: str) -> dict[str, Any]:
    """GetCostAndUsage for the profile's cost-allocation tag, grouped by `key` and by service."""
    allocation = profile.cost_allocation
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "Filter": {
            "Tags": {"Key": allocation.tag_key, "Values": [allocation.tag_value], "MatchOptions": ["EQUALS"]}
        },
        "GroupBy": [{"Type": "TAG", "Key": key}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def tag_status(ce: Any, keys: list[str]) -> list[str]:
    """Notes for the keys that are not active cost-allocation tags (ListCostAllocationTags). A caller
    that may read costs but not the tags' status (a member account: tags are activated in the
    management account) still gets the report, with a note."""
    from botocore.exceptions import ClientError

    try:
        listed = ce.list_cost_allocation_tags(TagKeys=keys)["CostAllocationTags"]
    except ClientError as error:
        return [
            f"could not check whether {', '.join(keys)} are active cost-allocation tags "
            f"({error.response['Error']['Code']}); a tag that is not active splits nothing"
        ]
    found = {t["TagKey"]: t.get("Status") for t in listed}
    notes = []
    for key in keys:
        if key not in found:
            notes.append(
                f"{key} is not known to Billing yet (a key appears up to 24 hours after a resource carries "
                "it): until it is activated, its spend is in the no-tag row"
            )
        elif found[key] != "Active":
            notes.append(
                f"{key} is an inactive cost-allocation tag: Cost Explorer cannot split or filter by it. "
                f"Activate it (`aws ce update-cost-allocation-tags-status --cost-allocation-tags-status "
                f"TagKey={key},Status=Active`); only costs incurred afterwards carry it"
            )
    return notes


def spend_by_tag(ce: Any, profile: Profile, key: str, *, month: str | None, today: dt.date) -> SpendReport:
    groups = tag_groups(profile, key)
    label, start, end = month_period(month, today=today)
    report = SpendReport(profile.name, key, label)
    report.notes = tag_status(ce, sorted({key, profile.cost_allocation.tag_key}))
    request = cost_request(profile, key, start, end)
    amounts: dict[tuple[str, str], float] = defaultdict(float)
    while True:
        page = ce.get_cost_and_usage(**request)
        for period in page["ResultsByTime"]:
            for group in period.get("Groups", []):
                tag, service = group["Keys"]
                value = tag.split("$", 1)[1] if "$" in tag else ""
                amounts[(value, service)] += float(group["Metrics"][METRIC]["Amount"])
        if not page.get("NextPageToken"):
            break
        request["NextPageToken"] = page["NextPageToken"]
    no_tag = NO_TAG.format(key=key)
    for value, group in groups.items():  # every value the profile defines, spent or not
        spent = {service: usd for (v, service), usd in amounts.items() if v == value}
        for service, usd in sorted(spent.items()) or [("", 0.0)]:
            report.rows.append(Row(value, service, usd, group.profiles))
    others = sorted((v, s, usd) for (v, s), usd in amounts.items() if v not in groups)
    for value, service, usd in others:
        report.rows.append(Row(value or no_tag, service, usd))
    if any(v and v not in groups for v, _, _ in others):
        report.notes.append(
            f"values of {key} that {profile.name} does not define (another profile with the same "
            "cost-allocation tag value, or a profile removed since) are listed as they are"
        )
    return report


def make_client() -> Any:
    """Cost Explorer with the default credential chain (one endpoint, us-east-1; botocore resolves it)."""
    import boto3

    return boto3.client("ce", region_name="us-east-1")
