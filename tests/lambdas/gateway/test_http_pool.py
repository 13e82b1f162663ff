"""Self-hosted targets keep their HTTP connections: OpenAIHttpChat against a real local server
(HTTP/1.1 keep-alive, plain and TLS) that counts the TCP connections it accepts and the TLS
handshakes it completes (tests/support/upstream.py). With urllib (the code before the pool) every
request was a new connection, and would be a new TLS handshake on an encrypted hop."""

from __future__ import annotations

import json
import ssl
import threading
import time

import pytest

from lambdas.gateway.deadline import Deadline
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.providers.http_pool import HttpPool
from lambdas.gateway.providers.openai_format import OpenAIHttpChat
from lambdas.gateway.schema import ChatCompletionRequest
from tests.support.upstream import Behaviour, self_signed_certificate, upstream

REQUEST = ChatCompletionRequest.model_validate(
    {"model": "self-hosted", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
)
N = 10


def deadline(seconds: float = 5.0) -> Deadline:
    return Deadline.start(seconds)


@pytest.fixture
def pool():
    pool = HttpPool()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_requests_share_one_kept_alive_connection():
    # The default pool (one per process), as the gateway builds the target: this is what the
    # Lambda keeps between invocations. With urllib.request.urlopen it was N connections.
    with upstream() as server:
        target = OpenAIHttpChat(base_url=server.url, model="llama")
        answers = [target.chat(REQUEST, deadline=deadline()) for _ in range(N)]
        assert [a.text for a in answers] == ["Hi"] * N
        assert (server.requests, server.connections) == (N, 1)


def test_a_new_target_object_reuses_the_process_pool():
    """build_gateway runs once per cold start, but a target built again still finds the connection."""
    with upstream() as server:
        OpenAIHttpChat(base_url=server.url, model="a").chat(REQUEST, deadline=deadline())
        OpenAIHttpChat(base_url=server.url + "/", model="b").chat(REQUEST, deadline=deadline())
        assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(pool):
    with upstream(Behaviour(idle_timeout=0.1)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        target.chat(REQUEST, deadline=deadline())
        time.sleep(0.4)  # the server closes the idle connection (an ALB after its idle timeout)
        assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
        assert server.connections == 2
        assert pool.stats.dropped_idle == 1  # seen closed before a request was written to it


def test_an_idle_connection_older_than_the_limit_is_not_reused():
    now = [0.0]
    pool = HttpPool(max_idle_seconds=50, clock=lambda: now[0])
    with upstream() as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        target.chat(REQUEST, deadline=deadline())
        now[0] = 51.0  # a Lambda thawed after a minute: the ALB has closed it by now
        target.chat(REQUEST, deadline=deadline())
        assert server.connections == 2
        assert pool.stats.dropped_idle == 1
    pool.close()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_kept_connection_closed_without_an_answer_is_retried_once_on_a_fresh_one(tls, request):
    certificate = request.getfixturevalue("certificate") if tls else None
    pool = HttpPool(ca_file=str(certificate[0]) if tls else None)
    # The server takes the 2nd request of a connection and closes it unanswered (a restart, or an
    # idle close racing the request): RemoteDisconnected (or SSLEOFError) on a reused connection.
    with upstream(Behaviour(drop=lambda n: n == 2), certificate=certificate) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        target.chat(REQUEST, deadline=deadline())
        assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
        assert (server.connections, server.requests, pool.stats.retried_stale) == (2, 3, 1)
    pool.close()


def test_an_answer_cut_short_on_a_kept_connection_is_not_sent_again(pool):
    """The server had the request (it started answering): resending could run it twice."""
    with upstream(Behaviour(cut=lambda n: n == 2)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        target.chat(REQUEST, deadline=deadline())
        with pytest.raises(ProviderError, match="unreachable") as caught:
            target.chat(REQUEST, deadline=deadline())
        assert caught.value.retryable  # the router decides, within the deadline
        assert (server.connections, server.requests, pool.stats.retried_stale) == (1, 2, 0)
        assert pool.idle_count() == 0


def test_a_fresh_connection_closed_without_an_answer_is_not_retried(pool):
    with upstream(Behaviour(drop=lambda n: True)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        with pytest.raises(ProviderError, match="unreachable") as caught:
            target.chat(REQUEST, deadline=deadline())
        assert caught.value.retryable  # the router retries and falls back, within the deadline
        assert (server.connections, server.requests, pool.stats.retried_stale) == (1, 1, 0)
        assert pool.idle_count() == 0


@pytest.mark.parametrize(
    ("status", "body", "retryable", "throttled", "client_message"),
    [
        (400, {"error": {"message": "maximum context length is 8192 tokens"}}, False, False,
         "maximum context length is 8192 tokens"),
        (422, {"error": "Input validation error"}, False, False, "Input validation error"),
        (429, {"error": "slow down"}, True, True, None),
        (503, {"detail": "loading"}, True, False, None),
    ],
)  # fmt: skip
def test_error_statuses_map_as_before_and_keep_the_connection(
    status, body, retryable, throttled, client_message, pool
):
    with upstream(Behaviour(status=status, body=json.dumps(body).encode())) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        for _ in range(2):
            with pytest.raises(ProviderError, match=f"HTTP {status}") as caught:
                target.chat(REQUEST, deadline=deadline())
            error = caught.value
            assert (error.retryable, error.throttled, error.client_message) == (
                retryable,
                throttled,
                client_message,
            )
        assert server.connections == 1  # an answered error status was read to its end: reusable


def test_connection_close_from_the_server_is_honoured(pool):
    with upstream(Behaviour(connection_close=True)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        for _ in range(3):
            target.chat(REQUEST, deadline=deadline())
        assert server.connections == 3
        assert pool.idle_count() == 0


def test_the_call_times_out_at_the_deadline_and_the_connection_is_dropped(pool):
    with upstream(Behaviour(delay=1.0)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        started = time.monotonic()
        with pytest.raises(ProviderError, match="timed out") as caught:
            target.chat(REQUEST, deadline=deadline(0.3))
        assert caught.value.timeout
        assert caught.value.retryable
        assert time.monotonic() - started < 0.8  # the deadline's time left, not the server's pace
        assert pool.idle_count() == 0  # a late answer must not be read as the next request's
        server.behaviour.delay = 0
        target.chat(REQUEST, deadline=deadline())
        assert server.connections == 2


def test_an_unreachable_server_is_a_retryable_failure(pool):
    with upstream() as server:
        url = server.url
    with pytest.raises(ProviderError, match="unreachable") as caught:
        OpenAIHttpChat(base_url=url, model="m", pool=pool).chat(REQUEST, deadline=deadline())
    assert caught.value.retryable
    assert not caught.value.timeout


def test_concurrent_requests_each_get_a_connection_and_idle_ones_are_bounded():
    pool = HttpPool(max_idle_per_host=2)
    with upstream(Behaviour(delay=0.05)) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        errors: list[BaseException] = []

        def work():
            try:
                for _ in range(5):
                    target.chat(REQUEST, deadline=deadline())
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert server.requests == 20
        assert server.connections <= 20 // 2  # reused, not one per request
        assert pool.idle_count() <= 2
    pool.close()


def test_tls_one_handshake_for_many_requests(certificate):
    pool = HttpPool(ca_file=str(certificate[0]))  # the private CA of the hop
    with upstream(certificate=certificate) as server:
        assert server.url.startswith("https://")
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        for _ in range(N):
            assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
        assert (server.requests, server.connections, server.handshakes) == (N, 1, 1)
        assert pool.ssl_context() is pool.ssl_context()  # one context, made once
    pool.close()


def test_tls_verifies_the_server_certificate_by_default(certificate, pool):
    with upstream(certificate=certificate) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)  # system CAs only
        with pytest.raises(ProviderError, match="CERTIFICATE_VERIFY_FAILED"):
            target.chat(REQUEST, deadline=deadline())
        assert server.handshakes == 0
    assert HttpPool().ssl_context().verify_mode == ssl.CERT_REQUIRED


# -- a private CA's certificate, read from AWS Private CA ------------------------------------------

CA_ARN = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def acm_pca(*answers):
    """An acm-pca client whose GetCertificateAuthorityCertificate answers `answers` in turn (a PEM
    string, or an error code); a call beyond them fails the Stubber."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "acm-pca", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for answer in answers:
        if answer.startswith("-----BEGIN"):
            stubber.add_response(
                "get_certificate_authority_certificate",
                {"Certificate": answer},
                {"CertificateAuthorityArn": CA_ARN},
            )
        else:
            stubber.add_client_error("get_certificate_authority_certificate", service_error_code=answer)
    stubber.activate()
    return client, stubber


def test_a_private_ca_is_read_once_and_verifies_the_hop(certificate):
    from lambdas.gateway.providers.http_pool import PrivateCaTrust

    client, stubber = acm_pca(certificate[0].read_text())
    pool = HttpPool(ca_data=PrivateCaTrust(lambda: client, CA_ARN))
    with upstream(certificate=certificate) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        for _ in range(3):
            assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
        pool.close()  # a new connection (and handshake) still needs no second read
        assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
        assert server.handshakes == 2
    stubber.assert_no_pending_responses()


def test_until_the_ca_can_be_read_nothing_is_sent_and_the_target_is_unreachable(certificate):
    """A denied or failed read leaves the pool without trust: the request fails as a retryable
    upstream error (the router falls back), no byte reaches the server, and the next request reads
    the CA again."""
    from lambdas.gateway.providers.http_pool import PrivateCaTrust

    client, stubber = acm_pca("AccessDeniedException", certificate[0].read_text())
    pool = HttpPool(ca_data=PrivateCaTrust(lambda: client, CA_ARN))
    with upstream(certificate=certificate) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        with pytest.raises(ProviderError, match=r"trusted CA could not be read.*AccessDenied") as caught:
            target.chat(REQUEST, deadline=deadline())
        assert caught.value.retryable
        assert (server.connections, server.handshakes) == (0, 0)
        assert target.chat(REQUEST, deadline=deadline()).text == "Hi"
    pool.close()
    stubber.assert_no_pending_responses()


def test_a_private_ca_is_the_only_ca_its_pool_trusts(certificate, tmp_path):
    """Another certificate (here: another self-signed CA) is refused by a pool that trusts the CA."""
    from lambdas.gateway.providers.http_pool import PrivateCaTrust

    other = self_signed_certificate(tmp_path)
    client, _ = acm_pca(certificate[0].read_text())
    pool = HttpPool(ca_data=PrivateCaTrust(lambda: client, CA_ARN))
    with upstream(certificate=other) as server:
        target = OpenAIHttpChat(base_url=server.url, model="m", pool=pool)
        with pytest.raises(ProviderError, match="CERTIFICATE_VERIFY_FAILED"):
            target.chat(REQUEST, deadline=deadline())
    pool.close()


def test_the_gateway_gives_a_target_with_trust_ca_a_pool_that_trusts_that_ca(certificate):
    from lambdas.gateway.config import Settings, build_gateway

    client, _ = acm_pca(certificate[0].read_text())
    with upstream(certificate=certificate) as server:
        settings = Settings.model_validate(
            {"chat": {"a": [{"kind": "openai_http", "url": server.url, "model": "m", "trust_ca": CA_ARN}]}}
        )
        gateway = build_gateway(settings, lambda service: {"acm-pca": client}[service])
        (shaped,) = gateway.chat_routes["a"]
        assert shaped.target.chat(REQUEST, deadline=deadline()).text == "Hi"
        assert shaped.target.pool.ca_data.arn == CA_ARN
    with pytest.raises(ValueError, match="trust_ca is for openai_http targets with an https:// url"):
        Settings.model_validate(
            {"chat": {"a": [{"kind": "openai_http", "url": "http://h", "model": "m", "trust_ca": CA_ARN}]}}
        )
