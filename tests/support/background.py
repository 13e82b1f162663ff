"""External tools started in the background: the compliance scanners (checkov, cfn-lint) are separate
processes that need only the synthesized templates, so the session starts them as soon as the
templates exist and they run on the machine's other core while the Python tests run; their tests,
ordered last (tests/conftest.py), only wait for the result.

Background work runs at a lower CPU priority (`LOWER_PRIORITY`, coreutils' nice): the session's own process (its
synthesis, then the Python tests) is what the run waits for, and on two cores equal shares starved it
while the background jobs, waited for only at the end, finished early and left a core idle."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# A command prefix (not a preexec_fn: the diff scenarios start processes from a thread).
LOWER_PRIORITY = ("nice", "-n", "10")


class BackgroundRun:
    """One command running in the background; `result()` waits and returns what `subprocess.run`
    would have (output captured in temporary files, so a large report cannot block a pipe)."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
    ) -> None:
        self.args = [str(a) for a in args]
        self.timeout = timeout
        self._stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in result()
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in result()
        self._process = subprocess.Popen(  # noqa: S603 - fixed tools on our own files
            [*LOWER_PRIORITY, *self.args], cwd=cwd, env=dict(env) if env is not None else None,
            stdout=self._stdout, stderr=self._stderr, text=True,
        )  # fmt: skip
        self._result: subprocess.CompletedProcess | None = None

    def result(self) -> subprocess.CompletedProcess:
        if self._result is None:
            try:
                code = self._process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                raise
            outputs = []
            for stream in (self._stdout, self._stderr):
                stream.seek(0)
                outputs.append(stream.read())
                stream.close()
            self._result = subprocess.CompletedProcess(self.args, code, outputs[0], outputs[1])
        return self._result
