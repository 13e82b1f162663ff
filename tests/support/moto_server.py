"""A moto server on loopback: a real HTTP endpoint for AWS data planes in tests, no AWS."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server


class SerializedMotoServer(ThreadedMotoServer):
    """A moto server that answers one request at a time. moto's backends take no lock around an
    operation, so two UpdateItem calls answered on two threads can both pass a condition; DynamoDB
    applies each single-item write atomically ("Condition expressions", DynamoDB developer guide).
    Answering in turn gives moto that guarantee, while the callers still race."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, threaded=False, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def moto_server(*, serialized: bool = False) -> Iterator[str]:
    """Start a moto server on a free loopback port; yields its endpoint URL and stops it after.
    `serialized`: one request at a time (SerializedMotoServer says when that matters)."""
    kind = SerializedMotoServer if serialized else ThreadedMotoServer
    server = kind(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A boto3 client of `service` that talks to the moto server at `endpoint`."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def reset_moto(endpoint: str) -> None:
    """Forget every resource the moto server at `endpoint` holds (moto's reset API)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(request).close()  # noqa: S310 - the moto server this module started
