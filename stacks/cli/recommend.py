"""`genai-stack recommend`: the approach advisor (stacks/planning/advisor.py) on the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from genai_stack.catalog import bedrock_catalog, bedrock_prices, regions_table
from genai_stack.cli.app import app, console, fail, print_json
from genai_stack.planning.advisor import Workload, recommend


@app.command("recommend")
def recommend_command(
    requests: Annotated[int, typer.Option(min=0, help="Requests a month.")],
    modality: Annotated[str, typer.Option(help="text, image or embeddings.")] = "text",
    input_tokens: Annotated[int, typer.Option(min=0, help="Input tokens per request.")] = 500,
    output_tokens: Annotated[int, typer.Option(min=0, help="Output tokens per request.")] = 200,
    domain_data: Annotated[str, typer.Option(help="none, labelled or unlabelled.")] = "none",
    latency_ms: Annotated[int | None, typer.Option(min=1, help="Latency target in milliseconds.")] = None,
    budget: Annotated[float | None, typer.Option(min=0, help="Monthly budget in USD.")] = None,
    model: Annotated[str | None, typer.Option(help="Bedrock model to price (default per modality).")] = None,
    tokens_per_second: Annotated[
        float | None,
        typer.Option(min=1, help="Measured output tokens/s of one host (overrides the assumption)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Where the team works or its data should stay (e.g. ap-east-1): picks a profile."),
    ] = None,
    seconds_per_image: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Measured seconds per image of the fine-tuned image endpoint (--modality image)."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """The approach advisor: approaches ranked by monthly cost at a volume, and where to start.

    Shows the crossover volumes where a self-hosted instance becomes cheaper than on-demand tokens,
    the reasons, and the built-in profile to start from.

    [b]Examples[/]: genai-stack recommend --requests 2000000 ;
    genai-stack recommend --requests 300000 --region ap-east-1 ;
    genai-stack recommend --modality image --requests 20000 ;
    genai-stack recommend --requests 50000 --domain-data unlabelled --budget 200 --json
    """
    if modality not in ("text", "image", "embeddings"):
        fail(f"--modality {modality!r} is not one of text, image, embeddings")
    if domain_data not in ("none", "labelled", "unlabelled"):
        fail(f"--domain-data {domain_data!r} is not one of none, labelled, unlabelled")
    if model is not None:
        try:
            priced = bedrock_catalog().model_of(model).model_id in bedrock_prices()
        except KeyError:
            priced = False
        if not priced:
            fail(
                f"--model {model!r} has no token price; priced models: {', '.join(sorted(bedrock_prices()))}"
            )
    if region is not None and region not in regions_table()["missing"]:
        fail(f"--region {region!r} is not an AWS commercial region CloudFormation lists (docs/regions.md)")
    work = Workload(
        region=region,
        modality=modality,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        domain_data=domain_data,
        latency_ms=latency_ms,
        budget_usd=budget,
        model=model,
        tokens_per_second=tokens_per_second,
        seconds_per_image=seconds_per_image,
    )
    result = recommend(work)
    if json_output:
        print_json(result.as_dict())
        return
    table = Table(
        title=f"Approaches at {requests:,} requests a month (us-east-1 prices)", title_justify="left"
    )
    for column in ("#", "Approach", "What", "USD/month", "Crossover (requests/month)", "Notes"):
        table.add_column(column, justify="right" if column in ("#", "USD/month") else "left")
    for rank, option in enumerate(result.options, start=1):
        table.add_row(
            str(rank),
            option.approach,
            option.detail,
            "not priced" if option.monthly_usd is None else f"{option.monthly_usd:,.2f}",
            "" if option.crossover_requests is None else f"{option.crossover_requests:,}",
            "; ".join(option.notes),
        )
    console.print(table)
    for reason in result.reasons:
        console.print(f"• {reason}", highlight=False)
    console.print(f"Start from the profile [bold]{result.profile}[/] (genai-stack plan {result.profile}).")
