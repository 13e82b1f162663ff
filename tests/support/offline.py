"""Forbid outbound network access: Python sockets in-process, Node via NODE_OPTIONS."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

NODE_GUARD = Path(__file__).with_name("no_network.js")


class NetworkForbidden(RuntimeError):
    pass


def install_node_guard() -> None:
    """Every Node process started from now on (the jsii kernel included) loads the guard."""
    option = f"--require {NODE_GUARD}"
    current = os.environ.get("NODE_OPTIONS", "")
    if option not in current:
        os.environ["NODE_OPTIONS"] = f"{current} {option}".strip()


@contextlib.contextmanager
def forbid_python_network() -> Iterator[None]:
    """Inside the block, connecting a socket or resolving a name raises NetworkForbidden.

    Unix-domain sockets stay allowed: they never leave the machine.
    """

    def refuse(*_args, **_kwargs):
        raise NetworkForbidden("network access is forbidden here")

    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self, address, *args):
        if self.family == socket.AF_UNIX:
            return original_connect(self, address, *args)
        return refuse()

    def guarded_connect_ex(self, address, *args):
        if self.family == socket.AF_UNIX:
            return original_connect_ex(self, address, *args)
        return refuse()

    patches = {
        (socket.socket, "connect"): guarded_connect,
        (socket.socket, "connect_ex"): guarded_connect_ex,
        (socket, "getaddrinfo"): refuse,
        (socket, "gethostbyname"): refuse,
        (socket, "create_connection"): refuse,
    }
    saved = {key: getattr(*key) for key in patches}
    try:
        for (owner, name), replacement in patches.items():
            setattr(owner, name, replacement)
        yield
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)
