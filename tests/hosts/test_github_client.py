"""``GitHubClient`` against the stub over real HTTP: conditional requests, rate limits, error reasons, retries,
TLS (a CA bundle, a wrong scheme), proxies, and a GitHub App's installation tokens through link and sync."""

import datetime as dt
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from devlink.hosts.base import HostError, RemoteAccount, RemoteRepository
from devlink.hosts.github import Credential, GitHubClient, HostSettings, RateLimit
from devlink.hosts.protocol import HookTarget
from devlink.runtime import Runtime
from devlink.store.models import Account, Host, PullRequest, Repository
from devlink.sync.accounts import AccountOptions, configure_host, link_account
from devlink.sync.jobs import run_sync
from github_stub import GitHubStub
from github_world import TOKEN, GitHubWorld


class DictCache:
    """A ``ConditionalCache`` in memory (the engine's is in the database)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, str]] = {}

    def get(self, url: str) -> tuple[str, str] | None:
        return self.entries.get(url)

    def put(self, url: str, etag: str, body: str) -> None:
        self.entries[url] = (etag, body)


def settings(github: GitHubWorld, **extra: Any) -> HostSettings:
    return HostSettings(web_url=github.stub.web_url, api_url=github.stub.api_url, **extra)


def client(github: GitHubWorld, **extra: Any) -> GitHubClient:
    cache, on_rate = extra.pop("cache", None), extra.pop("on_rate", None)
    return GitHubClient(settings(github, **extra), Credential(token=TOKEN), cache=cache, on_rate=on_rate)


def remaining(github: GitHubWorld, token: str = TOKEN) -> int:
    answer = httpx.get(f"{github.stub.api_url}/rate_limit", headers={"Authorization": f"token {token}"})
    return int(answer.json()["resources"]["core"]["remaining"])


def failure(call: Any) -> HostError:
    with pytest.raises(HostError) as caught:
        call()
    return caught.value


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GitHubClient, "retry_backoff", 0.01)


# -- conditional requests and rate limits ---------------------------------------------


def test_unchanged_answers_are_304_and_cost_no_quota(github: GitHubWorld) -> None:
    github.repo("octo", "api")
    cache = DictCache()
    with client(github, cache=cache) as api:
        first = api.get_json("/repos/octo/api")
        before, mark = remaining(github), len(github.stub.requests)
        again = api.get_json("/repos/octo/api")
        assert again == first
        [request] = github.stub.requests[mark:]
        assert request.headers["if-none-match"] == cache.entries["/repos/octo/api"][0]
        assert remaining(github) == before  # the 304 was free
        github.stub.repo("octo", "api")["description"] = "changed"
        assert api.get_json("/repos/octo/api")["description"] == "changed"
        assert remaining(github) == before - 1


def test_every_answer_reports_the_rate_limit_and_ghes_without_limits_reports_none(github: GitHubWorld) -> None:
    reset = int(time.time()) + 999
    github.stub.set_rate_limit(777, limit=5000, reset=reset)
    seen: list[RateLimit] = []
    with client(github, on_rate=seen.append) as api:
        api.get_json("/user")
        assert seen == [RateLimit(5000, 776, dt.datetime.fromtimestamp(reset, dt.UTC))]
        github.stub.fail_next("GET", "/user", 404)
        failure(lambda: api.get_json("/user"))
        assert len(seen) == 2 and seen[-1].remaining == 776  # error answers report it too (this one was free)
        github.stub.rate_limits = False
        assert api.get_json("/user")["login"] == "octo"
        assert len(seen) == 2


# -- what each failure becomes ---------------------------------------------------------


@pytest.mark.parametrize(("status", "reason"), [
    (401, "auth"), (403, "permission"), (404, "not_found"), (410, "gone"), (422, "invalid"), (429, "rate_limited"),
])
def test_statuses_map_to_reasons(github: GitHubWorld, status: int, reason: str) -> None:
    github.repo("octo", "api")
    github.stub.fail_next("GET", "/repos/octo/api", status)
    with client(github) as api:
        error = failure(lambda: api.get_json("/repos/octo/api"))
    assert error.reason == reason, error.message
    assert github.stub.web_url.split("//")[1] in error.message  # names the host
    if status == 429:
        assert error.retry_after == 60  # no Retry-After: a minute


@pytest.mark.parametrize(("status", "headers", "wait"), [
    (403, {"X-RateLimit-Remaining": "0"}, 500),  # primary: until X-RateLimit-Reset
    (403, {"Retry-After": "120"}, 120),  # secondary (abuse) limit
    (429, {"Retry-After": "90"}, 90),
])
def test_limit_reached_is_rate_limited_with_the_wait(
    github: GitHubWorld, status: int, headers: dict[str, str], wait: int
) -> None:
    reset = int(time.time()) + 500
    github.stub.fail_next("GET", "/user", status, headers={**headers, "X-RateLimit-Reset": str(reset)})
    seen: list[RateLimit] = []
    with client(github, on_rate=seen.append) as api:
        error = failure(lambda: api.get_json("/user"))
    assert error.reason == "rate_limited" and error.retryable
    assert error.retry_after is not None and abs(error.retry_after - wait) <= 5
    assert len(github.stub.requests) == 1  # not retried: the engine waits, not this process
    if "X-RateLimit-Remaining" in headers:
        assert seen[-1].remaining == 0


def test_the_stub_running_out_of_budget_is_rate_limited(github: GitHubWorld) -> None:
    github.stub.set_rate_limit(1, reset=time.time() + 300)
    with client(github) as api:
        api.get_json("/user")
        error = failure(lambda: api.get_json("/user"))
    assert error.reason == "rate_limited" and "rate limit reached" in error.message
    assert error.retry_after is not None and 290 <= error.retry_after <= 300


def test_server_errors_are_retried_with_growing_back_off_read_when_the_client_is_made(
    github: GitHubWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import githubkit.core

    waits: list[float] = []
    monkeypatch.setattr(githubkit.core.time, "sleep", waits.append)  # record githubkit's back-off, do not wait
    monkeypatch.setattr(GitHubClient, "retry_backoff", 0.25)
    api = client(github)
    monkeypatch.setattr(GitHubClient, "retry_backoff", 7.0)  # too late for ``api``
    github.stub.fail_next("GET", "/user", 502, times=2)
    with api:
        assert api.get_json("/user")["login"] == "octo"
        assert waits == [0.25, 0.5]
        waits.clear()
        github.stub.fail_next("GET", "/user", 503, times=3)  # 503 answers an HTML page, as recorded
        error = failure(lambda: api.get_json("/user"))
    assert waits == [0.25, 0.5]  # two retries, then give up
    assert error.reason == "server" and "503" in error.message and error.retry_after == 60
    assert len([r for r in github.stub.requests if r.path.endswith("/user")]) == 6
    with client(github) as later:  # a client made now takes the new value
        github.stub.fail_next("GET", "/user", 500)
        waits.clear()
        later.get_json("/user")
        assert waits == [7.0]


class Silent:
    """A port whose connections complete (the kernel's backlog) but are never answered; no thread involved."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        """How many connections are waiting (each is taken, counted and closed)."""
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


def test_timeouts_are_retried_then_network(github: GitHubWorld) -> None:
    silent = Silent()
    try:
        host = HostSettings(web_url=f"http://127.0.0.1:{silent.port}", api_url=f"http://127.0.0.1:{silent.port}/api/v3",
                            timeout=0.2)
        with GitHubClient(host, Credential(token=TOKEN)) as api:
            error = failure(lambda: api.get_json("/user"))
        attempts = silent.connections()
    finally:
        silent.close()
    assert error.reason == "network" and error.retryable
    assert error.message == f"127.0.0.1:{silent.port} did not answer within 0.2 s"
    assert attempts == 3


def test_refused_connection_is_network_naming_the_host() -> None:
    from servers import free_port

    port = free_port()
    host = HostSettings(web_url=f"http://127.0.0.1:{port}", api_url=f"http://127.0.0.1:{port}/api/v3")
    with GitHubClient(host, Credential(token=TOKEN)) as api:
        error = failure(lambda: api.get_json("/user"))
    assert error.reason == "network" and f"cannot reach 127.0.0.1:{port}" in error.message


def test_credentials_never_show_in_errors_or_repr(github: GitHubWorld) -> None:
    github.stub.fail_next("GET", "/user", 401)
    with client(github) as api:
        error = failure(lambda: api.get_json("/user"))
        assert TOKEN not in repr(api.credential) and TOKEN not in error.message and TOKEN not in (error.hint or "")


# -- TLS and proxies ----------------------------------------------------------------------


def test_https_against_a_plain_http_port_is_tls_naming_the_host(runtime: Runtime, github: GitHubWorld) -> None:
    web = f"https://127.0.0.1:{github.stub.port}"
    error = failure(lambda: link_account(runtime, AccountOptions(name="octo", web_url=web, token=TOKEN)))
    assert error.reason == "tls"
    assert f"TLS failure talking to 127.0.0.1:{github.stub.port}" in error.message
    assert "http vs https" in (error.hint or "")
    with runtime.sessions() as session:
        assert session.scalars(select(Account)).all() == []


def test_a_ca_bundle_that_does_not_exist_is_a_clear_error(
    runtime: Runtime, github: GitHubWorld, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    error = failure(lambda: client(github, ca_bundle=missing))
    assert error.reason == "tls" and error.message.startswith(f"cannot read the CA bundle {missing}")
    # set on the host of a linked account: its repositories record the same reason
    github.repo("octo", "api")
    _account_id, found = link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                              link="all"))
    configure_host(runtime, AccountOptions(name="", web_url=github.stub.web_url, ca_bundle=missing))
    run_sync(runtime, found.linked[0], full=False)
    with runtime.sessions() as session:
        row = session.get(Repository, found.linked[0])
        assert row is not None
        assert row.last_error_reason == "tls" and missing in (row.last_error_message or "")


class Relay:
    """An HTTP relay on loopback: a forward proxy (``target=None``: requests name absolute URLs), or, with a
    ``target`` and a certificate, HTTPS in front of a plain-HTTP server.  Records what it was asked for."""

    def __init__(self, target: str | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.seen: list[str] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def relay(self) -> None:
                relay.seen.append(f"{self.command} {self.path}")
                url = urlsplit(self.path if target is None else target + self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection", "keep-alive", "proxy-authorization")}
                upstream = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
                try:
                    upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""),
                                     body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                if answer.status not in (204, 304):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if answer.status not in (204, 304):
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = relay

        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                if context is None:
                    super().finish_request(request, client_address)
                    return
                request.settimeout(10)  # the handshake, in this connection's own thread
                try:
                    wrapped = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # e.g. a client that does not trust the certificate
                try:
                    super().finish_request(wrapped, client_address)
                finally:
                    wrapped.close()

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def test_a_link_that_failed_on_a_bad_ca_bundle_leaves_no_setting_behind(
    runtime: Runtime, github: GitHubWorld, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    failure(lambda: link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                         ca_bundle=missing, may_set_up_host=True)))
    _account_id, found = link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN))
    assert found.account_id


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devlink test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_host(github: GitHubWorld, tmp_path: Path) -> Iterator[tuple[Relay, Path]]:
    """HTTPS on loopback (a certificate from a CA of our own) in front of the stub; and that CA's PEM file."""
    ca, cert, key = _certificates(tmp_path)
    relay = Relay(github.stub.web_url, tls=(cert, key))
    yield relay, ca
    relay.close()


def test_an_untrusted_certificate_is_tls_and_the_ca_bundle_fixes_it(
    runtime: Runtime, github: GitHubWorld, tls_host: tuple[Relay, Path]
) -> None:
    relay, ca = tls_host
    github.repo("octo", "api")
    web = f"https://127.0.0.1:{relay.port}"
    github.stub.repo("octo", "api")["clone_url"] = f"{web}/octo/api.git"  # git on the host's (TLS) origin too
    error = failure(lambda: link_account(runtime, AccountOptions(name="octo", web_url=web, token=TOKEN)))
    assert error.reason == "tls" and "certificate not trusted" in error.message
    assert f"127.0.0.1:{relay.port}" in error.message and "CA bundle" in (error.hint or "")
    account_id, found = link_account(runtime, AccountOptions(name="octo", web_url=web, token=TOKEN, ca_bundle=str(ca),
                                                             link="all", may_set_up_host=True))
    assert found.found == 1 and len(found.linked) == 1
    with runtime.sessions() as session:
        host = session.scalars(select(Host).where(Host.name == f"127.0.0.1:{relay.port}")).one()
        assert host.ca_bundle == str(ca) and host.api_url == f"{web}/api/v3"
    assert relay.seen and all(" /api/v3/" in line for line in relay.seen)  # everything went over TLS
    github.stub.add_pull("octo", "api", title="API-1 over TLS", head="tls")
    run_sync(runtime, found.linked[0], full=True)  # the bundle stays with the host for every later call
    with runtime.sessions() as session:
        row = session.get(Repository, found.linked[0])
        assert row is not None and row.last_error_reason is None, row.last_error_message
        assert [p.title for p in session.scalars(select(PullRequest))] == ["API-1 over TLS"]
    assert account_id


@pytest.fixture
def proxy() -> Iterator[Relay]:
    running = Relay()
    yield running
    running.close()


def test_a_proxy_setting_is_honoured_and_wins_over_the_environment(
    github: GitHubWorld, proxy: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("http_proxy", dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with client(github, proxy=proxy.url) as api:
        assert api.get_json("/user")["login"] == "octo"
    assert proxy.seen == [f"GET {github.stub.api_url}/user"]
    with client(github) as api:  # no setting: the environment's proxy is used (and here it is down)
        assert failure(lambda: api.get_json("/user")).reason == "network"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    with client(github) as api:
        assert api.get_json("/user")["login"] == "octo"
    assert len(proxy.seen) == 2


def test_a_host_proxy_carries_the_sync_api_calls(runtime: Runtime, github: GitHubWorld, proxy: Relay) -> None:
    github.repo("octo", "api")
    github.stub.add_pull("octo", "api", title="API-1 via proxy", head="p")
    _account_id, found = link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                              link="all", proxy=proxy.url, may_set_up_host=True))
    run_sync(runtime, found.linked[0], full=True)
    assert f"GET {github.stub.api_url}/user" in proxy.seen
    assert f"GET {github.stub.api_url}/repos/octo/api/pulls/1" in proxy.seen
    with runtime.sessions() as session:
        assert [p.title for p in session.scalars(select(PullRequest))] == ["API-1 via proxy"]
    api_calls = [r for r in github.stub.requests if r.path.startswith("/api/v3")]
    assert len(api_calls) == len([s for s in proxy.seen if "/api/v3/" in s])  # every API call went through it
    assert any("/octo/api.git/" in s for s in proxy.seen)  # and git, to the host's repositories, too


# -- GitHub App -------------------------------------------------------------------------------


def _installation_token(github: GitHubWorld) -> str:
    """The token of the last API request made with an installation token."""
    for request in reversed(github.stub.requests):
        value = request.headers.get("authorization", "")
        if value.startswith("token ghs_"):
            return value.split(" ", 1)[1]
    raise AssertionError("no installation token was used")


def test_github_app_links_discovers_its_installation_and_clones_with_its_token(
    runtime: Runtime, github: GitHubWorld
) -> None:
    stub = github.stub
    github.repo("octo", "api")
    github.repo("octo", "web")
    github.repo("octo", "private", private=True)
    pem = stub.add_app(7101)
    installation = stub.add_installation(7101, "octo", repositories=["api", "private"])
    account_id, found = link_account(runtime, AccountOptions(
        name="octo", web_url=stub.web_url, options={"app_id": "7101", "app_private_key": pem},
        link=["api", "private"]))
    assert sorted(found.new) == ["octo/api", "octo/private"]  # only what the installation may see
    assert len(found.linked) == 2
    with runtime.sessions() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.auth_kind == "app" and account.credential is None
        assert json.loads(account.options or "{}") == {"installation_id": str(installation)}
        host = session.scalars(select(Host)).one()
        stored = json.loads(host.options or "{}")
        assert stored["app_id"] == "7101" and stored["app_private_key"] and pem not in (host.options or "")
        assert runtime.vault.decrypt(stored["app_private_key"]) == pem
    issued = stub.tokens_issued
    assert issued == 1
    stub.add_pull("octo", "private", title="API-5 from the app", head="x")
    for repository_id in found.linked:
        [result] = run_sync(runtime, repository_id, full=True)
        assert result.commits_new == 1  # cloned over git with the installation token as x-access-token's password
    with runtime.sessions() as session:
        assert [p.title for p in session.scalars(select(PullRequest))] == ["API-5 from the app"]
        assert all(r.last_error_reason is None for r in session.scalars(select(Repository)))
    assert stub.tokens_issued == issued  # the cached token served every call
    assert all(r.headers.get("authorization", "").startswith(("token ghs_", "Bearer ", "Basic"))
               for r in stub.requests if r.path.startswith("/api/v3"))


def test_github_app_installation_tokens_are_refreshed_before_they_expire(
    runtime: Runtime, github: GitHubWorld
) -> None:
    stub = github.stub
    stub.installation_token_ttl = 62  # githubkit renews a minute before expires_at: this one is kept ~1-2 s
    github.repo("octo", "api")
    pem = stub.add_app(7102)
    stub.add_installation(7102, "octo")
    _account_id, found = link_account(runtime, AccountOptions(
        name="octo", web_url=stub.web_url, options={"app_id": "7102", "app_private_key": pem},
        link="all"))
    [repository_id] = found.linked
    run_sync(runtime, repository_id, full=True)
    first, issued = _installation_token(github), stub.tokens_issued
    time.sleep(2.5)  # past the renewal point (expires_at - 60 s), still well before expires_at
    stub.add_pull("octo", "api", title="API-1", head="b")
    github.work["octo/api"].commit("API-1 more")
    github.work["octo/api"].git("push", "-q", "origin", "main")
    [result] = run_sync(runtime, repository_id, full=False)
    assert result.commits_new == 1 and result.pull_requests == 1
    assert stub.tokens_issued > issued
    second = _installation_token(github)
    assert second != first
    assert stub.token_valid(first)  # renewed before the old one ran out
    with runtime.sessions() as session:
        row = session.get(Repository, repository_id)
        assert row is not None and row.last_error_reason is None


def test_github_app_soft_sync_of_an_unchanged_repository_costs_no_quota(
    runtime: Runtime, github: GitHubWorld
) -> None:
    stub = github.stub
    github.repo("octo", "api")
    pem = stub.add_app(7103)
    stub.add_installation(7103, "octo")
    _account_id, found = link_account(runtime, AccountOptions(
        name="octo", web_url=stub.web_url, options={"app_id": "7103", "app_private_key": pem},
        link="all"))
    [repository_id] = found.linked
    stub.add_pull("octo", "api", title="API-1", head="b")
    run_sync(runtime, repository_id, full=True)
    run_sync(runtime, repository_id, full=False)
    token = _installation_token(github)
    before = remaining(github, token)
    run_sync(runtime, repository_id, full=False)
    assert remaining(github, token) == before


def test_github_app_with_a_wrong_key_is_refused_clearly(runtime: Runtime, github: GitHubWorld) -> None:
    stub = github.stub
    stub.add_app(7104)
    stub.add_installation(7104, "octo")
    wrong = stub.add_app(7105)  # another app's key
    error = failure(lambda: link_account(runtime, AccountOptions(
        name="octo", web_url=stub.web_url, options={"app_id": "7104", "app_private_key": wrong})))
    assert error.reason == "auth" and "7104" in error.message
    assert re.search(r"BEGIN|PRIVATE", error.message) is None


# -- redirects: the credential stays on the API's origin --------------------------------


@pytest.fixture
def elsewhere() -> Iterator[GitHubStub]:
    """A second GitHub on another loopback port, recording every request that reaches it (headers, bodies)."""
    with GitHubStub() as other:
        yield other


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_not_followed(github: GitHubWorld, elsewhere: GitHubStub, status: int) -> None:
    """githubkit follows redirects by default, and httpx then re-sends the request (and a 307/308's body) there."""
    github.stub.fail_next("GET", "/user", status, headers={"Location": f"{elsewhere.api_url}/user"},
                          body={"message": "Moved Permanently"})
    with client(github) as api:
        error = failure(api.viewer)
    assert error.reason == "invalid" and f"127.0.0.1:{elsewhere.port}" in error.message
    assert "does not send the credential there" in error.message and TOKEN not in error.message
    assert elsewhere.requests == []


def test_a_hook_write_redirected_elsewhere_sends_neither_the_token_nor_the_hook_secret(
    runtime: Runtime, github: GitHubWorld, elsewhere: GitHubStub
) -> None:
    github.repo("octo", "api")
    github.stub.fail_next("POST", "/repos/octo/api/hooks", 307,
                          headers={"Location": f"{elsewhere.api_url}/repos/octo/api/hooks"}, body={"message": "Moved"})
    link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN, link="all"))
    with runtime.sessions() as session:
        row = session.scalars(select(Repository)).one()
    assert row.webhook_state == "failed" and "outside its API" in (row.webhook_error or "")
    assert elsewhere.requests == []  # neither the token nor the body with the webhook secret went there


@pytest.mark.parametrize("spell", [
    lambda url: url,
    lambda url: url.replace("http://", "HTTP://"),  # httpx reads any case as absolute: found by a review
    lambda url: url.replace("http://", "//"),
    lambda url: url.replace("http://", " http://"),
    lambda url: url.replace("http://", "http:\\\\"),
])
def test_a_next_page_link_to_another_origin_is_refused(
    github: GitHubWorld, elsewhere: GitHubStub, spell: Callable[[str], str]
) -> None:
    github.stub.fail_next("GET", "/user/repos", 200, body=[],
                          headers={"Link": f'<{spell(elsewhere.api_url)}/user/repos?page=2>; rel="next"'})
    with client(github) as api:
        error = failure(lambda: list(api.paginate("/user/repos")))
    assert error.reason == "invalid" and elsewhere.requests == []


def test_a_renamed_repository_is_followed_on_the_same_origin_with_the_credential(github: GitHubWorld) -> None:
    github.repo("octo", "api")
    github.stub.rename_repo("octo", "api", "service")
    mark = len(github.stub.requests)
    with client(github) as api:
        assert api.get_json("/repos/octo/api")["full_name"] == "octo/service"
    old, new = github.stub.requests[mark:]
    assert old.path == "/api/v3/repos/octo/api" and re.fullmatch(r"/api/v3/repositories/\d+", new.path)
    assert new.headers["authorization"] == f"token {TOKEN}"


@pytest.mark.parametrize(("method", "path", "body", "call"), [
    ("GET", "/user", [{"login": "octo"}], lambda api: api.viewer()),  # a list where an object belongs: a review's 500
    ("GET", "/users/octo", {"type": "User"}, lambda api: api.account("octo")),  # no login, no id
    ("GET", "/user/repos", [["not", "an", "object"]],
     lambda api: api.repositories(RemoteAccount("octo", "user", "1"), "octo")),
    ("GET", "/repos/octo/api/pulls", [{"title": "no number"}], lambda api: list(api.pulls(_remote("octo/api")))),
    ("POST", "/repos/octo/api/hooks", {"no": "id"}, lambda api: api.create_hook(_REPO, "http://x/h", "s")),
])
def test_an_answer_of_the_wrong_shape_is_a_host_error_not_a_crash(
    github: GitHubWorld, method: str, path: str, body: object, call: Callable[[GitHubClient], object]
) -> None:
    github.repo("octo", "api")
    github.stub.fail_next(method, path, 201 if method == "POST" else 200, body=body)
    with client(github) as api:
        error = failure(lambda: call(api))
    assert error.reason == "invalid" and "shape" in error.message


_REPO = HookTarget("repository", "octo/api", "1")


def _remote(full_name: str) -> RemoteRepository:
    return RemoteRepository(external_id="1", full_name=full_name, owner=full_name.split("/")[0], clone_url="",
                            web_url="")
