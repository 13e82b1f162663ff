"""`genai-stack plan` and `genai-stack cost`: what a profile deploys and what it costs a month."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from genai_stack.catalog import cost_region
from genai_stack.cli.app import app, console, errors, fail, load_or_fail, print_json
from genai_stack.config import ProfileError
from genai_stack.planning.cost import (
    PRICE_REGION,
    SEMANTIC_ANSWER_TOKENS,
    Estimate,
    Line,
    Usage,
    estimate,
    semantic_cache_costs,
)

if TYPE_CHECKING:
    from genai_stack.cli.synth import Synthesis

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ProfileArgument = Annotated[
    str, typer.Argument(metavar="PROFILE", help="A built-in profile name or a profile file.")
]


def synthesize_one(profile: str) -> Synthesis:
    from genai_stack.cli.synth import synthesize  # aws-cdk-lib: only for the commands that synthesize

    if profile == "all":
        fail("name one profile (a built-in name or a file), not 'all'")
    try:
        with tempfile.TemporaryDirectory() as outdir, errors.status(f"Synthesizing {profile}"):
            (result,) = synthesize(profile, Path(outdir))
    except ProfileError as error:
        fail(f"profile error\n{error}", code=2)
    return result


def _statement_actions(statement: dict) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def _allowed(statement: dict) -> list[str]:
    return _statement_actions(statement) if statement.get("Effect") == "Allow" else []


def _own_managed_policy(templates: dict[str, dict], stack: str, arn: Any) -> dict | None:
    """The properties of the profile's own AWS::IAM::ManagedPolicy that `arn` refers to (a Ref in the
    same stack, or another stack's output through Fn::GetStackOutput), else None."""
    if not isinstance(arn, dict):
        return None
    if "Ref" in arn:
        target_stack, logical_id = stack, arn["Ref"]
    elif "Fn::GetStackOutput" in arn:
        reference = arn["Fn::GetStackOutput"]
        target_stack = reference.get("StackName")
        output = templates.get(target_stack, {}).get("Outputs", {}).get(reference.get("OutputName"), {})
        logical_id = output.get("Value", {}).get("Ref") if isinstance(output.get("Value"), dict) else None
    else:
        return None
    resource = templates.get(target_stack, {}).get("Resources", {}).get(logical_id or "")
    if resource is None or resource["Type"] != "AWS::IAM::ManagedPolicy":
        return None
    return resource["Properties"]


def role_permissions(templates: dict[str, dict]) -> dict[str, list[str]]:
    """stack/role logical ID -> the actions its inline and attached policies allow (sorted, unique)."""
    roles: dict[str, set[str]] = {}
    for stack, template in templates.items():
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                actions = roles.setdefault(f"{stack}/{logical_id}", set())
                for policy in resource["Properties"].get("Policies", []):
                    for statement in policy["PolicyDocument"]["Statement"]:
                        actions.update(_statement_actions(statement))
                for arn in resource["Properties"].get("ManagedPolicyArns", []):
                    own = _own_managed_policy(templates, stack, arn)
                    if own is not None:  # one of the profile's: what it allows
                        actions.update(a for s in own["PolicyDocument"]["Statement"] for a in _allowed(s))
                    else:  # an AWS managed policy: its name
                        name = arn if isinstance(arn, str) else str(arn).split("policy/")[-1].split("'")[0]
                        actions.add(f"managed policy {name.rstrip(']}')}")
        for resource in resources.values():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            for role in resource["Properties"].get("Roles", []):
                if isinstance(role, dict) and "Ref" in role:
                    key = f"{stack}/{role['Ref']}"
                    if key in roles:
                        for statement in statements:
                            roles[key].update(_statement_actions(statement))
    return {role: sorted(actions) for role, actions in sorted(roles.items())}


def spend_visibility(result: Synthesis) -> dict:
    from genai_stack.components.application_inference_profile import gateway_routes
    from genai_stack.components.cost_controls import ESTIMATED_COST_METRIC

    """Each budget and cost alarm of the synthesized templates, what spend it can see, and which
    application inference profile each gateway target's Bedrock calls go through (docs/cost.md)."""
    profile = result.profile
    tag = f"{profile.cost_allocation.tag_key}={profile.cost_allocation.tag_value}"
    budgets, alarms = [], []
    for stack, template in sorted(result.templates.items()):
        for logical_id, resource in sorted(template.get("Resources", {}).items()):
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Budgets::Budget":
                data = props["Budget"]
                filters = data.get("CostFilters", {})
                if "TagKeyValue" in filters:
                    sees = (
                        f"spend tagged {tag}: Bedrock calls through this profile's application "
                        "inference profiles, and every tagged resource (instances, endpoints, "
                        "storage, functions)"
                    )
                elif "Service" in filters:
                    sees = (
                        f"all {', '.join(filters['Service'])} spend of the account, every profile: also "
                        "what tags cannot reach (knowledge-base embeddings and ingestion, calls not "
                        "made through an application inference profile); not third-party models sold "
                        "through AWS Marketplace (e.g. Claude), billed under their own service names"
                    )
                else:
                    sees = "all spend of the account"
                budgets.append(
                    {
                        "budget": f"{stack}/{logical_id}",
                        "monthly_limit_usd": data["BudgetLimit"]["Amount"],
                        "filters": filters,
                        "sees": sees,
                    }
                )
            elif resource["Type"] == "AWS::CloudWatch::Alarm" and ESTIMATED_COST_METRIC in str(
                props.get("Metrics", [])
            ):
                periods = [q.get("Period") or q.get("MetricStat", {}).get("Period") for q in props["Metrics"]]
                alarms.append(
                    {
                        "alarm": f"{stack}/{logical_id}",
                        "threshold_usd": props["Threshold"],
                        "window_hours": max(p for p in periods if p) / 3600,
                        "sees": "the gateway's own estimate (tokens x list prices) of every alias, target "
                        "and tenant; not knowledge-base embeddings, not calls outside the gateway",
                    }
                )
    routes = [
        {
            "alias": route.alias,
            "kind": route.kind,
            "model": route.model,
            "application_inference_profile": route.name,
            "campaign": route.campaign is not None,
        }
        for route in gateway_routes(profile.name, profile.gateway, profile.bedrock)
    ]
    return {"tag": tag, "budgets": budgets, "alarms": alarms, "gateway_targets": routes}


def host_hops(templates: dict[str, dict]) -> list[dict]:
    """Each listener between the gateway and a model host, as the templates deploy it: HTTPS, or plain
    HTTP with the profile's reason (hosting.tls.allow_plaintext, on the listener's metadata)."""
    from genai_stack.components.model_host_fleet import PLAINTEXT_REASON

    hops = []
    for stack, template in sorted(templates.items()):
        for logical_id, resource in sorted(template.get("Resources", {}).items()):
            if resource["Type"] != "AWS::ElasticLoadBalancingV2::Listener":
                continue
            props = resource["Properties"]
            hop = {"listener": f"{stack}/{logical_id}", "protocol": props["Protocol"], "port": props["Port"]}
            if props["Protocol"] != "HTTPS":
                hop["plaintext_reason"] = resource.get("Metadata", {}).get(PLAINTEXT_REASON)
            else:
                hop["ssl_policy"] = props["SslPolicy"]
            hops.append(hop)
    return hops


def plan_document(result: Synthesis) -> dict:
    from genai_stack.compliance import STATEFUL_RESOURCE_TYPES

    stacks = {}
    for stack, template in sorted(result.templates.items()):
        resources = template.get("Resources", {})
        stacks[stack] = {
            # Every stack is in the profile's region but the budgets' stack where the region lacks them.
            "region": cost_region(result.profile.region)
            if stack == f"{result.profile.name}-cost"
            else result.profile.region,
            "resources": dict(sorted(Counter(r["Type"] for r in resources.values()).items())),
            "stateful": sorted(
                f"{logical_id} ({r['Type']})"
                for logical_id, r in resources.items()
                if r["Type"] in STATEFUL_RESOURCE_TYPES
            ),
        }
    return {
        "profile": result.profile.name,
        "region": result.profile.region,
        "stacks": stacks,
        "roles": role_permissions(result.templates),
        "host_hops": host_hops(result.templates),
        "cost": estimate(result.profile, result.templates).as_dict(),
        "spend": spend_visibility(result),
    }


@app.command()
def plan(
    profile: ProfileArgument,
    json_output: JsonOption = False,
) -> None:
    """What a profile deploys: stacks, resources by type, stateful resources, IAM roles, the listeners
    between the gateway and the model hosts (HTTPS, or plain HTTP with the profile's reason), fixed cost.

    [b]Examples[/]: genai-stack plan managed-api ; genai-stack plan my-team.yaml --json
    """
    document = plan_document(synthesize_one(profile))
    if json_output:
        print_json(document)
        return
    console.rule(f"[bold]{document['profile']}[/] ({document['region']})")
    for stack, details in document["stacks"].items():
        elsewhere = f" (in {details['region']})" if details["region"] != document["region"] else ""
        table = Table(title=stack + elsewhere, title_justify="left")
        table.add_column("Resource type")
        table.add_column("Count", justify="right")
        for resource_type, count in details["resources"].items():
            table.add_row(resource_type, str(count))
        console.print(table)
        if details["stateful"]:
            console.print(
                "[bold]Stateful (retained, logical IDs pinned):[/] " + ", ".join(details["stateful"])
            )
    roles = Table(title="IAM roles and what they may do", title_justify="left")
    roles.add_column("Role")
    roles.add_column("Actions")
    for role, actions in document["roles"].items():
        roles.add_row(role, ", ".join(actions))
    console.print(roles)
    for hop in document["host_hops"]:
        if hop["protocol"] == "HTTPS":
            console.print(f"Gateway to model host: HTTPS ({hop['ssl_policy']}) at {hop['listener']}")
        else:
            console.print(
                f"[bold red]Gateway to model host: plain {hop['protocol']}[/] at {hop['listener']}, "
                f"because: {hop['plaintext_reason']}"
            )
    print_spend(document["spend"])
    print_estimate(estimate_from(document))


def print_spend(spend: dict) -> None:
    budgets = Table(title="Budgets and cost alarms: what spend each can see", title_justify="left")
    for column in ("Budget or alarm", "Limit (USD)", "Sees"):
        budgets.add_column(column, justify="right" if column.startswith("Limit") else "left")
    for budget in spend["budgets"]:
        budgets.add_row(budget["budget"], f"{budget['monthly_limit_usd']:g}/month", budget["sees"])
    for alarm in spend["alarms"]:
        budgets.add_row(
            alarm["alarm"], f"{alarm['threshold_usd']:g}/{alarm['window_hours']:g} h", alarm["sees"]
        )
    console.print(budgets)
    if spend["gateway_targets"]:
        targets = Table(
            title="Gateway Bedrock targets: the application inference profile each goes through "
            f"(tag {spend['tag']})",
            title_justify="left",
        )
        for column in ("Alias", "Kind", "Model", "Application inference profile"):
            targets.add_column(column)
        for route in spend["gateway_targets"]:
            name = route["application_inference_profile"] + (" (campaign)" if route["campaign"] else "")
            targets.add_row(route["alias"], route["kind"], route["model"], name)
        console.print(targets)


def estimate_from(document: dict) -> Estimate:
    cost = document["cost"]

    return Estimate(
        profile=cost["profile"],
        region=cost.get("region", PRICE_REGION),
        fixed=[Line(**line) for line in cost["fixed"]],
        usage=[Line(**line) for line in cost["usage"]],
        unpriced=cost["unpriced"],
    )


def print_estimate(result: Estimate) -> None:
    where = f"{result.region}, at {PRICE_REGION} prices" if result.price_note else f"{PRICE_REGION} prices"
    table = Table(title=f"Monthly cost estimate: {result.profile} ({where})", title_justify="left")
    for column in ("Part", "Item", "Quantity", "Unit price (USD)", "Unit", "USD/month"):
        table.add_column(
            column, justify="right" if column in ("Quantity", "Unit price (USD)", "USD/month") else "left"
        )
    for part, lines in (("fixed", result.fixed), ("usage", result.usage)):
        for line in lines:
            table.add_row(part, line.item, f"{line.quantity:,.6g}", f"{line.unit_price:g}", line.unit,
                          f"{line.monthly_usd:,.2f}")  # fmt: skip
    table.add_section()
    table.add_row("fixed", "", "", "", "", f"{result.fixed_usd:,.2f}")
    table.add_row("usage", "", "", "", "", f"{result.usage_usd:,.2f}")
    table.add_row("[bold]total[/]", "", "", "", "", f"[bold]{result.total_usd:,.2f}[/]")
    console.print(table)
    if result.price_note:
        console.print(f"[yellow]prices:[/] {result.price_note}", highlight=False)
    for note in result.unpriced:
        console.print(f"[yellow]not priced:[/] {note}", highlight=False)
    console.print("Sources of every unit price: `--json` (field source) and stacks/data/*.json.")


@app.command()
def cost(
    profile: ProfileArgument,
    requests: Annotated[int, typer.Option(min=0, help="Requests a month.")] = 0,
    input_tokens: Annotated[int, typer.Option(min=0, help="Input tokens per request.")] = 0,
    output_tokens: Annotated[int, typer.Option(min=0, help="Output tokens per request.")] = 0,
    images: Annotated[int, typer.Option(min=0, help="Images generated a month.")] = 0,
    hours_active: Annotated[
        float, typer.Option(min=0, max=730, help="Hours a month the model hosts run (max 730).")
    ] = 730,
    by: Annotated[
        str | None,
        typer.Option(
            metavar="TAG",
            help="Instead of the estimate: a month's spend from Cost Explorer (your AWS credentials), "
            "split by this tag of the profile's application inference profiles: campaign, alias, ...",
        ),
    ] = None,
    month: Annotated[
        str | None, typer.Option(metavar="YYYY-MM", help="With --by: the month (default: the last full one).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """A profile's monthly cost: fixed parts and usage, each line with the unit price it used.

    Fixed: instances, load balancers, VPC endpoints, NAT gateways, keys, dashboards, alarms (counted
    on the synthesized templates). Usage: tokens of the profile's primary Bedrock model.
    With --by TAG: what the profile did cost in a month, per value of the tag (Cost Explorer).

    [b]Example[/]: genai-stack cost managed-api --requests 1000000 --input-tokens 500 --output-tokens 200
    [b]Example[/]: genai-stack cost marketing-copy-apac --by campaign --month 2026-11
    """
    if by is not None:
        _spend(profile, by, month, json_output)
        return
    if month is not None:
        fail("--month goes with --by (the estimate is of a month of the usage you give)")
    result = synthesize_one(profile)
    usage = Usage(requests, input_tokens, output_tokens, images, hours_active)
    report = estimate(result.profile, result.templates, usage)
    # The semantic cache's arithmetic at the request's tokens (else docs/gateway.md's 500 in, 300 out).
    tokens = (input_tokens or SEMANTIC_ANSWER_TOKENS[0], output_tokens or SEMANTIC_ANSWER_TOKENS[1])
    semantic = semantic_cache_costs(result.profile, input_tokens=tokens[0], output_tokens=tokens[1])
    if json_output:
        document = report.as_dict()
        if semantic:
            document["semantic_cache"] = [
                {
                    "alias": c.alias,
                    "model": c.model,
                    "per_1000_lookups_usd": round(1000 * c.lookup_usd, 6),
                    "per_1000_misses_usd": round(1000 * c.write_usd, 6),
                    "saved_per_hit_usd": round(c.saved_usd, 8),
                    "break_even_hit_rate": c.break_even,
                    "lines": [asdict(line) for line in c.lines],
                }
                for c in semantic
            ]
        print_json(document)
        return
    print_estimate(report)
    for c in semantic:
        even = f"{c.break_even:.1%}" if c.break_even is not None else "never"
        saved = (
            f"{c.saved_usd:.6f} USD ({c.model}, {tokens[0]} in + {tokens[1]} out)"
            if c.model
            else "nothing priced"
        )
        console.print(
            f"semantic cache, alias {c.alias}: {1000 * c.lookup_usd:.4f} USD per 1,000 lookups, "
            f"{1000 * c.write_usd:.4f} USD per 1,000 misses; a hit saves {saved}; it pays from a hit rate "
            f"of {even} (docs/gateway.md, Semantic cache)",
            highlight=False,
        )


def _spend(profile_name: str, key: str, month: str | None, json_output: bool) -> None:
    import datetime as dt

    from botocore.exceptions import BotoCoreError, ClientError

    from genai_stack.cli import spend

    profile = load_or_fail(profile_name)
    try:
        spend.tag_groups(profile, key)
        spend.month_period(month, today=dt.date.today())
    except ValueError as error:
        fail(str(error))
    try:
        report = spend.spend_by_tag(spend.make_client(), profile, key, month=month, today=dt.date.today())
    except (BotoCoreError, ClientError) as error:
        fail(f"Cost Explorer: {error}")
    if json_output:
        print_json(report.as_dict())
        return
    table = Table(
        title=f"Spend of {profile.name} by {key}, {report.month} ({spend.METRIC}, Cost Explorer)",
        title_justify="left",
    )
    for column in (key, "Application inference profiles", "Service", "USD"):
        table.add_column(column, justify="right" if column == "USD" else "left")
    for row in report.rows:
        table.add_row(row.value, ", ".join(row.profiles), row.service or "-", f"{row.usd:,.2f}")
    table.add_section()
    table.add_row("[bold]total[/]", "", "", f"[bold]{report.total_usd:,.2f}[/]")
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
