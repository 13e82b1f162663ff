"""A local OpenAI-compatible model server on loopback (HTTP/1.1 keep-alive, optionally TLS) that
counts the TCP connections it accepts and the TLS handshakes it completes: what a self-hosted
target's load balancer sees of the gateway. Used by tests/lambdas/gateway/test_http_pool.py and
bench/upstream.py. The TLS certificate is self-signed, made at run time with `cryptography`."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (PEM files in `directory`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream-cert.pem", directory / "upstream-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Behaviour:
    """How the server answers. `drop(n)`: close the connection without answering its n-th request
    (1-based); `idle_timeout`: close a kept connection idle that long (seconds)."""

    status: int = 200
    body: bytes = field(default_factory=lambda: json.dumps(ANSWER).encode())
    delay: float = 0.0
    connection_close: bool = False
    drop: Callable[[int], bool] = lambda n: False
    cut: Callable[[int], bool] = lambda n: False  # answer half the body of the n-th request, close
    idle_timeout: float | None = 10.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # persistent connections unless a side says close
    # Headers and body leave in separate writes: without TCP_NODELAY Nagle holds the body until the
    # client's delayed ACK, ~40 ms per request on a kept connection. asyncio servers (uvicorn, under
    # vLLM's OpenAI server) set it on every TCP connection (asyncio/selector_events.py _set_nodelay).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.behaviour.idle_timeout  # StreamRequestHandler sets it on the socket
        self.served = 0
        super().setup()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.served += 1
        behaviour = self.server.behaviour
        with self.server.lock:
            self.server.requests += 1
        if behaviour.drop(self.served):
            self.close_connection = True  # closed with no response byte: the client sees EOF
            return
        if behaviour.delay:
            time.sleep(behaviour.delay)
        self.send_response(behaviour.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(behaviour.body)))
        if behaviour.connection_close:
            self.send_header("Connection", "close")
        self.end_headers()
        if behaviour.cut(self.served):
            self.wfile.write(behaviour.body[: len(behaviour.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(behaviour.body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.lock = threading.Lock()
        self.connections = 0  # TCP connections accepted
        self.handshakes = 0  # TLS handshakes completed
        self.requests = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address) -> None:
        return None  # a client that gave up (a test's timeout) is not the server's failure

    def get_request(self):
        sock, address = super().get_request()
        with self.lock:
            self.connections += 1
        if self.tls is not None:
            sock.settimeout(5)
            sock = self.tls.wrap_socket(sock, server_side=True)  # handshake here; fails -> dropped
            sock.settimeout(None)
            with self.lock:
                self.handshakes += 1
        return sock, address


@dataclass
class Upstream:
    server: _Server
    url: str

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def handshakes(self) -> int:
        return self.server.handshakes

    @property
    def requests(self) -> int:
        return self.server.requests

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour


@contextmanager
def upstream(
    behaviour: Behaviour | None = None, *, certificate: tuple[Path, Path] | None = None
) -> Iterator[Upstream]:
    """Serve on a free loopback port (https with `certificate`) until the block ends."""
    tls = None
    if certificate is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*certificate)
    server = _Server(behaviour or Behaviour(), tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield Upstream(server, f"{scheme}://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
