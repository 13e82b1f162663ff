"""`genai-stack catalog refresh`: botocore-stubbed Bedrock answers built from the committed table
reproduce it; a changed answer produces exactly the expected differences; `--check` exits 1 then."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from typer.testing import CliRunner

from genai_stack.catalog import DATA_DIR
from genai_stack.cli import app
from genai_stack.cli import catalog as cat
from genai_stack.cli.catalog_tables import (
    IMAGES_SOURCE,
    SAGEMAKER_COMPONENTS,
    price_filters,
    refreshed_prices,
    sagemaker_source,
)
from tests.cli.test_catalog_tables import (
    REGION_TABLE,
    SAGEMAKER,
    price_list,
    registries,
    registry_answers,
    sagemaker_pricing,
)
from tests.support.stubs import Stubs, offline_client

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


def ec2_pricing(stubs: Stubs, prices: dict[str, float | None]) -> None:
    """GetProducts answers, one per instance type in the table's order."""
    for instance_type, usd in prices.items():
        stubs["pricing"].add_response(
            "get_products",
            price_list(usd),
            {
                "ServiceCode": "AmazonEC2",
                "Filters": price_filters({"instanceType": instance_type, **cat.EC2_PRICE_FILTERS}),
                "MaxResults": 10,
            },
        )


def committed_prices() -> dict[str, float | None]:
    return {k: v.get("hourly_usd_us_east_1") for k, v in PRICES["instances"].items()}


def ec2_refresh(stubs: Stubs):
    return refreshed_prices(
        PRICES, {"instances": (cat.EC2_SOURCE, lambda t: cat.ec2_hourly_price(stubs("pricing"), t))}
    )


def test_price_list_answers_that_agree_reproduce_the_committed_prices(stubs):
    ec2_pricing(stubs, committed_prices())
    result = ec2_refresh(stubs)
    assert result.table == PRICES
    assert result.changes == []
    assert result.confirmed["instances"][1] == list(PRICES["instances"])


def test_a_changed_price_shows_and_a_missing_one_is_kept_and_reported(stubs):
    ec2_pricing(stubs, {**committed_prices(), "g5.xlarge": 1.0123, "g6.48xlarge": None})
    result = ec2_refresh(stubs)
    assert result.changes == ["instances/g5.xlarge: 1.006 -> 1.0123 USD an hour"]
    assert result.table["instances"]["g6.48xlarge"] == PRICES["instances"]["g6.48xlarge"]
    assert result.notes == ["instances/g6.48xlarge: no price in the Price List; kept"]
    assert "g6.48xlarge" not in result.confirmed["instances"][1]


def aws_confirmed(name: str) -> str:
    """A committed table as a refresh would leave it once AWS had confirmed every entry (its provenance
    names the calls), so that answers that agree leave nothing to change."""
    table = json.loads((DATA_DIR / name).read_text())
    sources = {
        "models": cat.MODELS_SOURCE,
        "inference_profiles": cat.PROFILES_SOURCE,
        "instances": cat.EC2_SOURCE,
        "images": IMAGES_SOURCE,
        **{s: sagemaker_source(c) for s, c in SAGEMAKER_COMPONENTS.items()},
    }
    for key, entry in table["provenance"].items():
        section, instance = key.split("/", 1)
        if table[section][instance].get("hourly_usd_us_east_1", 0) is not None:  # unpriced: unconfirmed
            entry["source"] = sources[section]
    return json.dumps(table)


class World:
    """boto3.Session for the command: Bedrock as `regions` answers, every other service stubbed with
    answers that agree with the committed tables; every queued answer must be asked for."""

    def __init__(self, regions: Regions) -> None:
        self.regions = regions
        self.stubs: list[Stubs] = []

    def __call__(self):
        if self.stubs:  # the previous invocation's: each asks for every answer, and frees the clients
            self.stubs[-1].verify()
        stubs = Stubs()
        ec2_pricing(stubs, committed_prices())
        sagemaker_pricing(stubs, SAGEMAKER)
        registries(stubs, SAGEMAKER)
        registry_answers(stubs, REGION_TABLE)
        self.stubs.append(stubs)
        regions = self.regions

        class Session:
            def client(self, service, region_name):
                return regions(region_name) if service == "bedrock" else stubs(service, region_name)

        return Session()

    def verify(self) -> None:
        if self.stubs:
            self.stubs[-1].verify()
        for stubber in self.regions.stubbers:
            stubber.assert_no_pending_responses()

    def close(self) -> None:
        """Free the shared clients, whatever the test asserted (tests/support/stubs.py)."""
        for stubs in self.stubs:
            for stubber in stubs.stubbers.values():
                stubber.deactivate()


@pytest.fixture
def worlds():
    made: list[World] = []

    def make(regions: Regions) -> World:
        made.append(World(regions))
        return made[-1]

    yield make
    for world in made:
        world.close()


def test_check_exits_0_when_current_and_1_with_the_differences(monkeypatch, tmp_path, worlds):
    for name in cat.WRITTEN:
        (tmp_path / name).write_text(aws_confirmed(name))
    (tmp_path / cat.REGIONS).write_text((DATA_DIR / cat.REGIONS).read_text())
    world = json.loads(json.dumps(COMMITTED))
    aws = worlds(Regions(answers(COMMITTED)))
    monkeypatch.setattr(boto3, "Session", aws)
    runner = CliRunner()
    result = runner.invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "The tables are current." in result.output
    world["models"]["amazon.nova-micro-v1:0"]["regions"].append("us-west-2")
    aws.regions.by_region = answers(world)
    result = runner.invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "amazon.nova-micro-v1:0: now in us-west-2" in result.output
    result = runner.invoke(app, ["catalog", "refresh", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / cat.TABLE).read_text())
    assert "us-west-2" in written["models"]["amazon.nova-micro-v1:0"]["regions"]
    assert written["retrieved"] != COMMITTED["retrieved"]
    stamped = written["provenance"]["models/amazon.nova-micro-v1:0"]
    assert stamped == {"source": cat.MODELS_SOURCE, "retrieved": written["retrieved"]}
    assert "sagemaker.json is current; not rewritten." in result.output
    assert (tmp_path / cat.SAGEMAKER).read_text() == aws_confirmed(cat.SAGEMAKER)
    aws.verify()


def test_the_committed_tables_are_not_yet_confirmed_by_aws_and_check_says_so(monkeypatch, tmp_path, worlds):
    """The committed tables were read from AWS's pages: the first refresh rewrites their provenance."""
    for name in (*cat.WRITTEN, cat.REGIONS):
        (tmp_path / name).write_text((DATA_DIR / name).read_text())
    aws = worlds(Regions(answers(COMMITTED)))
    monkeypatch.setattr(boto3, "Session", aws)
    result = CliRunner().invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    aws.verify()
    assert result.exit_code == 1
    assert (
        f"models: {len(COMMITTED['models'])} of {len(COMMITTED['models'])} now confirmed by" in result.output
    )


def test_check_fails_when_aws_answers_nothing(monkeypatch, tmp_path):
    """Expired credentials: every call fails; --check must not call that current."""
    for name in (*cat.WRITTEN, cat.REGIONS):
        (tmp_path / name).write_text((DATA_DIR / name).read_text())

    denied: dict[str, object] = {}

    class Denied:
        def client(self, service, region_name):
            # One client a service, whatever the region: every call fails the same way (and building
            # a client per region would only make the test slow).
            if service not in denied:
                denied[service] = client = offline_client(service)
                client.meta.events.register(
                    "before-call.*.*", lambda **_: (_ for _ in ()).throw(NoCredentialsError())
                )
            return denied[service]

    monkeypatch.setattr(boto3, "Session", Denied)
    result = CliRunner().invoke(app, ["catalog", "refresh", "--check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "AWS confirmed nothing" in result.output


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
