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
A region that does not answer (not enabled for the account, no Bedrock) contributes nothing and is
reported. `--check` exits 1 when the committed table differs from what AWS says, and prints the
difference; without it the file is rewritten with today's date.

The other tables (guardrail profiles, SageMaker images, prices) are not refreshed yet.
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
    """The table with regions and routes as AWS answers them; and the regions that did not answer."""
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
    for model_id, entry in table["models"].items():
        entry["regions"] = sorted(r for r, ids in models_by_region.items() if model_id in ids)
    for profile_id, entry in table["inference_profiles"].items():
        # A global profile may route to any commercial region: the table lists its source regions
        # with no destinations (stacks/catalog.py SystemInferenceProfile.is_global).
        entry["routes"] = {
            source: [] if entry.get("global") else found[profile_id]
            for source, found in sorted(profiles_by_region.items())
            if profile_id in found
        }
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

    path = data_dir / TABLE
    current = json.loads(path.read_text(encoding="utf-8"))
    session = boto3.Session()
    with errors.status("Asking every commercial region for its Bedrock models and inference profiles"):
        table, silent = refreshed(
            current, commercial_regions(), lambda r: session.client("bedrock", region_name=r)
        )
    for line in silent:
        console.print(f"[yellow]no answer[/] {line}")
    changed = differences(current, table)
    for line in changed:
        console.print(line)
    if check:
        if changed:
            raise typer.Exit(EXIT_FOUND)
        console.print(f"{TABLE} is current.")
        return
    if not changed:
        console.print(f"{TABLE} is current; not rewritten.")
        return
    if len(silent) == len(commercial_regions()):
        fail("no region answered: nothing was written (are your credentials valid?)")
    table["retrieved"] = dt.date.today().isoformat()
    path.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"wrote {path}: {len(changed)} change(s)")
