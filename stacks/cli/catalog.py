"""`genai-stack catalog refresh [--check]`: the Bedrock table of stacks/data regenerated from AWS, with
the caller's credentials (read-only).

stacks/data/bedrock_models.json holds the models the project knows (their modality and embedding
dimensions, which no API lists, stay as they are) and, for each, the regions that offer it on demand
in-Region; and the system inference profiles with, per source region, the regions a call may be routed
to. The refresh asks every commercial region (stacks/data/regions.json):
- bedrock:ListFoundationModels: a model is in a region's list when its summary there says
  ON_DEMAND among inferenceTypesSupported and its lifecycle is ACTIVE (a LEGACY model is left out, as
  the table's note says);
- bedrock:ListInferenceProfiles (SYSTEM_DEFINED): a profile's routes from that source region are the
  regions of its models' ARNs.
A region that does not answer (not enabled for the account, no Bedrock) keeps what the committed table
says of it, and is reported: an account that has not enabled an opt-in region must not remove it.
`--check` exits 1 when the committed table differs from what AWS says, and prints the difference;
without it the file is rewritten with today's date.

It also refreshes, with per-entry provenance (catalog_tables.py says how):
- the EC2 model hosts' on-demand prices in stacks/data/ec2_accelerators.json (pricing:GetProducts,
  AmazonEC2, us-east-1, Linux, shared tenancy, no pre-installed software);
- SageMaker endpoint and training prices, and the Deep Learning Container images' tags and regions, in
  stacks/data/sagemaker.json (pricing:GetProducts AmazonSageMaker; ecr:DescribeImages);
and checks stacks/data/regions.json against each region's CloudFormation registry (ListTypes).

When a file is rewritten, every entry AWS confirmed gets its "provenance": the call and today's date.
System guardrail profiles (stacks/data/guardrails.json) are not refreshed: Amazon Bedrock has no
operation that lists them (botocore's bedrock model: ListGuardrails lists an account's own
guardrails), so that table stays the documented one, with its page and date per entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from genai_stack.catalog import DATA_DIR
from genai_stack.cli.app import EXIT_FOUND, app, console, errors, fail
from genai_stack.cli.catalog_tables import (
    SAGEMAKER_COMPONENTS,
    Refreshed,
    on_demand_usd,
    price_filters,
    provenance_changes,
    refreshed_images,
    refreshed_prices,
    registry_differences,
    sagemaker_hourly_price,
    sagemaker_source,
    stamp,
)

catalog_app = typer.Typer(help="The data tables of stacks/data, from AWS.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

TABLE = "bedrock_models.json"
PRICES = "ec2_accelerators.json"
SAGEMAKER = "sagemaker.json"
REGIONS = "regions.json"
WRITTEN = (TABLE, PRICES, SAGEMAKER)  # regions.json is checked, not written (catalog_tables.py)
MODELS_SOURCE = "bedrock:ListFoundationModels (ON_DEMAND, ACTIVE) in the commercial regions that answered"
PROFILES_SOURCE = "bedrock:ListInferenceProfiles (SYSTEM_DEFINED) in the commercial regions that answered"
EC2_SOURCE = "pricing:GetProducts AmazonEC2, us-east-1, Linux, shared tenancy, OnDemand"
# The Price List API's attributes of an on-demand Linux instance in us-east-1 (AWS Price List API,
# "Filtering products"; the attribute values as GetAttributeValues lists them for AmazonEC2).
EC2_PRICE_FILTERS = {
    "location": "US East (N. Virginia)",
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def offered(bedrock: Any) -> set[str]:
    """The models one region offers on demand in-Region, ACTIVE only."""
    summaries = bedrock.list_foundation_models(byInferenceType="ON_DEMAND").get("modelSummaries", [])
    return {
        s["modelId"]
        for s in summaries
        if "ON_DEMAND" in s.get("inferenceTypesSupported", [])
        and s.get("modelLifecycle", {}).get("status", "ACTIVE") == "ACTIVE"
    }


def system_profiles(bedrock: Any) -> dict[str, list[str]]:
    """The system inference profiles one source region offers: id -> the regions it routes to."""
    found: dict[str, list[str]] = {}
    token = None
    while True:
        page = bedrock.list_inference_profiles(
            typeEquals="SYSTEM_DEFINED", **({"nextToken": token} if token else {})
        )
        for profile in page.get("inferenceProfileSummaries", []):
            found[profile["inferenceProfileId"]] = sorted(
                {region_of(m["modelArn"]) for m in profile["models"]}
            )
        token = page.get("nextToken")
        if not token:
            return found


def refreshed(
    current: Mapping[str, Any], regions: Iterable[str], bedrock_in: Callable[[str], Any]
) -> tuple[dict[str, Any], list[str]]:
    """The table with regions and routes as AWS answers them (a region that did not answer keeps its
    committed entries); and the regions that did not answer."""
    models_by_region: dict[str, set[str]] = {}
    profiles_by_region: dict[str, dict[str, list[str]]] = {}
    silent = []
    for region in regions:
        try:
            client = bedrock_in(region)
            models_by_region[region] = offered(client)
            profiles_by_region[region] = system_profiles(client)
        except (ClientError, BotoCoreError) as error:
            silent.append(f"{region}: {error}")
    table = json.loads(json.dumps(current))  # a copy
    unanswered = {line.split(":", 1)[0] for line in silent}
    for model_id, entry in table["models"].items():
        kept = [r for r in entry["regions"] if r in unanswered]
        entry["regions"] = sorted({*kept, *(r for r, ids in models_by_region.items() if model_id in ids)})
    for profile_id, entry in table["inference_profiles"].items():
        # A global profile may route to any commercial region: the table lists its source regions
        # with no destinations (stacks/catalog.py SystemInferenceProfile.is_global).
        kept_routes = {source: targets for source, targets in entry["routes"].items() if source in unanswered}
        entry["routes"] = dict(
            sorted(
                {
                    **kept_routes,
                    **{
                        source: [] if entry.get("global") else found[profile_id]
                        for source, found in profiles_by_region.items()
                        if profile_id in found
                    },
                }.items()
            )
        )
    return table, silent


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What changed in the models' regions and the profiles' routes, a line each."""
    lines = []
    for model_id in sorted(after["models"]):
        old, new = set(before["models"][model_id]["regions"]), set(after["models"][model_id]["regions"])
        lines += [f"{model_id}: now in {r}" for r in sorted(new - old)]
        lines += [f"{model_id}: no longer in {r}" for r in sorted(old - new)]
    for profile_id in sorted(after["inference_profiles"]):
        old_routes = before["inference_profiles"][profile_id]["routes"]
        new_routes = after["inference_profiles"][profile_id]["routes"]
        for source in sorted(set(old_routes) | set(new_routes)):
            was, now = sorted(old_routes.get(source, [])), new_routes.get(source, [])
            if was != now:
                lines.append(f"{profile_id} from {source}: {was} -> {now}")
    return lines


def ec2_hourly_price(pricing: Any, instance_type: str) -> set[float]:
    """The on-demand hourly USD prices of `instance_type` (Linux, us-east-1) in the Price List."""
    answer = pricing.get_products(
        ServiceCode="AmazonEC2",
        Filters=price_filters({"instanceType": instance_type, **EC2_PRICE_FILTERS}),
        MaxResults=10,
    )
    return on_demand_usd(answer)


def bedrock_refreshed(
    current: Mapping[str, Any], regions: Iterable[str], bedrock_in: Callable[[str], Any]
) -> Refreshed:
    """`refreshed` as a Refreshed: every entry is confirmed when every region answered."""
    regions = list(regions)
    table, silent = refreshed(current, regions, bedrock_in)
    result = Refreshed(table, differences(current, table), notes=[f"no answer: {line}" for line in silent])
    if len(silent) < len(regions):  # the regions that answered confirm every entry (the rest keep theirs)
        result.confirmed = {
            "models": (MODELS_SOURCE, list(table["models"])),
            "inference_profiles": (PROFILES_SOURCE, list(table["inference_profiles"])),
        }
    return result


def commercial_regions() -> list[str]:
    return sorted(json.loads((DATA_DIR / "regions.json").read_text())["missing"])


@catalog_app.command("refresh")
def refresh(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a committed table differs.")] = False,
    data_dir: Annotated[Path, typer.Option(help="The folder of the tables.")] = DATA_DIR,
) -> None:
    """Regenerate the data tables of stacks/data from AWS with your credentials (read-only calls):
    Bedrock models and inference profiles (every commercial region), EC2 and SageMaker on-demand
    prices (Price List API), the Deep Learning Container images' tags and regions (Amazon ECR); and
    check regions.json against each region's CloudFormation registry.

    [b]Example[/]: AWS_PROFILE=sandbox genai-stack catalog refresh --check
    """
    import boto3

    session = boto3.Session()
    client = cache(lambda service, region: session.client(service, region_name=region))  # one per region
    regions = commercial_regions()
    current = {
        name: json.loads((data_dir / name).read_text(encoding="utf-8")) for name in (*WRITTEN, REGIONS)
    }
    pricing = client("pricing", "us-east-1")
    with errors.status("Asking every commercial region for its Bedrock models and inference profiles"):
        results = {TABLE: bedrock_refreshed(current[TABLE], regions, lambda r: client("bedrock", r))}
    with errors.status("Asking the Price List for EC2 and SageMaker prices"):
        results[PRICES] = refreshed_prices(
            current[PRICES], {"instances": (EC2_SOURCE, lambda t: ec2_hourly_price(pricing, t))}
        )
        sagemaker = refreshed_prices(
            current[SAGEMAKER],
            {
                section: (
                    sagemaker_source(component),
                    lambda t, c=component: sagemaker_hourly_price(pricing, t, c),
                )
                for section, component in SAGEMAKER_COMPONENTS.items()
            },
        )
    with errors.status("Asking each region's Deep Learning Container registry for the pinned images"):
        results[SAGEMAKER] = refreshed_images(sagemaker, lambda r: client("ecr", r))
    with errors.status("Asking each region's CloudFormation registry for the stacks' resource types"):
        results[REGIONS] = registry_differences(
            current[REGIONS], regions, lambda r: client("cloudformation", r)
        )
    for name in WRITTEN:
        results[name].changes += provenance_changes(current[name], results[name].confirmed)
    for name, result in results.items():
        for line in result.notes:
            console.print(f"[yellow]{name}[/] {line}")
        for line in result.changes:
            console.print(f"{name}: {line}")
    if results[REGIONS].changes:
        console.print(
            f"{REGIONS} is cfn-lint's copy of the registry and is not rewritten here: raise cfn-lint in "
            "requirements.lock once its schemas agree, then `make data-regions`."
        )
    unconfirmed = [name for name in WRITTEN if not any(keys for _, keys in results[name].confirmed.values())]
    if len(unconfirmed) == len(WRITTEN):
        fail("AWS confirmed nothing: no table was checked or written (are your credentials valid?)")
    for name in unconfirmed:
        console.print(f"[yellow]{name}[/] AWS confirmed none of its entries")
    if check:
        if any(result.changes for result in results.values()) or unconfirmed:
            raise typer.Exit(EXIT_FOUND)
        console.print("The tables are current.")
        return
    today = dt.date.today().isoformat()
    for name in WRITTEN:
        result = results[name]
        if not result.changes:
            console.print(f"{name} is current; not rewritten.")
            continue
        stamp(result.table, result.confirmed, today)
        result.table["retrieved"] = today
        (data_dir / name).write_text(
            json.dumps(result.table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        console.print(f"wrote {data_dir / name}: {len(result.changes)} change(s)")
