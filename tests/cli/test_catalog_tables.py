"""`genai-stack catalog refresh` beyond the Bedrock table, against botocore stubs: SageMaker prices
(Price List), the Deep Learning Container images (Amazon ECR), the CloudFormation registry check of
regions.json, and the per-entry provenance of every refreshable table. Answers built from the
committed tables reproduce them; a changed answer gives exactly the expected change."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from genai_stack.catalog import DATA_DIR, image_regions, image_uri, provenance
from genai_stack.cli import catalog_tables as tables
from tests.support.stubs import Stubs

SAGEMAKER = json.loads((DATA_DIR / "sagemaker.json").read_text())
REGION_TABLE = json.loads((DATA_DIR / "regions.json").read_text())
ACCOUNTS = SAGEMAKER["registry_accounts"]
REGISTRY_REGIONS = sorted(set(ACCOUNTS["default_regions"]) | set(ACCOUNTS["by_region"]))
COMMERCIAL = sorted(REGION_TABLE["missing"])
PUSHED = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def price_list(usd: float | None, *more: float) -> dict:
    """GetProducts' answer: a product per price, its on-demand term as the Price List writes it (a
    JSON string per product)."""
    if usd is None:
        return {"PriceList": [], "FormatVersion": "aws_v1"}
    products = [
        {
            "product": {"attributes": {"regionCode": "us-east-1"}},
            "terms": {
                "OnDemand": {
                    "ABC.JRTCKXETXF": {
                        "priceDimensions": {
                            "ABC.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": f"{price:.10f}"},
                            }
                        }
                    }
                }
            },
        }
        for price in (usd, *more)
    ]
    return {"PriceList": [json.dumps(p) for p in products], "FormatVersion": "aws_v1"}


def sagemaker_pricing(stubs: Stubs, table: dict, **answers) -> None:
    """GetProducts answers for every SageMaker instance, in the refresh's order; `answers` overrides
    one ("<section>__<type>"): a price, None, or a tuple of several."""
    for section, component in tables.SAGEMAKER_COMPONENTS.items():
        for instance_type, entry in table[section].items():
            answer = answers.get(f"{section}__{instance_type}", entry["hourly_usd_us_east_1"])
            stubs["pricing"].add_response(
                "get_products",
                price_list(*answer) if isinstance(answer, tuple) else price_list(answer),
                {
                    "ServiceCode": "AmazonSageMaker",
                    "Filters": tables.price_filters(
                        {
                            "instanceName": instance_type,
                            "component": component,
                            **tables.SAGEMAKER_PRICE_FILTERS,
                        }
                    ),
                    "MaxResults": 10,
                },
            )


def account(region: str) -> str:
    return ACCOUNTS["by_region"].get(region, ACCOUNTS["default"])


def registries(
    stubs: Stubs,
    table: dict,
    *,
    listed: dict[str, list[dict]] | None = None,
    probes: dict[str, list[tuple[str, list[str]]]] | None = None,
    silent: tuple[str, ...] = (),
) -> None:
    """ECR answers in the refresh's order: for a tracked image, its repository's tagged images in
    us-east-1 (`listed`, else just the pinned tag); then, for each tag the refresh is expected to probe
    (`probes`, else the pinned tag where the table says it is), per registry region whether it holds
    it. A region in `silent` answers with an error."""
    for name, image in table["images"].items():
        if image.get("track"):
            details = (listed or {}).get(name, [{"imageTags": [image["tag"]], "imagePushedAt": PUSHED}])
            stubs.stubber("ecr", "us-east-1").add_response(
                "describe_images",
                {"imageDetails": details},
                {
                    "registryId": account("us-east-1"),
                    "repositoryName": image["repository"],
                    "filter": {"tagStatus": "TAGGED"},
                },
            )
        for tag, holding in (probes or {}).get(name, [(image["tag"], image["regions"])]):
            for region in REGISTRY_REGIONS:
                expected = {
                    "registryId": account(region),
                    "repositoryName": image["repository"],
                    "imageIds": [{"imageTag": tag}],
                }
                stubber = stubs.stubber("ecr", region)
                if region in silent:
                    stubber.add_client_error("describe_images", "UnrecognizedClientException", "not enabled")
                elif region in holding:
                    stubber.add_response(
                        "describe_images",
                        {"imageDetails": [{"imageTags": [tag], "imagePushedAt": PUSHED}]},
                        expected,
                    )
                else:
                    stubber.add_client_error(
                        "describe_images", "ImageNotFoundException", "no such tag", expected_params=expected
                    )


# Types without an update handler: CloudFormation's registry files them as IMMUTABLE, and ListTypes
# leaves them out unless asked for that provisioning type.
IMMUTABLE = {
    "AWS::Lambda::Permission",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::Bedrock::GuardrailVersion",
}


def registry_answers(stubs: Stubs, table: dict, **offered_now: list[str]) -> None:
    """ListTypes per commercial region and provisioning type: every type of the table but those it
    misses (or, for a region given by keyword with "-" as "_", the types it now misses)."""
    every = set().union(*table["types"].values())
    for region in COMMERCIAL:
        missing = offered_now.get(region.replace("-", "_"), table["missing"][region])
        offered = every - set(missing)
        by_kind = {
            "FULLY_MUTABLE": offered - IMMUTABLE,
            "IMMUTABLE": offered & IMMUTABLE,
            "NON_PROVISIONABLE": set(),
        }
        for provisioning in tables.PROVISIONING_TYPES:
            stubs.stubber("cloudformation", region).add_response(
                "list_types",
                {
                    "TypeSummaries": [
                        {"TypeName": t, "Type": "RESOURCE"} for t in sorted(by_kind[provisioning])
                    ]
                },
                {
                    "Visibility": "PUBLIC",
                    "Type": "RESOURCE",
                    "ProvisioningType": provisioning,
                    "Filters": {"Category": "AWS_TYPES"},
                },
            )


def sagemaker_prices(stubs: Stubs) -> tables.Refreshed:
    pricing = stubs("pricing")
    return tables.refreshed_prices(
        SAGEMAKER,
        {
            section: ("test", lambda t, c=component: tables.sagemaker_hourly_price(pricing, t, c))
            for section, component in tables.SAGEMAKER_COMPONENTS.items()
        },
    )


# --------------------------------------------------------------------------------------------------
# SageMaker prices


def test_sagemaker_price_answers_that_agree_reproduce_the_table(stubs):
    sagemaker_pricing(stubs, SAGEMAKER)
    result = sagemaker_prices(stubs)
    assert result.table == SAGEMAKER
    assert result.changes == []
    unpriced = [
        f"{section}/{k}"
        for section in tables.SAGEMAKER_COMPONENTS
        for k, e in SAGEMAKER[section].items()
        if e["hourly_usd_us_east_1"] is None
    ]
    assert any(k.startswith("training_instances/") for k in unpriced), "the Price List is their first source"
    assert result.notes == [f"{k}: no price in the Price List; kept" for k in unpriced]


def test_a_new_price_a_changed_one_and_an_ambiguous_one(stubs):
    sagemaker_pricing(
        stubs,
        SAGEMAKER,
        **{
            "training_instances__ml.g5.xlarge": 1.41,
            "inference_instances__ml.g5.2xlarge": 1.6,
            "inference_instances__ml.g6.xlarge": (1.0, 1.1),
        },
    )
    result = sagemaker_prices(stubs)
    assert result.changes == [
        "inference_instances/ml.g5.2xlarge: 1.515 -> 1.6 USD an hour",
        "training_instances/ml.g5.xlarge: None -> 1.41 USD an hour",
    ]
    assert "inference_instances/ml.g6.xlarge: 2 prices [1.0, 1.1] in the Price List; kept" in result.notes
    assert "ml.g6.xlarge" not in result.confirmed["inference_instances"][1]
    assert (
        result.table["inference_instances"]["ml.g6.xlarge"]
        == SAGEMAKER["inference_instances"]["ml.g6.xlarge"]
    )


def test_several_sagemaker_prices_are_decided_by_the_component_s_own_usage_type(stubs):
    products = [
        ({"usagetype": "USE1-Host:ml.g5.xlarge"}, 1.408),
        ({"usagetype": "USE1-Cluster:ml.g5.xlarge"}, 1.52),
    ]
    answer = {
        "PriceList": [
            json.dumps({**json.loads(price_list(usd)["PriceList"][0]), "product": {"attributes": attributes}})
            for attributes, usd in products
        ],
        "FormatVersion": "aws_v1",
    }
    stubs["pricing"].add_response("get_products", answer)
    assert tables.sagemaker_hourly_price(stubs("pricing"), "ml.g5.xlarge", "Hosting") == {1.408}


# --------------------------------------------------------------------------------------------------
# Deep Learning Container images


def test_registry_answers_that_agree_reproduce_the_images(stubs):
    registries(stubs, SAGEMAKER)
    result = tables.refreshed_images(tables.Refreshed(SAGEMAKER), lambda r: stubs("ecr", r))
    assert result.table == SAGEMAKER
    assert result.changes == []
    assert result.confirmed["images"][1] == list(SAGEMAKER["images"])


def test_a_tracked_image_moves_to_its_release_s_highest_rebuild_never_to_a_new_line(stubs):
    pinned = SAGEMAKER["images"]["lmi"]["tag"]
    later = PUSHED + dt.timedelta(days=20)
    listed = {
        "lmi": [
            {"imageTags": [pinned], "imagePushedAt": PUSHED},
            # A rebuild carries the moving tag and an immutable one: the immutable one is pinned.
            {"imageTags": [pinned, f"{pinned}-v1.2"], "imagePushedAt": later},
            # An older rebuild pushed last does not win: tags are ordered by version, not push time.
            {"imageTags": [f"{pinned}-v1.1"], "imagePushedAt": later + dt.timedelta(days=2)},
            # A new release line does not match the track.
            {"imageTags": ["0.37.0-lmi19.0.0-cu128"], "imagePushedAt": later + dt.timedelta(days=1)},
        ]
    }
    regions = SAGEMAKER["images"]["lmi"]["regions"]
    registries(stubs, SAGEMAKER, listed=listed, probes={"lmi": [(f"{pinned}-v1.2", regions)]})
    result = tables.refreshed_images(tables.Refreshed(SAGEMAKER), lambda r: stubs("ecr", r))
    assert result.changes == [f"images/lmi: {pinned} -> {pinned}-v1.2 (pushed {later.date().isoformat()})"]
    assert result.table["images"]["lmi"]["released"] == later.date().isoformat()
    assert result.table["images"]["lmi"]["regions"] == regions


def test_a_rebuild_not_yet_in_every_region_of_the_pin_is_not_taken(stubs):
    pinned = SAGEMAKER["images"]["lmi"]["tag"]
    regions = SAGEMAKER["images"]["lmi"]["regions"]
    listed = {"lmi": [{"imageTags": [f"{pinned}-v1.3"], "imagePushedAt": PUSHED}]}
    partly = [r for r in regions if r != "eu-central-2"]
    registries(
        stubs, SAGEMAKER, listed=listed, probes={"lmi": [(f"{pinned}-v1.3", partly), (pinned, regions)]}
    )
    result = tables.refreshed_images(tables.Refreshed(SAGEMAKER), lambda r: stubs("ecr", r))
    assert result.changes == []
    assert f"images/lmi: {pinned}-v1.3 is not yet in eu-central-2; {pinned} kept" in result.notes
    assert result.table == SAGEMAKER


@pytest.mark.parametrize(
    ("tags", "order"),
    [
        (["2.10.0-x-v1.5", "2.10.1-x-v1.0", "2.10.0-x"], ["2.10.0-x", "2.10.0-x-v1.5", "2.10.1-x-v1.0"]),
        (
            ["0.36.0-lmi18.0.0-cu128-v1.10", "0.36.0-lmi18.0.0-cu128-v1.9"],
            ["0.36.0-lmi18.0.0-cu128-v1.9", "0.36.0-lmi18.0.0-cu128-v1.10"],
        ),
    ],
)
def test_tags_are_ordered_by_release_then_rebuild(tags, order):
    assert sorted(tags, key=tables.tag_version) == order


def test_a_registry_without_the_tag_drops_the_region_and_a_silent_one_keeps_it(stubs):
    tgi = SAGEMAKER["images"]["tgi"]
    registries(
        stubs,
        SAGEMAKER,
        probes={"tgi": [(tgi["tag"], [r for r in tgi["regions"] if r != "eu-south-2"])]},
        silent=("me-central-1",),
    )
    result = tables.refreshed_images(tables.Refreshed(SAGEMAKER), lambda r: stubs("ecr", r))
    assert result.changes == ["images/tgi: no longer in eu-south-2"]
    assert "me-central-1" in result.table["images"]["tgi"]["regions"]
    # The regions that answered confirm every image; the silent one is reported for each.
    assert result.confirmed["images"][1] == list(SAGEMAKER["images"])
    assert sum("no answer in me-central-1" in n for n in result.notes) == len(SAGEMAKER["images"])


def test_the_neuron_image_is_published_in_fewer_regions_and_the_uri_follows_the_table():
    assert set(image_regions("lmi-neuron")) < set(image_regions("lmi"))
    assert "af-south-1" not in image_regions("lmi-neuron")
    with pytest.raises(ValueError, match="not published in af-south-1"):
        image_uri("lmi-neuron", "af-south-1")
    assert image_uri("lmi", "af-south-1").startswith(
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/djl-inference:"
    )


# --------------------------------------------------------------------------------------------------
# The CloudFormation registry (regions.json is checked, not written)


def test_registries_that_agree_with_regions_json_give_no_difference(stubs):
    registry_answers(stubs, REGION_TABLE)
    result = tables.registry_differences(REGION_TABLE, COMMERCIAL, lambda r: stubs("cloudformation", r))
    assert result.changes == []
    assert result.notes == []


def test_a_region_that_gained_a_type_is_reported(stubs):
    gained = [t for t in REGION_TABLE["missing"]["ap-east-1"] if t != "AWS::Bedrock::Guardrail"]
    assert gained != REGION_TABLE["missing"]["ap-east-1"]
    registry_answers(stubs, REGION_TABLE, ap_east_1=[*gained, "AWS::SQS::Queue"])
    result = tables.registry_differences(REGION_TABLE, COMMERCIAL, lambda r: stubs("cloudformation", r))
    assert result.changes == [
        "ap-east-1 now offers AWS::Bedrock::Guardrail",
        "ap-east-1 no longer offers AWS::SQS::Queue",
    ]


# --------------------------------------------------------------------------------------------------
# Provenance

REFRESHED_SECTIONS = {
    "bedrock_models.json": ("models", "inference_profiles"),
    "ec2_accelerators.json": ("instances",),
    "sagemaker.json": ("images", "training_instances", "inference_instances"),
    "guardrails.json": ("guardrail_profiles",),
}


@pytest.mark.parametrize("name", sorted(REFRESHED_SECTIONS))
def test_every_entry_of_a_refreshed_table_names_its_source_and_date(name):
    table = json.loads((DATA_DIR / name).read_text())
    expected = {f"{section}/{key}" for section in REFRESHED_SECTIONS[name] for key in table[section]}
    assert set(table["provenance"]) == expected
    for key, entry in table["provenance"].items():
        assert set(entry) == {"source", "retrieved"}, key
        assert entry["source"].strip(), key
        dt.date.fromisoformat(entry["retrieved"])


def test_a_confirmed_entry_recorded_from_another_source_is_a_change_and_a_date_alone_is_not():
    table = json.loads(json.dumps(SAGEMAKER))
    keys = list(table["inference_instances"])
    confirmed = {"inference_instances": ("pricing:GetProducts", keys)}
    assert tables.provenance_changes(table, confirmed) == [
        f"inference_instances: {len(keys)} of {len(keys)} now confirmed by pricing:GetProducts"
    ]
    tables.stamp(table, confirmed, "2026-12-02")
    assert tables.provenance_changes(table, confirmed) == []


def test_stamp_records_the_confirming_call_and_the_date_and_the_cost_pages_cite_it():
    table = json.loads(json.dumps(SAGEMAKER))
    tables.stamp(table, {"inference_instances": ("pricing:GetProducts", ["ml.g5.xlarge"])}, "2026-12-02")
    assert table["provenance"]["inference_instances/ml.g5.xlarge"] == {
        "source": "pricing:GetProducts",
        "retrieved": "2026-12-02",
    }
    assert (
        table["provenance"]["inference_instances/ml.g6.xlarge"]
        == SAGEMAKER["provenance"]["inference_instances/ml.g6.xlarge"]
    )
    entry = SAGEMAKER["provenance"]["inference_instances/ml.g5.xlarge"]
    assert provenance("sagemaker.json", "inference_instances", "ml.g5.xlarge") == (
        f"{entry['source']} (read {entry['retrieved']})"
    )
