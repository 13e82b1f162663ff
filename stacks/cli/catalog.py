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

It also refreshes the EC2 model hosts' on-demand prices in stacks/data/ec2_accelerators.json
(pricing:GetProducts, AmazonEC2, us-east-1, Linux, shared tenancy, no pre-installed software).

The other tables (guardrail profiles, regions, SageMaker images and prices) are not refreshed yet.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from genai_stack.catalog import DATA_DIR
from genai_stack.cli.app import EXIT_FOUND, app, console, errors, fail

catalog_app = typer.Typer(help="The data tables of stacks/data, from AWS.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

TABLE = "bedrock_models.json"
PRICES = "ec2_accelerators.json"
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


def ec2_hourly_price(pricing: Any, instance_type: str) -> float | None:
    """The on-demand hourly USD price of `instance_type` (Linux, us-east-1), or None when the Price
    List has none."""
    filters = [
        {"Type": "TERM_MATCH", "Field": field, "Value": value}
        for field, value in {"instanceType": instance_type, **EC2_PRICE_FILTERS}.items()
    ]
    answer = pricing.get_products(ServiceCode="AmazonEC2", Filters=filters, MaxResults=10)
    for raw in answer.get("PriceList", []):
        product = json.loads(raw) if isinstance(raw, str) else raw
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension["pricePerUnit"].get("USD", "0"))
                if usd > 0:
                    return usd
    return None


def refreshed_prices(current: Mapping[str, Any], price_of: Callable[[str], float | None]) -> dict[str, Any]:
    """The EC2 table with each instance's hourly price from the Price List (kept where it has none)."""
    table = json.loads(json.dumps(current))
    for instance_type, entry in table["instances"].items():
        usd = price_of(instance_type)
        if usd is not None:
            entry["hourly_usd_us_east_1"] = round(usd, 4)
    return table


def price_differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [
        f"{instance_type}: {before['instances'][instance_type].get('hourly_usd_us_east_1')} -> "
        f"{entry.get('hourly_usd_us_east_1')} USD an hour"
        for instance_type, entry in sorted(after["instances"].items())
        if entry.get("hourly_usd_us_east_1") != before["instances"][instance_type].get("hourly_usd_us_east_1")
    ]


def commercial_regions() -> list[str]:
    return sorted(json.loads((DATA_DIR / "regions.json").read_text())["missing"])


@catalog_app.command("refresh")
def refresh(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when the committed table differs.")] = False,
    data_dir: Annotated[Path, typer.Option(help="The folder of the tables.")] = DATA_DIR,
) -> None:
    """Regenerate stacks/data/bedrock_models.json (models' on-demand regions, system inference profiles'
    routes) from AWS with your credentials: ListFoundationModels and ListInferenceProfiles in every
    commercial region. Read-only in AWS.

    [b]Example[/]: AWS_PROFILE=sandbox genai-stack catalog refresh --check
    """
    import boto3

    session = boto3.Session()
    path, prices_path = data_dir / TABLE, data_dir / PRICES
    current = json.loads(path.read_text(encoding="utf-8"))
    current_prices = json.loads(prices_path.read_text(encoding="utf-8"))
    with errors.status("Asking every commercial region for its Bedrock models and inference profiles"):
        table, silent = refreshed(
            current, commercial_regions(), lambda r: session.client("bedrock", region_name=r)
        )
    pricing = session.client("pricing", region_name="us-east-1")
    with errors.status("Asking the Price List for the model hosts' instance prices"):
        prices = refreshed_prices(current_prices, lambda instance: ec2_hourly_price(pricing, instance))
    for line in silent:
        console.print(f"[yellow]no answer[/] {line}")
    changes = {TABLE: differences(current, table), PRICES: price_differences(current_prices, prices)}
    for name, found in changes.items():
        for line in found:
            console.print(f"{name}: {line}")
    if check:
        if any(changes.values()):
            raise typer.Exit(EXIT_FOUND)
        console.print("The tables are current.")
        return
    if len(silent) == len(commercial_regions()):
        fail("no region answered: nothing was written (are your credentials valid?)")
    today = dt.date.today().isoformat()
    for name, target, new in ((TABLE, path, table), (PRICES, prices_path, prices)):
        if not changes[name]:
            console.print(f"{name} is current; not rewritten.")
            continue
        new["retrieved"] = today
        target.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"wrote {target}: {len(changes[name])} change(s)")
