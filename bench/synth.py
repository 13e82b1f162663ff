#!/usr/bin/env python3
"""Synth time per profile, in-process and through the CDK CLI, as ratios to a one-resource stack.

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

from app import build_app  # noqa: E402
from genai_stack.config import builtin_profile_names  # noqa: E402

CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
CONTEXT = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
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

    print(f"synth time, median of {args.repeat} runs ({os.cpu_count()} cores)")
    print(f"{'profile':<16} {'in-process s':>12} {'x base':>8} {'cdk CLI s':>10} {'x base':>8}")
    print(f"{'(1-resource)':<16} {empty_in:>12.2f} {1:>8.2f} {empty_cli:>10.2f} {1:>8.2f}")
    for profile, seconds_in, ratio_in, seconds_cli, ratio_cli in rows:
        print(f"{profile:<16} {seconds_in:>12.2f} {ratio_in:>8.2f} {seconds_cli:>10.2f} {ratio_cli:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
