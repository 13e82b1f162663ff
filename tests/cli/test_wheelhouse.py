"""`genai-stack wheelhouse`: the pip download that stages vLLM for the GPU hosts, and its failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_stack.catalog import model_servers
from genai_stack.cli import app
from genai_stack.cli import wheelhouse as module

VERSION = model_servers().vllm_version


def fake_pip(files: list[str], status: int = 0):
    """A stand-in for pip download: records the command and drops the named files in --dest."""
    seen: list[list[str]] = []

    def run(command):
        seen.append(list(command))
        dest = Path(command[command.index("--dest") + 1])
        for name in files:
            (dest / name).write_bytes(b"")
        return status

    return run, seen


def test_pip_downloads_binary_wheels_of_the_pinned_vllm_and_pip_for_the_hosts_platform(tmp_path):
    run, seen = fake_pip([f"vllm-{VERSION}-cp38-abi3-manylinux_2_31_x86_64.whl", "pip-26.3-py3-none-any.whl"])
    target = module.stage(tmp_path, python="3.10", platform="manylinux_2_35_x86_64", run=run)
    assert target == tmp_path / "cp310"
    (command,) = seen
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    # --platform and --python-version need --only-binary=:all: (pip download reference): no sdist
    # would build on a host without a compiler anyway.
    assert "--only-binary=:all:" in command
    # Every tag a glibc 2.35 host installs: pip matches PEP 600 tags exactly (pypa/pip#10760), and
    # PyTorch's and vLLM's wheels are manylinux_2_28 / manylinux2014, not 2_35.
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_35_x86_64"
    assert {
        "manylinux_2_28_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux1_x86_64",
    } <= set(platforms)
    assert "manylinux_2_36_x86_64" not in platforms  # newer than the host's glibc
    assert command[command.index("--python-version") + 1] == "3.10"
    assert command[command.index("--implementation") + 1] == "cp"
    assert command[-2:] == [f"vllm=={VERSION}", "pip"]


def test_a_failed_download_or_a_missing_wheel_is_an_error(tmp_path):
    run, _ = fake_pip([], status=1)
    with pytest.raises(RuntimeError, match="pip download exited with status 1"):
        module.stage(tmp_path, python="3.10", platform="manylinux_2_35_x86_64", run=run)
    run, _ = fake_pip(["pip-26.3-py3-none-any.whl"])
    with pytest.raises(RuntimeError, match=f"no vllm-{VERSION} or pip wheel"):
        module.stage(tmp_path, python="3.10", platform="manylinux_2_35_x86_64", run=run)


def test_the_defaults_are_the_gpu_amis_python_and_glibc():
    assert module.python_tag(model_servers().gpu_python) == "cp310"
    assert model_servers().gpu_wheel_platform == "manylinux_2_35_x86_64"
    with pytest.raises(ValueError, match=r"give MAJOR\.MINOR"):
        module.python_tag("three")
    with pytest.raises(ValueError, match="manylinux_2_N_ARCH"):
        module.compatible_platforms("linux_x86_64")


def test_the_command_prints_where_to_upload_and_fails_cleanly(tmp_path, monkeypatch):
    run, _ = fake_pip([f"vllm-{VERSION}-cp38-abi3-manylinux_2_31_x86_64.whl", "pip-26.3-py3-none-any.whl"])
    monkeypatch.setattr(module, "_run", run)
    result = CliRunner().invoke(app, ["wheelhouse", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"aws s3 sync {tmp_path} s3://<ArtifactsBucket>/wheels/vllm-{VERSION}/" in result.output
    failing, _ = fake_pip([], status=1)
    monkeypatch.setattr(module, "_run", failing)
    result = CliRunner().invoke(app, ["wheelhouse", str(tmp_path / "other")])
    assert result.exit_code == 2
    assert "pip download exited with status 1" in result.output
    assert "Traceback" not in result.output
