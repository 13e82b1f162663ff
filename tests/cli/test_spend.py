"""`genai-stack cost PROFILE --by TAG`: a month's spend per value of a tag of the profile's application
inference profiles, from Cost Explorer (stubbed: moto's GetCostAndUsage answers from a queue without
reading the request, and it has no ListCostAllocationTags)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from genai_stack.cli import app, spend
from genai_stack.config import load_profile

TODAY = dt.date(2026, 12, 2)
runner = CliRunner()


@pytest.fixture(scope="module")
def managed_api():
    return load_profile("managed-api")


def group(tag: str, service: str, usd: str) -> dict:
    return {"Keys": [tag, service], "Metrics": {spend.METRIC: {"Amount": usd, "Unit": "USD"}}}


def page(groups: list[dict], token: str | None = None) -> dict:
    answer: dict = {
        "ResultsByTime": [
            {"TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"}, "Groups": groups, "Estimated": False}
        ]
    }
    if token:
        answer["NextPageToken"] = token
    return answer


ACTIVE = {
    "CostAllocationTags": [
        {"TagKey": "campaign", "Type": "UserDefined", "Status": "Active"},
        {"TagKey": "genai-stack:cost-center", "Type": "UserDefined", "Status": "Active"},
    ]
}


def test_the_tag_s_values_come_from_the_campaign_and_gateway_profiles(managed_api):
    campaigns = spend.tag_groups(managed_api, "campaign")
    assert sorted(campaigns) == ["card-rewards", "spring-savings"]
    assert campaigns["spring-savings"].profiles == ("managed-api-spring-savings",)
    aliases = spend.tag_groups(managed_api, "alias")
    assert {"copywriter", "drafts", "embedder"} <= set(aliases)
    assert len(aliases["copywriter"].profiles) == 2  # one per target: Claude Haiku 4.5 and Nova Lite
    with pytest.raises(ValueError, match=r"carries a 'segment' tag \(tags they carry: alias, campaign\)"):
        spend.tag_groups(managed_api, "segment")


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (None, ("2026-11", "2026-11-01", "2026-12-01")),  # the last full month
        ("2026-02", ("2026-02", "2026-02-01", "2026-03-01")),
        ("2026-12", ("2026-12", "2026-12-01", "2026-12-02")),  # month to date, End exclusive
    ],
)
def test_the_month_is_a_calendar_month_with_an_exclusive_end(month, expected):
    assert spend.month_period(month, today=TODAY) == expected


def test_the_first_day_of_a_month_still_asks_for_a_day():
    assert spend.month_period("2026-12", today=dt.date(2026, 12, 1)) == (
        "2026-12",
        "2026-12-01",
        "2026-12-02",
    )


@pytest.mark.parametrize(
    ("month", "message"), [("2026-13", "YYYY-MM"), ("Nov", "YYYY-MM"), ("2027-01", "not started")]
)
def test_a_bad_month_is_refused(month, message):
    with pytest.raises(ValueError, match=message):
        spend.month_period(month, today=TODAY)


def test_the_report_splits_by_campaign_and_service_and_lists_campaigns_without_spend(stubs, managed_api):
    ce = stubs("ce")
    stubs["ce"].add_response(
        "list_cost_allocation_tags", ACTIVE, {"TagKeys": ["campaign", "genai-stack:cost-center"]}
    )
    request = spend.cost_request(managed_api, "campaign", "2026-11-01", "2026-12-01")
    assert request["Filter"] == {
        "Tags": {"Key": "genai-stack:cost-center", "Values": ["marketing-genai"], "MatchOptions": ["EQUALS"]}
    }
    claude = "Claude Haiku 4.5 (Amazon Bedrock Edition)"
    stubs["ce"].add_response(
        "get_cost_and_usage",
        page(
            [group("campaign$spring-savings", claude, "12.5"), group("campaign$", "Amazon Bedrock", "3.25")],
            "t1",
        ),
        request,
    )
    stubs["ce"].add_response(
        "get_cost_and_usage",
        page([group("campaign$spring-savings", claude, "0.5"), group("campaign$", "Amazon S3", "1")]),
        {**request, "NextPageToken": "t1"},
    )
    report = spend.spend_by_tag(ce, managed_api, "campaign", month=None, today=TODAY)
    rows = [(r.value, r.service, r.usd) for r in report.rows]
    assert rows == [
        ("card-rewards", "", 0.0),  # defined, nothing spent: still a row
        ("spring-savings", claude, 13.0),  # both pages added
        ("(no campaign tag)", "Amazon Bedrock", 3.25),
        ("(no campaign tag)", "Amazon S3", 1.0),
    ]
    assert report.total_usd == pytest.approx(17.25)
    assert report.notes == []
    assert report.rows[1].profiles == ("managed-api-spring-savings",)


def test_an_inactive_or_unknown_tag_is_said_beside_the_figures(stubs, managed_api):
    ce = stubs("ce")
    stubs["ce"].add_response(
        "list_cost_allocation_tags",
        {
            "CostAllocationTags": [
                {"TagKey": "genai-stack:cost-center", "Type": "UserDefined", "Status": "Inactive"}
            ]
        },
    )
    stubs["ce"].add_response("get_cost_and_usage", page([group("campaign$other", "Amazon Bedrock", "2")]))
    report = spend.spend_by_tag(ce, managed_api, "campaign", month="2026-11", today=TODAY)
    assert [n.split(" ")[0:3] for n in report.notes[:2]] == [
        ["campaign", "is", "not"],
        ["genai-stack:cost-center", "is", "an"],
    ]
    assert "TagKey=genai-stack:cost-center,Status=Active" in report.notes[1]
    assert ("other", "Amazon Bedrock", 2.0) in [(r.value, r.service, r.usd) for r in report.rows]
    assert "does not define" in report.notes[2]


def test_the_command_prints_the_table_and_json(stubs, managed_api, monkeypatch):
    ce = stubs("ce")
    monkeypatch.setattr(spend, "make_client", lambda: ce)
    for _ in range(2):
        stubs["ce"].add_response("list_cost_allocation_tags", ACTIVE)
        stubs["ce"].add_response(
            "get_cost_and_usage", page([group("campaign$card-rewards", "Amazon Bedrock", "4")])
        )
    result = runner.invoke(app, ["cost", "managed-api", "--by", "campaign", "--month", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "Spend of managed-api by campaign, 2026-11" in result.output
    assert "managed-api-card-rewards" in result.output
    result = runner.invoke(app, ["cost", "managed-api", "--by", "campaign", "--month", "2026-11", "--json"])
    document = json.loads(result.output)
    assert document["total_usd"] == 4.0
    assert document["rows"][0] == {
        "value": "card-rewards",
        "service": "Amazon Bedrock",
        "usd": 4.0,
        "profiles": ["managed-api-card-rewards"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "segment"), "carries a 'segment' tag"),
        (("--by", "campaign", "--month", "11/2026"), "YYYY-MM"),
        (("--month", "2026-11"), "--month goes with --by"),
    ],
)
def test_bad_options_are_refused_before_any_call(args, message, monkeypatch):
    monkeypatch.setattr(spend, "make_client", lambda: pytest.fail("no call for bad input"))
    result = runner.invoke(app, ["cost", "managed-api", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_caller_that_may_not_read_the_tags_status_still_gets_the_report(stubs, managed_api):
    ce = stubs("ce")
    stubs["ce"].add_client_error("list_cost_allocation_tags", "AccessDeniedException", "member account")
    stubs["ce"].add_response(
        "get_cost_and_usage", page([group("campaign$card-rewards", "Amazon Bedrock", "4")])
    )
    report = spend.spend_by_tag(ce, managed_api, "campaign", month=None, today=TODAY)
    assert report.total_usd == 4.0
    assert report.notes == [
        "could not check whether campaign, genai-stack:cost-center are active cost-allocation tags "
        "(AccessDeniedException); a tag that is not active splits nothing"
    ]


def test_a_refused_call_is_a_clear_error(stubs, monkeypatch):
    ce = stubs("ce")
    monkeypatch.setattr(spend, "make_client", lambda: ce)
    stubs["ce"].add_response("list_cost_allocation_tags", ACTIVE)
    stubs["ce"].add_client_error("get_cost_and_usage", "AccessDeniedException", "not allowed")
    result = runner.invoke(app, ["cost", "managed-api", "--by", "campaign"])
    assert result.exit_code == 2
    assert "Cost Explorer" in result.output
    assert "AccessDeniedException" in result.output
