"""Records the boto3 calls our Lambda code makes while the unit tests run.

`botocore.client.BaseClient._make_api_call` is the one method every client operation goes through
(Stubber responses and moto included), so wrapping it for the session sees every call. A call is
attributed to the Lambda package whose code called the client (the first frame outside boto3 and
botocore); calls made by the tests themselves (setting up moto, say) are not recorded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import botocore.client


@dataclass
class Recording:
    calls: set[tuple[str, str, str]] = field(default_factory=set)  # (package, service, Operation)
    lambda_tests_run: int = 0
    installed: bool = False


RECORDING = Recording()


def _package_on_stack() -> str | None:
    """The Lambda package whose code called the client: the first frame outside boto3/botocore
    (a paginator or waiter runs inside botocore; a test's own event hook is not Lambda code)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(("botocore.", "boto3.")) and name not in ("botocore", "boto3"):
            return name.split(".")[1] if name.startswith("lambdas.") else None
        frame = frame.f_back
    return None


def install_call_recording() -> None:
    if RECORDING.installed:
        return
    original = botocore.client.BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        package = _package_on_stack()
        if package is not None:
            RECORDING.calls.add((package, self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _make_api_call
    RECORDING.installed = True
