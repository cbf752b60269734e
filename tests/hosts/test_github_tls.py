"""TLS to a GitHub Enterprise Server with a private CA: refused without the CA bundle, trusted with it.

A real HTTPS server on 127.0.0.1, with a certificate made here for that address, forwards every
request to the stub GitHub, so the same link works end to end once the CA is trusted.  The git side
is served over HTTPS with the same certificate, and can be reached through a CONNECT proxy: the
host's CA bundle and proxy must reach git as well as the API.
"""

import secrets
import select
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devlink.errors import GitError
from devlink.hosts.base import HostError
from devlink.hosts.git import Mirror, RemoteAccess
from devlink.runtime import Runtime
from devlink.sync.accounts import AccountOptions, link_account
from devlink.sync.jobs import run_sync
from github_stub import GitHubGitServer, GitHubStub
from github_world import TOKEN, GitHubWorld
from gitrepos import GitHttpServer, GitRepo
from tls import tls_front as forwarding


@pytest.fixture
def tls_front(github: GitHubWorld, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``https://127.0.0.1:PORT`` forwarding to the stub; yields its URL and the CA file that trusts it."""
    with forwarding(github.stub.web_url, tmp_path) as front:
        yield front


def test_an_untrusted_certificate_names_the_host_and_asks_for_a_ca_bundle(
    runtime: Runtime, github: GitHubWorld, tls_front: tuple[str, Path]
) -> None:
    url, ca = tls_front
    github.repo("octo", "api")
    with pytest.raises(HostError) as refused:
        link_account(runtime, AccountOptions(name="octo", web_url=url, token=TOKEN))
    assert refused.value.reason == "tls"
    assert "127.0.0.1" in refused.value.message and "certificate not trusted" in refused.value.message
    assert refused.value.hint and "CA bundle" in refused.value.hint
    _, found = link_account(runtime, AccountOptions(name="octo", web_url=url, token=TOKEN, ca_bundle=str(ca),
                                                    may_set_up_host=True))
    assert found.new == ["octo/api"]


def test_a_missing_ca_bundle_file_is_a_clear_error(runtime: Runtime, github: GitHubWorld, tmp_path: Path) -> None:
    with pytest.raises(HostError) as missing:
        link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                             ca_bundle=str(tmp_path / "nope.pem"), may_set_up_host=True))
    assert missing.value.reason == "tls" and "cannot read the CA bundle" in missing.value.message


class TlsGitHubGitServer(GitHubGitServer):
    """The stub's token-checking git server, over HTTPS with the private CA's certificate."""

    def __init__(self, root: Path, stub: GitHubStub, tls: tuple[Path, Path]) -> None:
        self.stub = stub
        GitHttpServer.__init__(self, root, "x-access-token", secrets.token_hex(16), tls=tls)


class ConnectProxy:
    """An HTTP proxy on loopback that tunnels CONNECT requests and records where each one went."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.agents: list[str] = []  # the User-Agent of each CONNECT (curl, so git, sends its own)
        proxy = self

        class Tunnel(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                proxy.targets.append(self.path)
                proxy.agents.append(self.headers.get("User-Agent", ""))
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                sockets = [self.connection, upstream]
                while True:
                    readable, _, _ = select.select(sockets, [], [], 10)
                    if not readable:
                        break
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            upstream.close()
                            return
                        (upstream if sock is self.connection else self.connection).sendall(data)
                upstream.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Tunnel)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_git(github: GitHubWorld, tls_front: tuple[str, Path], tmp_path: Path) -> Iterator[TlsGitHubGitServer]:
    """octo/api served over HTTPS on the API's own origin (through the TLS front, same private CA), and
    directly by ``server`` on its own port."""
    front, ca = tls_front
    root = tmp_path / "tls-git"
    (root / "octo").mkdir(parents=True)
    server = TlsGitHubGitServer(root, github.stub, (ca, tmp_path / "key.pem"))
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(root / "octo" / "api.git")],
                   check=True)
    github.stub.git_backend = server._app
    github.stub.add_repo("octo", "api", clone_url=f"{front}/octo/api.git")
    yield server
    server.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    running = ConnectProxy()
    yield running
    running.close()


def test_git_trusts_the_hosts_ca_bundle_and_goes_through_its_proxy(
    runtime: Runtime, tls_front: tuple[str, Path], tls_git: TlsGitHubGitServer, proxy: ConnectProxy, tmp_path: Path
) -> None:
    url, ca = tls_front
    work = GitRepo(tmp_path / "work")
    work.commit("TLS-1 over a private CA")
    work.git("push", "-q", str(tls_git.root / "octo" / "api.git"), "main")
    _, found = link_account(runtime, AccountOptions(name="octo", web_url=url, token=TOKEN, ca_bundle=str(ca),
                                                    proxy=proxy.url, link="all", may_set_up_host=True))
    [cloned] = run_sync(runtime, found.linked[0], full=False)
    work.commit("TLS-2 fetched over the same CA")
    work.git("push", "-q", str(tls_git.root / "octo" / "api.git"), "main")
    [fetched] = run_sync(runtime, found.linked[0], full=False)
    assert (cloned.commits_new, fetched.commits_new) == (1, 1)
    assert any(request.startswith("POST /octo/api.git/git-upload-pack") for request in tls_git.requests)
    assert set(proxy.targets) == {url.removeprefix("https://")}
    git_tunnels = [agent for agent in proxy.agents if agent.startswith("git/")]
    assert len(git_tunnels) >= 2, proxy.agents  # the clone and the fetch both went through the host's proxy


def test_without_the_ca_bundle_git_refuses_the_private_certificate(
    tls_front: tuple[str, Path], tls_git: TlsGitHubGitServer, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "mirrors" / "1.git", tls_git.url("octo/api.git"))
    with pytest.raises(GitError) as refused:
        mirror.clone(RemoteAccess("x-access-token", TOKEN))
    assert refused.value.reason == "unreachable" and "certificate" in refused.value.message
    assert TOKEN not in refused.value.message


def test_a_proxy_with_credentials_is_refused_for_git_without_showing_them(tmp_path: Path) -> None:
    mirror = Mirror(tmp_path / "mirrors" / "1.git", "https://127.0.0.1:9/x.git")
    with pytest.raises(GitError) as refused:
        mirror.clone(RemoteAccess(proxy="http://me:pr0xy-pw@127.0.0.1:3128"))
    assert refused.value.reason == "bad_url" and "proxy URL carries credentials" in refused.value.message
    assert "pr0xy-pw" not in refused.value.message + (refused.value.hint or "")
