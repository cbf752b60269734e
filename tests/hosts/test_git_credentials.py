"""Credentials reach git through a credential helper reading a FIFO: never an argv, an environment or a file.

A watch samples /proc while devlink clones and fetches from real token-checking servers on
loopback: the cmdline and environ of every process devlink started (git, its remote helper, the
credential helper's shell and ``cat``) must not hold the secret, and authentication still works.
"""

import base64
import functools
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devlink.config import load_settings
from devlink.errors import GitError, InvalidInput
from devlink.hosts.git import Mirror, RemoteAccess, check_remote
from devlink.runtime import Runtime
from devlink.store.models import Repository
from devlink.sync.accounts import AccountOptions, link_account
from devlink.sync.jobs import run_sync
from devlink.sync.repositories import add_repository
from github_world import TOKEN, GitHubWorld
from gitrepos import AuthProxy, GitHttpServer, GitRepo, ProcessWatch, watch_processes

SECRET = "s3cr3t-t0ken"  # what the git_http fixture wants from "robot"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(tmp_path / "home"),
                                     "DEVLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'devlink.db'}"}))
    yield rt
    rt.close()


def serve(server: GitHttpServer, repo: GitRepo, name: str) -> Path:
    bare = server.root / name
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    return bare


def assert_never_exposed(watch: ProcessWatch, secret: str) -> None:
    encoded = {secret.encode(), base64.b64encode(f"robot:{secret}".encode()),
               base64.b64encode(f"x-access-token:{secret}".encode())}
    assert watch.git(), "the watch saw no git process"
    for seen in watch.seen.values():
        for value in encoded:
            assert value not in seen.cmdline, (seen.comm, seen.cmdline)
            assert value not in seen.environ, (seen.comm, [v for v in seen.environ.split(b"\0") if value in v])


def assert_in_no_file(root: Path, secret: str) -> None:
    for path in root.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
            assert secret.encode() not in path.read_bytes(), path


def test_a_password_is_in_no_argv_environment_or_file_while_devlink_clones_and_fetches(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    git_repo.commit("CRED-1 first")
    bare = serve(git_http, git_repo, "team.git")
    scratch = tmp_path / "tmp"  # where devlink's private FIFO directories go
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with watch_processes(monkeypatch) as checking:
        repository = add_repository(runtime, git_http.url("team.git", f"robot:{SECRET}"))
    with watch_processes(monkeypatch) as cloning:
        [cloned] = run_sync(runtime, repository.id, full=False)
    git_repo.commit("CRED-2 fetched")
    git_repo.git("push", "-q", str(bare), "main")
    with watch_processes(monkeypatch) as fetching:
        [fetched] = run_sync(runtime, repository.id, full=False)

    assert (cloned.commits_new, fetched.commits_new) == (1, 1)  # authenticated, both times
    for watch in (checking, cloning, fetching):
        assert_never_exposed(watch, SECRET)
    assert any(seen.comm == "git-remote-http" for watch in (checking, cloning, fetching)
               for seen in watch.seen.values()), "the watch never caught git's remote helper: nothing was tested"
    assert_in_no_file(runtime.settings.home, SECRET)
    assert list(scratch.iterdir()) == []  # every FIFO and its directory are gone


def test_a_host_token_is_in_no_argv_or_environment_while_an_account_repository_syncs(
    runtime: Runtime, github: GitHubWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = github.repo("octo", "api")
    _, found = link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                    link="all"))
    with watch_processes(monkeypatch) as cloning:
        [cloned] = run_sync(runtime, found.linked[0], full=False)
    work.commit("API-2 fetched with the token")
    work.git("push", "-q", "origin", "main")
    with watch_processes(monkeypatch) as fetching:
        [fetched] = run_sync(runtime, found.linked[0], full=False)
    assert (cloned.commits_new, fetched.commits_new) == (1, 1)
    assert_never_exposed(cloning, TOKEN)
    assert_never_exposed(fetching, TOKEN)
    assert any(seen.comm == "git-remote-http" for watch in (cloning, fetching) for seen in watch.seen.values())


def test_a_wrong_password_is_an_auth_error_that_does_not_show_it(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo
) -> None:
    git_repo.commit("CRED-1 first")
    serve(git_http, git_repo, "team.git")
    with pytest.raises(GitError) as refused:
        add_repository(runtime, git_http.url("team.git", "robot:not-the-password"))
    assert refused.value.reason == "auth"
    assert refused.value.message.startswith(f"{git_http.url('team.git')}: access denied")
    for shown in (refused.value.message, str(refused.value), refused.value.hint or "", repr(refused.value)):
        assert "not-the-password" not in shown
    with runtime.sessions() as session:
        assert session.query(Repository).count() == 0


def test_a_token_alone_as_userinfo_is_sent_as_the_user_name(
    runtime: Runtime, tmp_path: Path, git_repo: GitRepo
) -> None:
    root = tmp_path / "token-root"
    root.mkdir()
    server = GitHttpServer(root, "ghp_only4token", "")  # https://TOKEN@host: the token is the user, no password
    try:
        git_repo.commit("TOK-1 with a bare token")
        serve(server, git_repo, "t.git")
        repository = add_repository(runtime, server.url("t.git", "ghp_only4token"))
        [result] = run_sync(runtime, repository.id, full=False)
        assert result.commits_new == 1
        assert repository.url == server.url("t.git")
    finally:
        server.close()


def test_percent_escapes_in_the_password_are_decoded_as_git_would(
    runtime: Runtime, tmp_path: Path, git_repo: GitRepo
) -> None:
    root = tmp_path / "escaped-root"
    root.mkdir()
    server = GitHttpServer(root, "ro@bot", "p:ss/w%rd")
    try:
        git_repo.commit("ESC-1 escaped")
        serve(server, git_repo, "e.git")
        repository = add_repository(runtime, server.url("e.git", "ro%40bot:p%3Ass%2Fw%25rd"))
        [result] = run_sync(runtime, repository.id, full=False)
        assert result.commits_new == 1
    finally:
        server.close()


class _Redirect(BaseHTTPRequestHandler):
    def __init__(self, target: str, *args: object) -> None:
        self.target = target
        super().__init__(*args)  # type: ignore[arg-type]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_the_credential_is_not_offered_to_another_origin_after_a_redirect(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    root = tmp_path / "elsewhere-root"
    root.mkdir()
    elsewhere = GitHttpServer(root, "robot", SECRET)  # wants the same credential, but is another origin
    git_repo.commit("REDIR-1")
    serve(elsewhere, git_repo, "r.git")
    front = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Redirect, f"http://127.0.0.1:{elsewhere.port}"))
    threading.Thread(target=front.serve_forever, daemon=True).start()
    try:
        location = f"http://127.0.0.1:{front.server_port}/r.git"
        with pytest.raises(GitError) as refused:
            check_remote(location, RemoteAccess("robot", SECRET))
        assert refused.value.reason == "auth"
        assert elsewhere.requests, "git did not follow the redirect: nothing was tested"
        assert all(SECRET not in base64.b64decode(value.split()[-1]).decode(errors="replace")
                   for value in elsewhere.authorizations)
    finally:
        front.shutdown()
        front.server_close()
        elsewhere.close()


def test_access_never_shows_its_secret() -> None:
    access = RemoteAccess("robot", SECRET, ca_bundle="/etc/ca.pem")
    assert SECRET not in repr(access) and "robot" not in repr(access)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        pytest.param("ssh://git:hunter2@127.0.0.1/x.git", "an ssh URL cannot carry a password", id="ssh-password"),
        pytest.param("git:hunter2@127.0.0.1:x.git", "carry no password", id="scp-password"),
        pytest.param("ext::sh -c touch% /tmp/x", "remote helpers", id="ext"),
        pytest.param("--upload-pack=touch /tmp/x", "cannot start with '-'", id="option"),
    ],
)
def test_locations_git_would_misread_are_refused_before_git_runs(
    runtime: Runtime, location: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with watch_processes(monkeypatch) as watch, pytest.raises(InvalidInput) as refused:
        add_repository(runtime, location)
    assert refused.value.reason == "bad_url" and message in refused.value.message
    assert "hunter2" not in refused.value.message and "/tmp/x" not in refused.value.message
    assert watch.git() == []


def test_git_itself_refuses_remote_helpers_whatever_location_it_is_given(tmp_path: Path) -> None:
    # a host could hand out any clone URL: git is only allowed devlink's transports
    marker = tmp_path / "ran"
    mirror = Mirror(tmp_path / "mirrors" / "1.git", f"ext::sh -c touch% {marker}")
    with pytest.raises(GitError) as refused:
        mirror.clone()
    assert refused.value.reason == "bad_url"
    assert not marker.exists()


def test_the_secrets_in_devlinks_own_environment_reach_no_git_it_starts(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """devlink is often configured through its environment; git and its helpers must not inherit that."""
    in_environment = {
        "DEVLINK_SECRET_KEY": "env-secret-key-0123456789",
        "DEVLINK_DATABASE_URL": "postgresql://devlink:env-db-password@db.internal/devlink",
        "DEPLOYMENT_API_TOKEN": "env-deploy-token-abcdef",  # a name devlink cannot know in advance
    }
    for name, value in in_environment.items():
        monkeypatch.setenv(name, value)
    git_repo.commit("ENV-1 first")
    bare = serve(git_http, git_repo, "env.git")
    with watch_processes(monkeypatch) as cloning:
        monkeypatch.setenv("GIT_DIR", "/nonexistent")  # nor the caller's GIT_* (it would redirect every command)
        repository = add_repository(runtime, git_http.url("env.git", f"robot:{SECRET}"))
        [cloned] = run_sync(runtime, repository.id, full=False)
        monkeypatch.delenv("GIT_DIR")
    git_repo.commit("ENV-2 fetched")
    git_repo.git("push", "-q", str(bare), "main")
    with watch_processes(monkeypatch) as fetching:
        monkeypatch.setenv("GIT_DIR", "/nonexistent")
        [fetched] = run_sync(runtime, repository.id, full=False)
        monkeypatch.delenv("GIT_DIR")

    assert (cloned.commits_new, fetched.commits_new) == (1, 1)
    children = [seen for watch in (cloning, fetching) for seen in watch.seen.values()]
    assert any(seen.comm == "git-remote-http" for seen in children), "the watch never caught git's remote helper"
    for seen in children:
        variables = seen.environ.split(b"\0")
        for name, value in in_environment.items():
            assert value.encode() not in seen.environ, (seen.comm, name)
            assert not any(v.startswith(name.encode() + b"=") for v in variables), (seen.comm, name)
        assert b"GIT_DIR=/nonexistent" not in variables
        assert any(v.startswith(b"PATH=") for v in variables)  # what git needs still passes


def test_an_accounts_token_goes_to_git_only_on_its_hosts_web_origin(
    runtime: Runtime, github: GitHubWorld
) -> None:
    """A clone URL comes from the host's answers: one naming another server must not be handed the token."""
    github.repo("octo", "api")
    elsewhere = github.git_server.url("octo/api.git")  # the same repository, served on another port
    github.stub.repos[next(iter(github.stub.repos))]["clone_url"] = elsewhere
    _, found = link_account(runtime, AccountOptions(name="octo", web_url=github.stub.web_url, token=TOKEN,
                                                    link="all"))
    run_sync(runtime, found.linked[0], full=False)
    with runtime.sessions() as session:
        stored = session.get(Repository, found.linked[0])
        assert stored is not None
        assert (stored.url, stored.sync_state, stored.last_error_reason) == (elsewhere, "failed", "auth")
        assert stored.last_error_message == (f"{elsewhere} is not on {github.stub.web_url}, where the account's "
                                             "token belongs; devlink does not send the token there")
    assert github.git_server.requests == [] and github.git_server.authorizations == []


@pytest.mark.parametrize(("clone_url", "web_url", "same"), [
    ("https://ghe.example/o/r.git", "https://GHE.example", True),
    ("https://ghe.example/o/r.git", "https://ghe.example:443", True),  # an explicit default port
    ("http://ghe.example:80/o/r.git", "http://ghe.example", True),
    ("http://ghe.example/o/r.git", "https://ghe.example", False),  # another scheme
    ("https://ghe.example:8443/o/r.git", "https://ghe.example", False),
    ("https://ghe.example.evil.test/o/r.git", "https://ghe.example", False),
    ("https://ghe.example@evil.test/o/r.git", "https://ghe.example", False),  # user info
    ("https://ghe.example./o/r.git", "https://ghe.example", False),  # a trailing dot: fail closed
    ("https://straße.example/o/r.git", "https://strasse.example", False),  # no IDNA folding towards equality
    ("https://[oops/o/r.git", "https://ghe.example", False),  # cannot be split: never the host's
])
def test_where_an_accounts_token_may_go_is_decided_fail_closed(clone_url: str, web_url: str, same: bool) -> None:
    from devlink.hosts.base import same_origin

    assert same_origin(clone_url, web_url) is same


def test_www_github_com_is_github_com() -> None:
    from devlink.hosts.github import GITHUB_API, GITHUB_WEB, api_url_for, canonical_web_url

    assert canonical_web_url("https://www.github.com/") == GITHUB_WEB
    assert canonical_web_url("https://WWW.GitHub.com") == GITHUB_WEB
    assert canonical_web_url("https://ghe.example/") == "https://ghe.example"
    assert api_url_for("https://www.github.com") == GITHUB_API


def test_without_git_on_the_path_the_error_says_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # the supervisor is found by its full path; git is not there
    with pytest.raises(GitError) as missing:
        check_remote("https://ghe.example/o/r.git")
    assert (missing.value.message, missing.value.hint) == ("the git command is not installed", "install git")


@contextmanager
def proxy_in_environment(monkeypatch: pytest.MonkeyPatch, password: str, given: str) -> Iterator[AuthProxy]:
    """An authenticating proxy wanting ``puser:password``, named in ``http_proxy`` with ``puser:given``."""
    proxy = AuthProxy("puser", password)
    try:
        monkeypatch.setenv("http_proxy", proxy.url(f"puser:{given}"))
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        yield proxy
    finally:
        proxy.close()


def test_a_proxy_password_in_devlinks_environment_reaches_git_only_through_the_helper(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http_proxy=http://user:password@proxy`` works for git, and the password is in no child's environ."""
    git_repo.commit("PROXY-1 through the proxy")
    serve(git_http, git_repo, "proxied.git")
    with proxy_in_environment(monkeypatch, "proxy-pa55word", "proxy-pa55word") as proxy:
        with watch_processes(monkeypatch) as cloning:
            repository = add_repository(runtime, git_http.url("proxied.git", f"robot:{SECRET}"))
            [cloned] = run_sync(runtime, repository.id, full=False)
        assert cloned.commits_new == 1
        assert proxy.authorized >= 2  # the check and the clone went through it, authenticated
        children = list(cloning.seen.values())
        assert any(seen.comm == "git-remote-http" for seen in children)
        for seen in children:
            assert b"proxy-pa55word" not in seen.environ and b"proxy-pa55word" not in seen.cmdline, seen.comm
        assert any(f"http_proxy={proxy.url('puser')}".encode() in seen.environ.split(b"\0") for seen in children)


def test_a_proxy_that_refuses_devlinks_credentials_is_an_auth_error_naming_the_proxy(
    runtime: Runtime, git_http: GitHttpServer, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_repo.commit("PROXY-2 refused")
    serve(git_http, git_repo, "refused.git")
    with proxy_in_environment(monkeypatch, "the-right-one", "a-wrong-one") as proxy:
        with pytest.raises(GitError) as refused:
            add_repository(runtime, git_http.url("refused.git"))
        assert refused.value.reason == "auth" and "proxy refused" in refused.value.message
        assert "a-wrong-one" not in refused.value.message and proxy.refused >= 1


def test_a_proxy_password_with_a_slash_leaves_no_part_in_the_environ_or_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``urlsplit`` ends the authority at the first ``/``: the password must still be taken out whole."""
    from devlink.hosts.git import _proxy_passwords, inherited_environment

    monkeypatch.setenv("http_proxy", "http://svc:Zm9vYmFy/cXV4@127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert inherited_environment()["http_proxy"] == "http://svc@127.0.0.1:9"
    assert _proxy_passwords() == {"http://127.0.0.1:9": ("svc", "Zm9vYmFy/cXV4")}
    with pytest.raises(GitError) as failed:
        check_remote("http://git.example.invalid/x.git")
    assert "Zm9vYmFy" not in failed.value.message


def test_a_proxy_variable_without_a_host_is_never_a_catch_all_credential_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``credential.http://.helper`` matches every http host: such a scope hands the proxy password to any."""
    from devlink.hosts.git import _proxy_passwords, inherited_environment

    monkeypatch.setenv("http_proxy", "http://user:secret@/")
    assert _proxy_passwords() == {}
    assert "secret" not in inherited_environment()["http_proxy"]


def test_a_407_after_connect_is_an_auth_error() -> None:
    from devlink.hosts.git import _classify

    stderr = "fatal: unable to access 'https://h/x.git/': CONNECT tunnel failed, response 407\n"
    assert _classify(stderr, "https://h/x.git").reason == "auth"
