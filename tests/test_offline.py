"""Synthesis is offline: the session synthesizes every profile with the network forbidden.

The session fixture synthesizes inside `forbid_python_network()`, and the jsii kernel (Node) was
started with the Node guard preloaded. These tests prove both guards bite, so a synthesis that tried
to reach the network would have failed the fixture and with it the whole suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.offline import NODE_GUARD, NetworkForbidden, forbid_python_network


def test_python_connections_and_lookups_are_refused_inside_the_guard():
    with forbid_python_network():
        with pytest.raises(NetworkForbidden):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        with pytest.raises(NetworkForbidden):
            socket.getaddrinfo("pypi.org", 443)
        with pytest.raises(NetworkForbidden), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.connect(("127.0.0.1", 9))
    assert socket.getaddrinfo("127.0.0.1", 9)  # restored afterwards


def test_node_processes_of_this_session_refuse_connections():
    result = subprocess.run(
        ["node", "-e", "require('net').connect(443, '127.0.0.1')"],  # noqa: S607 - node from PATH, like the CDK CLI
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "network access is forbidden during synthesis" in result.stderr


def test_the_jsii_kernel_that_synthesized_runs_with_the_node_guard(synthesized):
    """The Node processes under this pytest process (the jsii kernel) were started with the guard."""
    assert synthesized.templates  # the kernel exists and has synthesized every profile
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    node_environments = []
    for pid in children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environment = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"node" in command:
            node_environments.append(environment)
    assert node_environments, "no jsii kernel process found under the test process"
    assert all(str(NODE_GUARD).encode() in env for env in node_environments)
