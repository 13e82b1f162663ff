"""Build genai-stack's wheel, install it into a fresh virtual environment outside the checkout and use it
as a platform team would: `genai-stack profiles`, `genai-stack validate` on a copied profile, and an app
of the team's own (with its own `stacks` package) that deploys the copied profile and two of the
library's constructs. Run by tests/test_package.py in the background:

    python tests/support/wheel_check.py REPO WORKDIR

prints one JSON document: the wheel's file names and, per step, the command's exit status and output.
Offline: the wheel builds without isolation (setuptools and build from requirements.lock) and the
fresh environment installs from uv's cache, constrained to requirements.lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

SOURCES = ("pyproject.toml", "README.md", "stacks", "lambdas", "profiles")

USER_STACK = '''\
"""A team's own stack, in the team's own `stacks` package (the name genai-stack's repository uses)."""

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from genai_stack.constructs import BudgetAlert, CostControls, Guardrail, GuardrailSettings


class TeamAi(Stack):
    def __init__(self, scope, construct_id, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "Key", enable_key_rotation=True)
        topic = sns.Topic(self, "Alerts", master_key=key)
        settings = GuardrailSettings(blocked_input_message="Not here.", blocked_output_message="Not this.")
        Guardrail(
            self, "Guardrail", name="team-guardrail", settings=settings, encryption_key=key,
            log_retention_days=30,
        )
        CostControls(
            self, "Cost", tag_key="team", tag_value="support", monthly_limit_usd=500,
            alerts=[BudgetAlert(percent=80, kind="ACTUAL")], anomaly_threshold_usd=50, topic=topic,
        )
'''

USER_APP = '''\
"""A team's CDK app: its own stack with two genai-stack constructs, and a profile of its own."""

from aws_cdk import App, Environment

from genai_stack.config import load_profile
from genai_stack.stage import FEATURE_FLAGS, ProfileStacks
from stacks.ai import TeamAi

app = App(context=FEATURE_FLAGS)
TeamAi(app, "TeamAi", env=Environment(account="123456789012", region="us-east-1"))
ProfileStacks(app, "Team", profile=load_profile("team.yaml"))
app.synth()
'''


def run(args: list[str], cwd: Path, env: dict[str, str]) -> dict:
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603 - build, uv and the installed genai-stack on our own files
    return {
        "args": args,
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(repo: Path, work: Path) -> dict:
    python = Path(sys.executable)
    uv = python.parent / "uv"
    # As on a user's machine: no virtual environment of ours, and modules compiled once, on first import.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    source = work / "source"
    for name in SOURCES:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, source / name)
    steps: dict[str, dict] = {}
    report = {"steps": steps, "wheel": []}
    steps["build"] = run(
        [
            str(python),
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(work / "dist"),
            str(source),
        ],
        work,
        env,
    )
    wheels = sorted((work / "dist").glob("*.whl"))
    if steps["build"]["returncode"] or not wheels:
        return report
    with zipfile.ZipFile(wheels[0]) as wheel:
        report["wheel"] = sorted(info.filename for info in wheel.infolist())
        report["metadata"] = next(
            wheel.read(name).decode() for name in wheel.namelist() if name.endswith(".dist-info/METADATA")
        )
        report["executable"] = sorted(
            info.filename for info in wheel.infolist() if (info.external_attr >> 16) & 0o111
        )
    venv = work / "venv"
    steps["venv"] = run([str(uv), "venv", "--quiet", "--python", str(python), str(venv)], work, env)
    steps["install"] = run(
        [str(uv), "pip", "install", "--quiet", "--offline", "--python", str(venv / "bin" / "python"),
         "-c", str(repo / "requirements.lock"), str(wheels[0])],
        work,
        env,
    )  # fmt: skip
    if steps["install"]["returncode"]:
        return report
    user = work / "team-app"
    (user / "stacks").mkdir(parents=True)
    (user / "stacks" / "__init__.py").write_text("")
    (user / "stacks" / "ai.py").write_text(USER_STACK)
    (user / "app.py").write_text(USER_APP)
    profile = (repo / "profiles" / "customer-service.yaml").read_text()
    (user / "team.yaml").write_text(profile.replace("name: customer-service", "name: team", 1))
    cli = str(venv / "bin" / "genai-stack")
    steps["profiles"] = run([cli, "profiles", "--json"], user, env)
    steps["validate"] = run([cli, "validate", "team.yaml", "--json"], user, env)
    steps["app"] = run(
        [str(venv / "bin" / "python"), "app.py"], user, {**env, "CDK_OUTDIR": str(user / "cdk.out")}
    )
    report["templates"] = sorted(p.name for p in (user / "cdk.out").glob("*.template.json"))
    team_ai = user / "cdk.out" / "TeamAi.template.json"
    report["team_ai_template"] = team_ai.read_text() if team_ai.is_file() else "{}"
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())))
