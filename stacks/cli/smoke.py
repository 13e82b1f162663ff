"""`genai-stack smoke PROFILE`: whether a deployed profile is in the state its templates promise.

After `cdk deploy --all`, with the caller's credentials, read-only: every stack of the profile is
deployed and settled; no alarm of the profile is in ALARM; its budgets exist with the profile's limits
and its anomaly monitor exists; each SageMaker endpoint is InService and each model host's load
balancer sees healthy hosts (an endpoint or fleet scaled to zero is skipped with a note).

What it looks for comes from the profile's templates, synthesized offline as `cdk synth` would: the
stacks and their resources by logical ID; CloudFormation's DescribeStackResources gives the deployed
names. Each check is a function of the clients it needs (injected: tests stub them) returning results;
`run_smoke` picks the checks the templates call for; the command prints the table and exits 1 when
anything failed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from genai_stack.catalog import cost_region
from genai_stack.cli.app import EXIT_ERROR, EXIT_FOUND, app, console, errors, fail, print_json
from genai_stack.config import Profile, ProfileError, load_profile

Status = Literal["pass", "fail", "skip"]
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# DescribeAlarms takes up to 100 names a call (CloudWatch API reference, DescribeAlarms AlarmNames).
ALARM_NAMES_PER_CALL = 100


@dataclass(frozen=True)
class Result:
    """One check: `detail` says what was found and, unless it passed, what to do."""

    check: str
    status: Status
    detail: str


@dataclass
class Stack:
    """One stack of the profile: its template (offline) and, once read, its deployed resources."""

    name: str
    region: str
    template: dict
    physical: dict[str, str] = field(default_factory=dict)  # logical ID -> physical ID

    def of_type(self, resource_type: str) -> list[tuple[str, dict]]:
        return [
            (logical_id, resource)
            for logical_id, resource in self.template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]


def stacks_of(profile: Profile, templates: Mapping[str, dict]) -> list[Stack]:
    """The profile's stacks by name; the cost stack lives where Budgets and Cost Explorer are
    (stacks/stage.py), every other stack in the profile's region."""
    return [
        Stack(
            name=name,
            region=cost_region(profile.region) if name == f"{profile.name}-cost" else profile.region,
            template=template,
        )
        for name, template in templates.items()
    ]


# --------------------------------------------------------------------------------------------------
# The checks


def check_stack(cloudformation: Any, stack: Stack) -> list[Result]:
    """The stack exists and is settled; reads its resources' deployed names into `stack.physical`."""
    check = f"stack {stack.name}"
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack.name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response.get("Error", {}).get("Message", ""):
            raise
        return [Result(check, "fail", f"not deployed in {stack.region}: run `cdk deploy --all`")]
    status = described["StackStatus"]
    if status not in SETTLED:
        return [Result(check, "fail", f"{status}: wait for it to settle, or see its events")]
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack.name):
        for resource in page["StackResourceSummaries"]:
            if resource.get("PhysicalResourceId"):
                stack.physical[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return [Result(check, "pass", status)]


def check_alarms(cloudwatch: Any, names: Sequence[str]) -> list[Result]:
    """No alarm of the profile is in ALARM (OK or INSUFFICIENT_DATA pass: a new deployment has no data
    yet), and every alarm the templates define exists."""
    states: dict[str, str] = {}
    for start in range(0, len(names), ALARM_NAMES_PER_CALL):
        batch = list(names[start : start + ALARM_NAMES_PER_CALL])
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    missing = sorted(set(names) - set(states))
    firing = sorted(name for name, state in states.items() if state == "ALARM")
    if missing or firing:
        problems = (
            [f"in ALARM: {', '.join(firing)} (docs/operations.md says what each means)"] if firing else []
        )
        problems += [f"missing: {', '.join(missing)}"] if missing else []
        return [Result("alarms", "fail", "; ".join(problems))]
    counts = {state: list(states.values()).count(state) for state in sorted(set(states.values()))}
    return [Result("alarms", "pass", ", ".join(f"{n} {state}" for state, n in counts.items()) or "none")]


def check_budgets(budgets: Any, *, account: str, expected: Mapping[str, float]) -> list[Result]:
    """Each budget of the templates exists with its monthly limit in USD (`expected`: name -> limit)."""
    results = []
    for name, limit in sorted(expected.items()):
        check = f"budget {name}"
        try:
            budget = budgets.describe_budget(AccountId=account, BudgetName=name)["Budget"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            results.append(Result(check, "fail", "missing: the cost stack's deploy did not create it"))
            continue
        amount = float(budget["BudgetLimit"]["Amount"])
        unit = budget["BudgetLimit"]["Unit"]
        if unit != "USD" or abs(amount - limit) > 0.005:
            results.append(Result(check, "fail", f"limit {amount:g} {unit}, the profile says {limit:g} USD"))
        else:
            results.append(Result(check, "pass", f"{amount:g} USD a month"))
    return results


def check_anomaly_monitors(ce: Any, arns: Sequence[str]) -> list[Result]:
    """The cost anomaly monitors of the templates exist."""
    found = {
        m["MonitorArn"] for m in ce.get_anomaly_monitors(MonitorArnList=list(arns)).get("AnomalyMonitors", [])
    }
    missing = sorted(set(arns) - found)
    if missing:
        return [Result("cost anomaly monitor", "fail", f"missing: {', '.join(missing)}")]
    return [Result("cost anomaly monitor", "pass", f"{len(found)} monitor(s)")]


def check_endpoints(sagemaker: Any, names: Sequence[str]) -> list[Result]:
    """Each SageMaker endpoint is InService; one scaled to zero instances is skipped (nothing to ask)."""
    results = []
    for name in names:
        check = f"endpoint {name}"
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if "Could not find endpoint" not in error.response.get("Error", {}).get("Message", ""):
                raise
            results.append(Result(check, "fail", "missing: the inference stack's deploy did not create it"))
            continue
        status = endpoint["EndpointStatus"]
        instances = sum(v.get("CurrentInstanceCount", 0) for v in endpoint.get("ProductionVariants", []))
        if status == "InService" and instances == 0:
            results.append(Result(check, "skip", "scaled to zero instances: no health to ask for"))
        elif status == "InService":
            results.append(Result(check, "pass", f"InService, {instances} instance(s)"))
        else:
            reason = endpoint.get("FailureReason", "")
            results.append(Result(check, "fail", f"{status}{': ' + reason if reason else ''}"))
    return results


def check_hosts(autoscaling: Any, elbv2: Any, fleets: Sequence[tuple[str, str]]) -> list[Result]:
    """Each model host fleet (Auto Scaling group, load-balancer target group): at least one healthy
    host when the group wants any; a fleet at zero (off hours) is skipped."""
    results = []
    for group, target_group in fleets:
        check = f"hosts {group}"
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
        if not groups:
            results.append(Result(check, "fail", "missing: the hosting stack's deploy did not create it"))
            continue
        if groups[0]["DesiredCapacity"] == 0:
            results.append(Result(check, "skip", "scaled to zero (off hours): no host to ask"))
            continue
        health = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        states = [t["TargetHealth"]["State"] for t in health]
        healthy = states.count("healthy")
        if healthy:
            results.append(Result(check, "pass", f"{healthy} of {len(states)} host(s) healthy"))
        else:
            reasons = sorted({t["TargetHealth"].get("Reason", t["TargetHealth"]["State"]) for t in health})
            results.append(
                Result(
                    check, "fail", f"no healthy host of {len(states)} ({', '.join(reasons) or 'no targets'})"
                )
            )
    return results


# --------------------------------------------------------------------------------------------------
# Which checks a deployed profile calls for


@dataclass
class Clients:
    """boto3 clients per region (stubbed in tests): `for_region(service, region)`."""

    make: Callable[[str, str], Any]

    def for_region(self, service: str, region: str) -> Any:
        return self.make(service, region)


def make_clients() -> Clients:
    import boto3

    cache: dict[tuple[str, str], Any] = {}

    def make(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.Session(region_name=region).client(service)
        return cache[(service, region)]

    return Clients(make)


def _guarded(check: str, run: Callable[[], list[Result]]) -> list[Result]:
    """A refused call is a failed check, not a traceback (the smoke role lacks a permission, or the
    service refused)."""
    try:
        return run()
    except ClientError as error:
        details = error.response.get("Error", {})
        return [
            Result(
                check,
                "fail",
                f"could not check: {details.get('Code', '')} {details.get('Message', '')}".strip(),
            )
        ]
    except BotoCoreError as error:
        return [Result(check, "fail", f"could not check: {error}")]


def _physical(stacks: Iterable[Stack], resource_type: str) -> list[tuple[Stack, str, dict, str]]:
    return [
        (stack, logical_id, resource, stack.physical[logical_id])
        for stack in stacks
        for logical_id, resource in stack.of_type(resource_type)
        if logical_id in stack.physical
    ]


def run_smoke(profile: Profile, stacks: Sequence[Stack], clients: Clients, *, account: str) -> list[Result]:
    """Every check the profile's templates call for, stacks first (they name what the others read)."""
    results: list[Result] = []
    for stack in stacks:
        results += _guarded(
            f"stack {stack.name}",
            lambda s=stack: check_stack(clients.for_region("cloudformation", s.region), s),
        )
    deployed = [s for s in stacks if s.physical]
    by_region: dict[str, list[str]] = {}
    for stack, _, _, name in _physical(deployed, "AWS::CloudWatch::Alarm"):
        by_region.setdefault(stack.region, []).append(name)
    for region, names in sorted(by_region.items()):
        results += _guarded(
            "alarms", lambda r=region, n=names: check_alarms(clients.for_region("cloudwatch", r), n)
        )
    budgets = {
        name: float(resource["Properties"]["Budget"]["BudgetLimit"]["Amount"])
        for _, _, resource, name in _physical(deployed, "AWS::Budgets::Budget")
    }
    if budgets:
        results += _guarded(
            "budgets",
            lambda: check_budgets(
                clients.for_region("budgets", "us-east-1"), account=account, expected=budgets
            ),
        )
    monitors = [(s.region, arn) for s, _, _, arn in _physical(deployed, "AWS::CE::AnomalyMonitor")]
    if monitors:
        results += _guarded(
            "cost anomaly monitor",
            lambda: check_anomaly_monitors(
                clients.for_region("ce", "us-east-1"), [arn for _, arn in monitors]
            ),
        )
    # An endpoint's physical ID is its ARN ("Ref returns the Amazon Resource Name (ARN) of the
    # endpoint": AWS::SageMaker::Endpoint); DescribeEndpoint takes the name, its last part.
    endpoints = [
        (s.region, arn.rsplit("/", 1)[-1]) for s, _, _, arn in _physical(deployed, "AWS::SageMaker::Endpoint")
    ]
    for region in sorted({r for r, _ in endpoints}):
        names = [n for r, n in endpoints if r == region]
        results += _guarded(
            "endpoints", lambda r=region, n=names: check_endpoints(clients.for_region("sagemaker", r), n)
        )
    fleets = _fleets(deployed)
    for region in sorted({r for r, _, _ in fleets}):
        pairs = [(g, t) for r, g, t in fleets if r == region]
        results += _guarded(
            "hosts",
            lambda r=region, p=pairs: check_hosts(
                clients.for_region("autoscaling", r), clients.for_region("elbv2", r), p
            ),
        )
    return results


def _fleets(stacks: Sequence[Stack]) -> list[tuple[str, str, str]]:
    """(region, Auto Scaling group name, target group ARN) of each model host fleet: the group's
    TargetGroupARNs name its target group by Ref."""
    fleets = []
    for stack in stacks:
        for logical_id, resource in stack.of_type("AWS::AutoScaling::AutoScalingGroup"):
            if logical_id not in stack.physical:
                continue
            for reference in resource["Properties"].get("TargetGroupARNs", []):
                target = reference.get("Ref") if isinstance(reference, dict) else None
                if target in stack.physical:
                    fleets.append((stack.region, stack.physical[logical_id], stack.physical[target]))
    return fleets


STYLE = {"pass": "green", "skip": "yellow", "fail": "bold red"}


@app.command()
def smoke(
    profile: Annotated[str, typer.Argument(help="A built-in profile name or a profile file.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check a deployed profile: read-only calls with your AWS credentials. Exit status 1 and a table
    of what failed; skipped checks (an endpoint or host fleet scaled to zero) alone exit 0.

    Checks: every stack deployed and settled, no alarm in ALARM, budgets with the profile's limits and
    the cost anomaly monitor, SageMaker endpoints InService, model hosts healthy behind their load
    balancers.

    [b]Example[/]: AWS_PROFILE=prod genai-stack smoke managed-api --json
    """
    from genai_stack.cli.synth import synthesize

    try:
        loaded = load_profile(profile)
    except ProfileError as error:
        fail(str(error))
    with (
        errors.status(f"Synthesizing {loaded.name} (offline) to see what it deploys"),
        tempfile.TemporaryDirectory() as outdir,
    ):
        (synthesis,) = synthesize(profile, Path(outdir))
    clients = make_clients()
    try:
        account = loaded.account or clients.for_region("sts", loaded.region).get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        fail(f"no usable AWS credentials for {loaded.region}: {error}", EXIT_ERROR)
    results = run_smoke(loaded, stacks_of(loaded, synthesis.templates), clients, account=account)
    failed = any(r.status == "fail" for r in results)
    if json_output:
        print_json(
            {
                "profile": loaded.name,
                "region": loaded.region,
                "passed": not failed,
                "checks": [asdict(r) for r in results],
            }
        )
    else:
        table = Table(title=f"genai-stack smoke {loaded.name} ({loaded.region})")
        for column in ("Check", "Status", "Found / what to do"):
            table.add_column(column, overflow="fold")
        for result in results:
            table.add_row(result.check, f"[{STYLE[result.status]}]{result.status}[/]", result.detail)
        console.print(table)
        console.print(
            "The deployment answers as its templates say." if not failed else "Fix the failed checks."
        )
    if failed:
        raise typer.Exit(EXIT_FOUND)
