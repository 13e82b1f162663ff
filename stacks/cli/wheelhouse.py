"""`genai-stack wheelhouse`: stage vLLM's wheels for the GPU model hosts, which install nothing from the
internet at boot (stacks/templates/model_host.sh.tmpl, vllm-gpu).

pip downloads, on a machine with access to PyPI, vLLM at the pinned version and every dependency as
wheels for the hosts' platform and Python (never a source distribution, which would need a compiler
on the host), plus pip itself, which the host runs from its wheel. The directory is then synced to
`s3://<ArtifactsBucket>/wheels/vllm-<version>/`, one subdirectory per Python ABI (`cp310`).
pip's own reference, `pip download` (--platform, --python-version, --implementation and
--only-binary=:all:, which the first three require): https://pip.pypa.io/en/stable/cli/pip_download/
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from genai_stack.catalog import model_servers
from genai_stack.cli.app import app, console, fail
from genai_stack.components.model_host_user_data import wheelhouse_prefix

Runner = Callable[[Sequence[str]], int]


def python_tag(python: str) -> str:
    """`3.10` -> `cp310`: the directory the host picks from its own `python3`."""
    major, _, minor = python.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"--python {python!r}: give MAJOR.MINOR, e.g. 3.10")
    return f"cp{major}{minor}"


_MANYLINUX = re.compile(r"^manylinux_2_(\d+)_(\w+)$")
# The legacy aliases of manylinux_2_17 / 2_12 / 2_5 (PEP 600, "Legacy manylinux tags").
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def compatible_platforms(platform: str) -> list[str]:
    """Every wheel platform tag a host with `platform`'s glibc installs: manylinux_2_N for N from its
    glibc down to 2_5, and their legacy names. `pip download --platform` matches tags exactly for
    PEP 600 names (pypa/pip#10760), so each is passed; vLLM and PyTorch ship manylinux_2_28 / 2014
    wheels, which a single manylinux_2_35 would miss."""
    match = _MANYLINUX.match(platform)
    if match is None:
        raise ValueError(
            f"--platform {platform!r}: give a manylinux_2_N_ARCH tag, e.g. manylinux_2_35_x86_64"
        )
    newest, arch = int(match[1]), match[2]
    tags = []
    for minor in range(newest, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY:
            tags.append(f"{_LEGACY[minor]}_{arch}")
    return tags


def download_command(destination: Path, *, python: str, platform: str) -> list[str]:
    """pip download of vLLM (pinned) and pip, binary wheels only, for the hosts' platform and Python."""
    platforms = [flag for tag in compatible_platforms(platform) for flag in ("--platform", tag)]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--dest",
        str(destination),
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        python,
        "--implementation",
        "cp",
        f"vllm=={model_servers().vllm_version}",
        "pip",
    ]


def _run(command: Sequence[str]) -> int:
    return subprocess.run(command, check=False).returncode  # noqa: S603 - pip, arguments built above


def stage(directory: Path, *, python: str, platform: str, run: Runner | None = None) -> Path:
    """Download into `directory/<cpXY>` and return that path; raise when pip fails."""
    run = run or _run
    target = directory / python_tag(python)
    target.mkdir(parents=True, exist_ok=True)
    status = run(download_command(target, python=python, platform=platform))
    if status != 0:
        raise RuntimeError(f"pip download exited with status {status}; nothing to upload")
    version = model_servers().vllm_version
    if not list(target.glob(f"vllm-{version}-*.whl")) or not list(target.glob("pip-*.whl")):
        raise RuntimeError(f"{target} holds no vllm-{version} or pip wheel after pip download")
    return target


@app.command(
    epilog=(
        "[bold]Example[/]\n\n"
        "  genai-stack wheelhouse ./wheels && aws s3 sync ./wheels s3://BUCKET/"
        f"{wheelhouse_prefix()}\n\n"
    )
)
def wheelhouse(
    directory: Annotated[Path, typer.Argument(help="Where to put the wheels (a new or empty directory).")],
    python: Annotated[
        str, typer.Option(help="The Python of the hosts' AMI (MAJOR.MINOR).")
    ] = model_servers().gpu_python,
    platform: Annotated[
        str, typer.Option(help="The hosts' wheel platform tag (glibc of the AMI).")
    ] = model_servers().gpu_wheel_platform,
) -> None:
    """Stage vLLM's wheels for the GPU model hosts (they install nothing from the internet at boot).

    Needs PyPI (run it where pip can reach it); prints the `aws s3 sync` that puts them in place."""
    try:
        target = stage(directory, python=python, platform=platform)
    except (ValueError, RuntimeError) as error:
        fail(str(error))
    console.print(
        f"Staged vLLM {model_servers().vllm_version} for {python_tag(python)} in {target}. Upload it:\n"
        f"  aws s3 sync {directory} s3://<ArtifactsBucket>/{wheelhouse_prefix()}",
        highlight=False,
        soft_wrap=True,
    )
