"""The parts of `genai-stack catalog refresh` beyond the Bedrock table: SageMaker prices and images,
the CloudFormation registry check of data/regions.json, and the per-entry provenance the refresh
stamps. Pure functions over injected clients (the command in catalog.py makes them).

- SageMaker on-demand prices: pricing:GetProducts, service code AmazonSageMaker, us-east-1, product
  family "ML Instance", `component` Hosting (real-time endpoints) or Training, `instanceName`
  ml.<type>. The attribute names are those of the AmazonSageMaker offer file
  (https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/current/index.json);
  an answer with no price, or with more than one distinct price, keeps the committed figure and is
  reported.
- Deep Learning Container images: ecr:DescribeImages on the pinned tag in each region's DLC registry
  (data/sagemaker.json registry_accounts). An image's "regions" are the registries that hold its tag;
  an image with a "track" pattern moves to the newest tag (by imagePushedAt, in us-east-1) that
  matches it: patch releases of the same line, never a new line, which a person picks.
- data/regions.json: cloudformation:ListTypes (PUBLIC, AWS_TYPES, RESOURCE) per region. The table is
  cfn-lint's registry copy (tests/stacks/test_regions.py pins it to the cfn-lint of
  requirements.lock), so the refresh reports where AWS now differs and does not write it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

PROVENANCE = "provenance"
SAGEMAKER_PRICE_FILTERS = {"regionCode": "us-east-1", "productFamily": "ML Instance"}
SAGEMAKER_COMPONENTS = {"inference_instances": "Hosting", "training_instances": "Training"}
PRICE_KEY = "hourly_usd_us_east_1"
# The usage type's operation part of SageMaker's instance products (USE1-Host:ml.g5.xlarge).
USAGE_PREFIX = {"Hosting": "Host", "Training": "Train"}
# What ecr:DescribeImages answers when a registry does not hold the tag (or the repository):
# ImageNotFoundException, RepositoryNotFoundException (Amazon ECR API reference, DescribeImages).
NOT_THERE = {"ImageNotFoundException", "RepositoryNotFoundException"}
TRACK_REGION = "us-east-1"
IMAGES_SOURCE = "ecr:DescribeImages of the tag in the Deep Learning Container registries that answered"
# ListTypes answers FULLY_MUTABLE types unless asked for the others ("The default is FULLY_MUTABLE":
# the ProvisioningType parameter of CloudFormation's ListTypes); types without an update handler
# (AWS::Lambda::Permission, AWS::Bedrock::GuardrailVersion, ...) are IMMUTABLE.
PROVISIONING_TYPES = ("FULLY_MUTABLE", "IMMUTABLE", "NON_PROVISIONABLE")


@dataclass
class Refreshed:
    """One data file as AWS answered: the new table, a line per change (what --check reports and a
    rewrite writes), the entries AWS confirmed (section -> source, keys: stamped when the file is
    written), and notes (no answer, no price) that change nothing."""

    table: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    confirmed: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def copy(table: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(table))


def stamp(table: dict[str, Any], confirmed: Mapping[str, tuple[str, Iterable[str]]], today: str) -> None:
    """Record, for each confirmed entry, the call that confirmed it and today's date."""
    record = table.setdefault(PROVENANCE, {})
    for section, (source, keys) in confirmed.items():
        for key in keys:
            record[f"{section}/{key}"] = {"source": source, "retrieved": today}


def provenance_changes(
    table: Mapping[str, Any], confirmed: Mapping[str, tuple[str, Iterable[str]]]
) -> list[str]:
    """A line per section whose confirmed entries record another source (a page, an older call): the
    table then changes, if only in where its figures come from. A date alone is no change, or every
    weekly refresh would open a pull request."""
    recorded = table.get(PROVENANCE, {})
    lines = []
    for section, (source, keys) in confirmed.items():
        moved = [k for k in keys if recorded.get(f"{section}/{k}", {}).get("source") != source]
        if moved:
            lines.append(f"{section}: {len(moved)} of {len(table[section])} now confirmed by {source}")
    return lines


# --------------------------------------------------------------------------------------------------
# Prices (the Price List API)


def on_demand_prices(answer: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(usagetype, hourly USD) of each positive OnDemand price in GetProducts' answer."""
    found = []
    for raw in answer.get("PriceList", []):
        product = json.loads(raw) if isinstance(raw, str) else raw
        usage = product.get("product", {}).get("attributes", {}).get("usagetype", "")
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension["pricePerUnit"].get("USD", "0"))
                if usd > 0:  # EC2 lists Capacity Block products with a 0 on-demand price
                    found.append((usage, usd))
    return found


def on_demand_usd(answer: Mapping[str, Any]) -> set[float]:
    """The distinct positive hourly USD prices of GetProducts' OnDemand terms."""
    return {usd for _, usd in on_demand_prices(answer)}


def price_filters(attributes: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in attributes.items()]


def sagemaker_source(component: str) -> str:
    return f"pricing:GetProducts AmazonSageMaker, us-east-1, ML Instance, component {component}"


def sagemaker_hourly_price(pricing: Any, instance_type: str, component: str) -> set[float]:
    """The hourly prices of a SageMaker instance for a component; when several products answer, those
    whose usagetype is the component's own ("<region code>-Host:ml.x" for Hosting, "-Train:ml.x" for
    Training) decide."""
    answer = pricing.get_products(
        ServiceCode="AmazonSageMaker",
        Filters=price_filters(
            {"instanceName": instance_type, "component": component, **SAGEMAKER_PRICE_FILTERS}
        ),
        MaxResults=10,
    )
    prices = on_demand_prices(answer)
    if len({usd for _, usd in prices}) > 1:
        suffix = f"-{USAGE_PREFIX[component]}:{instance_type}"
        own = {usd for usage, usd in prices if usage.endswith(suffix)}
        return own or {usd for _, usd in prices}
    return {usd for _, usd in prices}


def refreshed_prices(
    current: Mapping[str, Any],
    sections: Mapping[str, tuple[str, Callable[[str], set[float]]]],
) -> Refreshed:
    """Each instance's hourly price where the Price List gives exactly one; kept otherwise.
    `sections`: table section -> (the call's description, instance type -> prices)."""
    result = Refreshed(copy(current))
    for section, (source, prices_of) in sections.items():
        confirmed = []
        for instance_type, entry in result.table[section].items():
            try:
                prices = prices_of(instance_type)
            except (ClientError, BotoCoreError) as error:
                result.notes.append(f"{section}/{instance_type}: no answer ({error})")
                continue
            if len(prices) != 1:
                what = "no price" if not prices else f"{len(prices)} prices {sorted(prices)}"
                result.notes.append(f"{section}/{instance_type}: {what} in the Price List; kept")
                continue
            usd = round(prices.pop(), 4)
            if entry.get(PRICE_KEY) != usd:
                result.changes.append(
                    f"{section}/{instance_type}: {entry.get(PRICE_KEY)} -> {usd} USD an hour"
                )
                entry[PRICE_KEY] = usd
            confirmed.append(instance_type)
        result.confirmed[section] = (source, confirmed)
    return result


# --------------------------------------------------------------------------------------------------
# Deep Learning Container images (Amazon ECR)


def tag_in(ecr: Any, registry: str, repository: str, tag: str) -> bool:
    """Whether the registry holds repository:tag (ClientError other than "not there" propagates)."""
    try:
        ecr.describe_images(registryId=registry, repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as error:
        if error.response["Error"]["Code"] in NOT_THERE:
            return False
        raise
    return True


def tag_version(tag: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A Deep Learning Container tag's order: the release (its first field, "2.10.0" or "0.36.0"),
    then the rebuild ("-v1.5" at the end names an immutable rebuild; the moving tag has none, so any
    rebuild of the same release sorts after it)."""
    release = tuple(int(n) for n in re.findall(r"\d+", tag.split("-", 1)[0]))
    rebuild = re.search(r"-v(\d+(?:\.\d+)*)$", tag)
    return release, tuple(int(n) for n in rebuild.group(1).split(".")) if rebuild else ()


def newest_tag(ecr: Any, registry: str, repository: str, pattern: str) -> tuple[str, str] | None:
    """The highest tag of the repository (by tag_version, not push time: a rebuild of an older
    release can be pushed later) that matches `pattern`, and its push date."""
    best: tuple[tuple[tuple[int, ...], tuple[int, ...]], str, str] | None = None
    for page in ecr.get_paginator("describe_images").paginate(
        registryId=registry, repositoryName=repository, filter={"tagStatus": "TAGGED"}
    ):
        for image in page.get("imageDetails", []):
            for tag in image.get("imageTags", []):
                candidate = (tag_version(tag), tag, image["imagePushedAt"].date().isoformat())
                if re.fullmatch(pattern, tag) and (best is None or candidate[:2] > best[:2]):
                    best = candidate
    return None if best is None else (best[1], best[2])


def refreshed_images(current: Refreshed, ecr_in: Callable[[str], Any]) -> Refreshed:
    """`current` (sagemaker.json as refreshed so far) with the images' tags and the regions whose
    registry holds them (registry_accounts says which registries exist). A tracked image moves to its
    line's highest tag only when every region that holds the pinned tag (and answered) holds the new
    one too: AWS publishes a rebuild region by region, and a move must not take a region away."""
    result = Refreshed(
        copy(current.table), list(current.changes), dict(current.confirmed), list(current.notes)
    )
    accounts = result.table["registry_accounts"]
    regions = sorted(set(accounts["default_regions"]) | set(accounts["by_region"]))

    def account_of(region: str) -> str:
        return accounts["by_region"].get(region, accounts["default"])

    def holding(name: str, repository: str, tag: str) -> tuple[set[str], set[str]]:
        """The regions whose registry holds repository:tag, and those that did not answer."""
        found, silent = set(), set()
        for region in regions:
            try:
                if tag_in(ecr_in(region), account_of(region), repository, tag):
                    found.add(region)
            except (ClientError, BotoCoreError) as error:
                silent.add(region)
                result.notes.append(f"images/{name}: no answer in {region} for {tag} ({error})")
        return found, silent

    confirmed = []
    for name, image in result.table["images"].items():
        repository, pinned, before = image["repository"], image["tag"], set(image["regions"])
        newest = None
        if image.get("track"):
            try:
                newest = newest_tag(
                    ecr_in(TRACK_REGION), account_of(TRACK_REGION), repository, image["track"]
                )
            except (ClientError, BotoCoreError) as error:
                result.notes.append(
                    f"images/{name}: no answer listing {repository} in {TRACK_REGION} ({error})"
                )
        if newest and tag_version(newest[0]) > tag_version(pinned):
            found, silent = holding(name, repository, newest[0])
            lacking = sorted(before - found - silent)
            if lacking:
                result.notes.append(
                    f"images/{name}: {newest[0]} is not yet in {', '.join(lacking)}; {pinned} kept"
                )
            else:
                result.changes.append(f"images/{name}: {pinned} -> {newest[0]} (pushed {newest[1]})")
                image["tag"], image["released"] = newest
        if image["tag"] == pinned:
            found, silent = holding(name, repository, pinned)
        # A region that did not answer keeps what the table said of it (of the pinned tag: a move
        # needs every region that holds the pinned tag to hold the new one, silent ones included).
        now = sorted(found | (before & silent))
        result.changes += [f"images/{name}: now in {r}" for r in sorted(set(now) - before)]
        result.changes += [f"images/{name}: no longer in {r}" for r in sorted(before - set(now))]
        image["regions"] = now
        if found:
            confirmed.append(name)
    result.confirmed["images"] = (IMAGES_SOURCE, confirmed)
    return result


# --------------------------------------------------------------------------------------------------
# The CloudFormation registry (data/regions.json)


def offered_types(cloudformation: Any) -> set[str]:
    """The AWS resource types a region's registry offers, of every provisioning type."""
    names = set()
    for provisioning in PROVISIONING_TYPES:
        for page in cloudformation.get_paginator("list_types").paginate(
            Visibility="PUBLIC",
            Type="RESOURCE",
            ProvisioningType=provisioning,
            Filters={"Category": "AWS_TYPES"},
        ):
            names |= {summary["TypeName"] for summary in page.get("TypeSummaries", [])}
    return names


def registry_differences(
    current: Mapping[str, Any], regions: Iterable[str], cloudformation_in: Callable[[str], Any]
) -> Refreshed:
    """Where a region's registry now differs from the committed table (reported, never written)."""
    result = Refreshed(copy(current))
    every = set().union(*current["types"].values())
    for region in regions:
        try:
            missing = every - offered_types(cloudformation_in(region))
        except (ClientError, BotoCoreError) as error:
            result.notes.append(f"{region}: no answer ({error})")
            continue
        was = set(current["missing"].get(region, []))
        result.changes += [f"{region} now offers {t}" for t in sorted(was - missing)]
        result.changes += [f"{region} no longer offers {t}" for t in sorted(missing - was)]
    return result
