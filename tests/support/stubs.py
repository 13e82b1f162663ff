"""boto3 clients for tests that stub AWS (botocore Stubber): offline credentials, and a Stubber that
also fails the test when a queued answer was never asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.stub import Stubber


def offline_client(service: str, region: str = "us-east-1"):
    """A real botocore client with dummy credentials (every call is stubbed or goes to moto)."""
    return boto3.client(
        service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextmanager
def stubbed(client) -> Iterator[Stubber]:
    """Stub `client` for the block; every queued response must have been used by its end."""
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def import_counting_clients(monkeypatch, module_name: str):
    """Import `module_name` afresh with boto3.client replaced by a counter; returns (module, the services
    a client was built for). Handlers must build no client at import, and each client only once."""
    import importlib
    import sys

    calls: list[str] = []

    def fake_client(service, **kwargs):
        calls.append(service)
        return object()

    monkeypatch.setattr(boto3, "client", fake_client)
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    return importlib.import_module(module_name), calls


# One client per (service, region) for the whole session: building one takes tens of milliseconds,
# and the catalog and smoke tests ask for hundreds. Each Stubs activates its own Stubber on it and
# deactivates it in verify(), so no answer queued by one test reaches another.
_SHARED: dict[tuple[str, str], object] = {}


def shared_client(service: str, region: str):
    if (service, region) not in _SHARED:
        _SHARED[(service, region)] = offline_client(service, region)
    return _SHARED[(service, region)]


class Stubs:
    """Clients with fake credentials per (service, region); every call must be stubbed, in order."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], object] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}

    def __call__(self, service: str, region: str = "us-east-1"):
        if (service, region) not in self.clients:
            client = shared_client(service, region)
            self.stubbers[(service, region)] = Stubber(client)
            self.stubbers[(service, region)].activate()
            self.clients[(service, region)] = client
        return self.clients[(service, region)]

    def __getitem__(self, service: str) -> Stubber:
        return self.stubber(service)

    def stubber(self, service: str, region: str = "us-east-1") -> Stubber:
        self(service, region)
        return self.stubbers[(service, region)]

    def verify(self) -> None:
        """Every queued answer was asked for; the stubbers leave the shared clients either way."""
        try:
            for stubber in self.stubbers.values():
                stubber.assert_no_pending_responses()
        finally:
            for stubber in self.stubbers.values():
                stubber.deactivate()
