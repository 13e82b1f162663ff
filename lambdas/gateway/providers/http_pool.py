"""Kept-alive HTTP/1.1 connections to self-hosted model servers, reused across requests and across
the invocations of a warm Lambda (stdlib `http.client` only: no runtime dependency).

Opening a connection per request costs a TCP handshake, and a TLS handshake once the hop to the
load balancer is encrypted; a connection kept in the process is reused by the next request
(`bench/upstream.py` measures both). AWS's Lambda guide: "Use a keep-alive directive to maintain
persistent connections. Lambda purges idle connections over time. Attempting to reuse an idle
connection when invoking a function will result in a connection error" ("Best practices for working
with AWS Lambda functions", https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html).
So a kept connection may be dead when it is taken again; the pool:
- drops an idle connection older than `max_idle_seconds` (50 s: under the internal ALB's connection
  idle timeout, 60 s by default, after which the ALB closes it; "Edit attributes for your
  Application Load Balancer", Connection idle timeout,
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html),
  and one whose socket is readable while idle (the server closed it or sent something unasked);
- retries a request once on a fresh connection when a REUSED connection fails with
  RemoteDisconnected (closed before any response byte), BrokenPipe or ConnectionReset; a fresh
  connection's failure, a timeout and an error after the response started are never retried;
- reads every response to its end, and keeps the connection only when the response allows it
  (HTTP/1.1 without `Connection: close`, a known length: `HTTPResponse.will_close` is false) and no
  error happened on it.
Each call takes its timeout (the request deadline's time left) on the socket; the connect (and TLS
handshake) waits at most CONNECT_TIMEOUT_SECONDS of it, like the AWS clients'.

Thread safety: a connection is used by one request at a time (taken out of the idle list under a
lock and put back after); the local server is threaded, a Lambda environment runs one request at a
time. At most `max_idle_per_host` idle connections are kept per (scheme, host, port); more may be
open at once under concurrency and are closed instead of kept.

TLS: one `ssl.SSLContext` per pool, made once, with default verification (certificate chain and
host name). The hosts' internal load balancers serve HTTPS for `<host>.<domain>`
(stacks/components/host_names.py). With a certificate from an AWS Private CA (target `trust_ca`), the
pool trusts that CA only: `ca_data` returns its PEM certificates, read once with
GetCertificateAuthorityCertificate (`PrivateCaTrust`); until that read succeeds, connecting fails
with TrustUnavailable (an OSError: the target is unreachable, the router falls back) and the next
connection tries again.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..deadline import CONNECT_TIMEOUT_SECONDS

MAX_IDLE_PER_HOST = 8
MAX_IDLE_SECONDS = 50.0  # under the ALB's default 60 s connection idle timeout
# A reused connection the server already closed fails with one of these before any response byte
# (RemoteDisconnected is a ConnectionResetError: https://docs.python.org/3/library/http.client.html;
# over TLS a peer that closes without close_notify gives SSLEOFError).
STALE = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
)

Key = tuple[str, str, int]


class TrustUnavailable(OSError):
    """The CA to verify an HTTPS hop with could not be read: nothing is sent unverified."""


@dataclass(frozen=True)
class PrivateCaTrust:
    """The PEM certificate and chain of an AWS Private CA (acm-pca GetCertificateAuthorityCertificate:
    `Certificate`, and `CertificateChain` unless the CA is a root;
    https://docs.aws.amazon.com/privateca/latest/APIReference/API_GetCertificateAuthorityCertificate.html).
    `client()` returns an acm-pca client."""

    client: Callable[[], Any]
    arn: str

    def __call__(self) -> str:
        answer = self.client().get_certificate_authority_certificate(CertificateAuthorityArn=self.arn)
        return "\n".join(filter(None, (answer["Certificate"], answer.get("CertificateChain"))))


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class _Idle:
    connection: http.client.HTTPConnection
    since: float


@dataclass
class PoolStats:
    """What the pool did (tests and the benchmark read it)."""

    opened: int = 0
    reused: int = 0
    retried_stale: int = 0
    dropped_idle: int = 0


@dataclass
class HttpPool:
    max_idle_per_host: int = MAX_IDLE_PER_HOST
    max_idle_seconds: float = MAX_IDLE_SECONDS
    ca_file: str | None = None  # a private CA's PEM bundle for an HTTPS hop (default: system CAs)
    ca_data: Callable[[], str] | None = field(default=None, repr=False)  # or its PEM text, read on first use
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    stats: PoolStats = field(default_factory=PoolStats)

    def __post_init__(self) -> None:
        if self.max_idle_per_host < 0:
            raise ValueError("max_idle_per_host must be >= 0")
        self._lock = threading.Lock()
        self._idle: dict[Key, list[_Idle]] = {}
        self._ssl: ssl.SSLContext | None = None

    # -- connections -------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """Made once per pool: default verification, the private CA bundle if one is given (then
        only that CA is trusted: `create_default_context` loads the system CAs only without one)."""
        with self._lock:
            if self._ssl is None:
                cadata = None
                if self.ca_data is not None:
                    try:
                        cadata = self.ca_data()
                    except Exception as error:  # any failure to read the CA: no trust, no connection
                        raise TrustUnavailable(f"the trusted CA could not be read ({error!r})") from None
                self._ssl = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
            return self._ssl

    def _open(self, key: Key, timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = key
        connect = min(CONNECT_TIMEOUT_SECONDS, timeout)
        if scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=connect, context=self.ssl_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=connect)
        try:
            connection.connect()  # TCP (and TLS) handshake within the connect timeout
        except BaseException:
            connection.close()
            raise
        with self._lock:
            self.stats.opened += 1
        return connection

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        """An idle connection that still looks alive, newest first; dead or old ones are closed."""
        now = self.clock()
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                entry = idle.pop()
            if now - entry.since <= self.max_idle_seconds and _looks_alive(entry.connection):
                return entry.connection
            entry.connection.close()
            with self._lock:
                self.stats.dropped_idle += 1

    def _give_back(self, key: Key, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(_Idle(connection, self.clock()))
                return
        connection.close()

    def idle_count(self, key: Key | None = None) -> int:
        with self._lock:
            if key is not None:
                return len(self._idle.get(key, []))
            return sum(len(idle) for idle in self._idle.values())

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for entries in idle.values():
            for entry in entries:
                entry.connection.close()

    # -- requests ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> Response:
        """Send one request and read the whole response, on a kept connection when there is one.

        Raises what http.client and the socket raise: TimeoutError, OSError (refused, reset,
        ssl.SSLError), http.client.HTTPException (a malformed or cut response)."""
        with self.stream(method, url, body=body, headers=headers, timeout=timeout) as response:
            try:
                payload = response.read()  # to the end, so the connection can carry the next request
            except STALE as error:  # cut mid-answer: the server had the request, never resend it
                raise http.client.IncompleteRead(b"") from error
        return Response(
            status=response.status, reason=response.reason, headers=response.headers, body=payload
        )

    def stream(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> StreamedResponse:
        """Send one request and return the response before its body is read (server-sent events),
        on a kept connection when there is one (retried once on a fresh one if the kept connection
        turns out closed before any response byte, as `request`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        key: Key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = _request_target(parts)
        deadline = self.clock() + timeout
        connection = self._take(key)
        reused = connection is not None
        if connection is None:
            connection = self._open(key, timeout)
        while True:
            try:
                left = deadline - self.clock()
                if left <= 0:
                    raise TimeoutError("no time left for the request")
                if connection.sock is not None:
                    connection.sock.settimeout(left)
                connection.timeout = left
                connection.request(method, target, body=body, headers=dict(headers or {}))
                response = connection.getresponse()
            except STALE:
                connection.close()
                if not reused:
                    raise
                with self._lock:
                    self.stats.retried_stale += 1
                reused = False
                connection = self._open(key, max(deadline - self.clock(), 0.001))
                continue
            except BaseException:
                connection.close()
                raise
            break
        if reused:
            with self._lock:
                self.stats.reused += 1
        return StreamedResponse(self, key, connection, response, deadline)


class StreamedResponse:
    """A response read as it arrives (`chunks()`); its connection goes back to the pool only when the
    body was read to the end and the server keeps it open, else it is closed. Use it in `with`."""

    def __init__(
        self,
        pool: HttpPool,
        key: Key,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        deadline: float,
    ) -> None:
        self.pool = pool
        self.key = key
        self.connection = connection
        self.response = response
        self.deadline = deadline
        self.status = response.status
        self.reason = response.reason
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self._done = False

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """The body as it arrives (chunked transfer decoded); each read waits at most the time left."""
        while True:
            left = self.deadline - self.pool.clock()
            if left <= 0:
                raise TimeoutError("no time left for the stream")
            if self.connection.sock is not None:
                self.connection.sock.settimeout(left)
            data = self.response.read1(size)
            if not data:
                if self.response.length:  # the connection ended before Content-Length: a cut answer
                    raise http.client.IncompleteRead(b"", self.response.length)
                # read1 of a Content-Length body ends without closing the response, and http.client
                # sends nothing more on a connection whose response is open: read() closes it.
                self.response.read()
                self._done = True
                return
            yield data

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        if self._done and not self.response.will_close:
            self.pool._give_back(self.key, self.connection)
        else:
            self.connection.close()

    def __enter__(self) -> StreamedResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _request_target(parts: SplitResult) -> str:
    """Path and query of a split URL (fields by position: `parts.query` reads like a DynamoDB call
    to the access checks' scan of boto3 calls)."""
    path, query = parts[2] or "/", parts[3]
    return f"{path}?{query}" if query else path


def _looks_alive(connection: http.client.HTTPConnection) -> bool:
    """An idle kept connection has nothing to read: readable means the server closed it (EOF) or
    sent something unasked; either way it cannot carry a request."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


_SHARED: dict[str | None, HttpPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(trust: PrivateCaTrust | None = None) -> HttpPool:
    """One pool per process, made on first use and kept for a warm Lambda's life: the system CAs' pool,
    and one per private CA (its CA read once, on that pool's first connection)."""
    key = trust.arn if trust is not None else None
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = HttpPool(ca_data=trust)
        return pool
