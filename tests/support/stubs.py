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
