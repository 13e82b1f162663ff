"""`genai-stack catalog refresh`: botocore-stubbed Bedrock answers built from the committed table
reproduce it; a changed answer produces exactly the expected differences; `--check` exits 1 then."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from genai_stack.catalog import DATA_DIR
from genai_stack.cli import app
from genai_stack.cli import catalog as cat

COMMITTED = json.loads((DATA_DIR / cat.TABLE).read_text())
REGIONS = cat.commercial_regions()


def summary(model_id: str, *, kinds=("ON_DEMAND",), status="ACTIVE") -> dict:
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelId": model_id,
        "inferenceTypesSupported": list(kinds),
        "modelLifecycle": {"status": status},
    }


def answers(table: dict) -> dict[str, tuple[dict, dict]]:
    """What each region would answer if AWS agreed with `table`, plus what the refresh must ignore:
    a LEGACY model and one offered only through inference profiles."""
    by_region = {}
    for region in REGIONS:
        models = [summary(m) for m, e in table["models"].items() if region in e["regions"]]
        models += [
            summary("amazon.titan-text-express-v1", status="LEGACY"),
            summary("meta.llama4-maverick-17b-instruct-v1:0", kinds=("INFERENCE_PROFILE",)),
        ]
        profiles = [
            {
                "inferenceProfileName": profile_id,
                "inferenceProfileArn": f"arn:aws:bedrock:{region}:123456789012:inference-profile/{profile_id}",
                "inferenceProfileId": profile_id,
                "status": "ACTIVE",
                "type": "SYSTEM_DEFINED",
                "models": [
                    {"modelArn": f"arn:aws:bedrock:{target}::foundation-model/{entry['model']}"}
                    # A global profile's destinations are not enumerated in the table: any will do.
                    for target in entry["routes"][region] or [region]
                ],
            }
            for profile_id, entry in table["inference_profiles"].items()
            if region in entry["routes"]
        ]
        by_region[region] = ({"modelSummaries": models}, {"inferenceProfileSummaries": profiles})
    return by_region


class Regions:
    """A stubbed Bedrock client per region, answering as `answers` says (an absent region fails)."""

    def __init__(self, by_region: dict[str, tuple[dict, dict]]) -> None:
        self.by_region = by_region
        self.stubbers: list[Stubber] = []

    def __call__(self, region: str):
        client = boto3.client("bedrock", region_name=region, aws_access_key_id="t", aws_secret_access_key="t")
        stubber = Stubber(client)
        if region in self.by_region:
            models, profiles = self.by_region[region]
            stubber.add_response("list_foundation_models", models, {"byInferenceType": "ON_DEMAND"})
            stubber.add_response("list_inference_profiles", profiles, {"typeEquals": "SYSTEM_DEFINED"})
        else:
            stubber.add_client_error(
                "list_foundation_models", "UnrecognizedClientException", "region not enabled"
            )
        stubber.activate()
        self.stubbers.append(stubber)
        return client


def normalised(table: dict) -> dict:
    return {
        "models": table["models"],
        "inference_profiles": {
            k: {**v, "routes": {s: sorted(t) for s, t in v["routes"].items()}}
            for k, v in table["inference_profiles"].items()
        },
    }


def test_answers_that_agree_with_the_committed_table_reproduce_it():
    table, silent = cat.refreshed(COMMITTED, REGIONS, Regions(answers(COMMITTED)))
    assert silent == []
    assert normalised(table) == normalised(COMMITTED)
    assert cat.differences(COMMITTED, table) == []
    assert {k: table[k] for k in ("sources", "note", "retrieved")} == {
        k: COMMITTED[k] for k in ("sources", "note", "retrieved")
    }


def test_a_changed_answer_gives_exactly_the_expected_differences():
    world = json.loads(json.dumps(COMMITTED))
    world["models"]["amazon.nova-lite-v1:0"]["regions"].append("eu-west-1")
    world["models"]["amazon.nova-pro-v1:0"]["regions"].remove("eu-west-2")
    routes = world["inference_profiles"]["jp.anthropic.claude-haiku-4-5-20251001-v1:0"]["routes"]
    routes["ap-northeast-1"] = ["ap-northeast-1"]
    table, _ = cat.refreshed(COMMITTED, REGIONS, Regions(answers(world)))
    assert cat.differences(COMMITTED, table) == [
        "amazon.nova-lite-v1:0: now in eu-west-1",
        "amazon.nova-pro-v1:0: no longer in eu-west-2",
        "jp.anthropic.claude-haiku-4-5-20251001-v1:0 from ap-northeast-1: ['ap-northeast-1', 'ap-northeast-3'] -> ['ap-northeast-1']",
    ]


def test_a_region_that_does_not_answer_is_reported_and_keeps_its_committed_entries():
    """An account that has not enabled an opt-in region must not remove it from the table."""
    by_region = answers(COMMITTED)
    del by_region["us-west-2"]
    table, silent = cat.refreshed(COMMITTED, REGIONS, Regions(by_region))
    assert len(silent) == 1
    assert silent[0].startswith("us-west-2: ")
    assert "us-west-2" in table["models"]["amazon.nova-lite-v1:0"]["regions"]
    assert normalised(table) == normalised(COMMITTED)
    assert cat.differences(COMMITTED, table) == []


PRICES = json.loads((DATA_DIR / cat.PRICES).read_text())


def price_list(usd: float | None) -> dict:
    """GetProducts' answer for one instance type: its on-demand term as the Price List writes it (a
    JSON string per product)."""
    if usd is None:
        return {"PriceList": [], "FormatVersion": "aws_v1"}
    product = {
        "product": {"attributes": {"instanceType": "x", "location": "US East (N. Virginia)"}},
        "terms": {
            "OnDemand": {
                "ABC.JRTCKXETXF": {
                    "priceDimensions": {
                        "ABC.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": f"{usd:.10f}"}}
                    }
                }
            }
        },
    }
    return {"PriceList": [json.dumps(product)], "FormatVersion": "aws_v1"}


def pricing_client(prices: dict[str, float | None]):
    client = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    stubber = Stubber(client)
    for instance_type, usd in prices.items():
        filters = [
            {"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in {"instanceType": instance_type, **cat.EC2_PRICE_FILTERS}.items()
        ]
        stubber.add_response(
            "get_products",
            price_list(usd),
            {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 10},
        )
    stubber.activate()
    return client


def committed_prices() -> dict[str, float | None]:
    return {k: v.get("hourly_usd_us_east_1") for k, v in PRICES["instances"].items()}


def test_price_list_answers_that_agree_reproduce_the_committed_prices_and_a_change_shows():
    client = pricing_client(committed_prices())
    table = cat.refreshed_prices(PRICES, lambda t: cat.ec2_hourly_price(client, t))
    assert table == PRICES
    changed = {**committed_prices(), "g5.xlarge": 1.0123, "g6.48xlarge": None}
    client = pricing_client(changed)
    table = cat.refreshed_prices(PRICES, lambda t: cat.ec2_hourly_price(client, t))
    assert cat.price_differences(PRICES, table) == [
        "g5.xlarge: 1.006 -> 1.0123 USD an hour"
    ]  # None keeps the price


def test_check_exits_0_when_current_and_1_with_the_differences(monkeypatch, tmp_path):
    (tmp_path / cat.TABLE).write_text(json.dumps(COMMITTED))
    (tmp_path / cat.PRICES).write_text(json.dumps(PRICES))
    world = json.loads(json.dumps(COMMITTED))
    regions = Regions(answers(COMMITTED))

    class Session:
        def client(self, service, region_name):
            return pricing_client(committed_prices()) if service == "pricing" else regions(region_name)

    monkeypatch.setattr(boto3, "Session", Session)
    runner = CliRunner()
    result = runner.invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "The tables are current." in result.output
    world["models"]["amazon.nova-micro-v1:0"]["regions"].append("us-west-2")
    regions.by_region = answers(world)
    result = runner.invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "amazon.nova-micro-v1:0: now in us-west-2" in result.output
    result = runner.invoke(app, ["catalog", "refresh", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / cat.TABLE).read_text())
    assert "us-west-2" in written["models"]["amazon.nova-micro-v1:0"]["regions"]
    assert written["retrieved"] != COMMITTED["retrieved"]


@pytest.mark.parametrize("status", ["LEGACY"])
def test_legacy_and_profile_only_models_are_never_listed_as_offered(status):
    client = Regions(
        {
            "us-east-1": (
                {
                    "modelSummaries": [
                        summary("a", status=status),
                        summary("b", kinds=("INFERENCE_PROFILE",)),
                        summary("c"),
                    ]
                },
                {"inferenceProfileSummaries": []},
            )
        }
    )("us-east-1")
    assert cat.offered(client) == {"c"}
