#!/usr/bin/env python3
"""Synth time per profile, in-process and through the CDK CLI, as ratios to a one-resource stack; and
the commands that read profiles without synthesizing (`genai-stack profiles`, `validate`), as ratios to
the interpreter's own start.

Run with `make bench` (or `.venv/bin/python bench/synth.py [--repeat N] [--profiles a,b]`). Each
figure is the median of N runs in this one process; the ratio to synthesizing an empty stack in the
same run is the number to compare across machines, since absolute seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, CfnWaitConditionHandle, Stack  # noqa: E402 - after the path and environment set-up

from app import build_app  # noqa: E402 - after the path and environment set-up
from genai_stack.config import builtin_profile_names  # noqa: E402 - after the path and environment set-up
from genai_stack.stage import FEATURE_FLAGS  # noqa: E402 - after the path and environment set-up

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
# What `cdk synth` gives app.py: cdk.json's context, and the project's feature flags app.py adds.
CONTEXT = {**FEATURE_FLAGS, **json.loads((REPO_ROOT / "cdk.json").read_text())["context"]}
# The baseline: a stack with one inert resource (CDK's built-in CloudFormation validation rejects a
# stack with an empty Resources section).
EMPTY_APP = (
    "from aws_cdk import App, CfnWaitConditionHandle, Stack; app = App(); "
    "CfnWaitConditionHandle(Stack(app, 'Empty'), 'Inert'); app.synth()"
)


def median_seconds(action: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(profile: str | None) -> Callable[[], None]:
    def synth() -> None:
        with tempfile.TemporaryDirectory() as outdir:
            app = App(outdir=outdir, context=dict(CONTEXT))
            if profile is None:
                CfnWaitConditionHandle(Stack(app, "Empty"), "Inert")
            else:
                build_app(profile, app=app)
            app.synth()

    return synth


def through_cli(profile: str | None) -> Callable[[], None]:
    def synth() -> None:
        with tempfile.TemporaryDirectory() as outdir:
            command = [str(CDK), "synth", "--quiet", "-o", outdir]
            if profile is None:
                command += ["--app", f'{sys.executable} -c "{EMPTY_APP}"']
            else:
                command += ["-c", f"profile={profile}"]
            env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
            subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)

    return synth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument(
        "--profiles", default=",".join(builtin_profile_names()), help="comma-separated profiles"
    )
    args = parser.parse_args()
    profiles = [p for p in args.profiles.split(",") if p]

    in_process(None)()  # warm the jsii kernel: the first synth also loads aws-cdk-lib into Node
    empty_in = median_seconds(in_process(None), args.repeat)
    empty_cli = median_seconds(through_cli(None), args.repeat)
    rows = []
    for profile in profiles:
        seconds_in = median_seconds(in_process(profile), args.repeat)
        seconds_cli = median_seconds(through_cli(profile), args.repeat)
        rows.append((profile, seconds_in, seconds_in / empty_in, seconds_cli, seconds_cli / empty_cli))

    genai_stack = Path(sys.executable).with_name("genai-stack")
    bare = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeat)
    commands = []
    for command in (["profiles"], ["validate", "managed-api"]):
        seconds = median_seconds(
            lambda command=command: subprocess.run(
                [str(genai_stack), *command], check=True, capture_output=True
            ),
            args.repeat,
        )
        commands.append((" ".join(command), seconds))

    print(f"synth time, median of {args.repeat} runs ({os.cpu_count()} cores)")
    print(f"{'profile':<16} {'in-process s':>12} {'x base':>8} {'cdk CLI s':>10} {'x base':>8}")
    print(f"{'(1-resource)':<16} {empty_in:>12.2f} {1:>8.2f} {empty_cli:>10.2f} {1:>8.2f}")
    for profile, seconds_in, ratio_in, seconds_cli, ratio_cli in rows:
        print(f"{profile:<16} {seconds_in:>12.2f} {ratio_in:>8.2f} {seconds_cli:>10.2f} {ratio_cli:>8.2f}")
    print(f"\ngenai-stack without synthesis, median of {args.repeat} runs")
    print(f"{'command':<28} {'s':>6} {'x python':>9}")
    print(f"{'(python -c pass)':<28} {bare:>6.2f} {1:>9.2f}")
    for command, seconds in commands:
        print(f"{'genai-stack ' + command:<28} {seconds:>6.2f} {seconds / bare:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
