"""Shared fixtures: real git repositories, a runtime on SQLite or PostgreSQL, servers on loopback.

PostgreSQL (127.0.0.1:5432, database ``test``) and Redis (127.0.0.1:6379) are
used for real.  When one is missing, its tests skip on a developer machine and
fail under ``CI=true``: CI must prove the scale-out path, not skip it.
"""

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from devlink.config import load_settings
from devlink.runtime import Runtime

POSTGRES_URL = os.environ.get("DEVLINK_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DEVLINK_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a local server the test needs is not running."""
    if _port_open("127.0.0.1", port):
        return
    message = f"{name} is not running on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must test the scale-out path")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)


class GitRepo:
    """A working repository built with the git CLI, for tests to commit, branch and push in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._clock = 1_700_000_000
        path.mkdir(parents=True, exist_ok=True)
        self.git("-c", "init.defaultBranch=main", "init", "-q")

    def git(self, *args: str, input: bytes | None = None) -> str:
        env = dict(os.environ, GIT_AUTHOR_DATE=f"@{self._clock} +0000", GIT_COMMITTER_DATE=f"@{self._clock} +0000")
        done = subprocess.run(["git", "-C", str(self.path), *args], input=input, capture_output=True, env=env)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace").strip()

    def commit(self, message: str, *, author: str | None = None) -> str:
        """Commit a change with ``message``; return its sha.  Commits get increasing dates."""
        self._clock += 60
        marker = self.path / "file.txt"
        marker.write_text(f"{self._clock}\n")
        self.git("add", "file.txt")
        extra = ["--author", author] if author else []
        self.git("commit", "-q", "--allow-empty-message", "-m", message, *extra)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "HEAD") -> None:
        self.git("branch", "-f", name, start)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def merge(self, name: str, message: str) -> str:
        self._clock += 60
        self.git("merge", "-q", "--no-ff", "-m", message, name)
        return self.git("rev-parse", "HEAD")

    def sha(self, rev: str) -> str:
        return self.git("rev-parse", rev)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "work")


@pytest.fixture
def bare_remote(tmp_path: Path, git_repo: GitRepo) -> Iterator[tuple[GitRepo, Path]]:
    """A working repository and a bare 'server' repository it pushes to (``push()`` pushes all)."""
    bare = tmp_path / "server.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    git_repo.git("remote", "add", "origin", str(bare))
    yield git_repo, bare


def _postgres_schema() -> Iterator[str]:
    require_service("PostgreSQL", 5432)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store and sync test runs on both engines."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'devlink.db'}"
    else:
        yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema()


def make_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {"DEVLINK_HOME": str(home), **extra}
    if database_url:
        env["DEVLINK_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    rt = Runtime.open(load_settings(make_env(tmp_path / "home", database_url)))
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitHttpServer:
    """Real smart-HTTP git over loopback: ``git http-backend`` behind a tiny WSGI server with Basic auth.

    Serves every repository under ``root``; requests must carry ``user:password``.
    """

    def __init__(self, root: Path, user: str, password: str) -> None:
        import base64
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests: list[str] = []

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, self._app, handler_class=Quiet)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}/{name}"

    def _app(self, environ: dict[str, object], start_response: object) -> list[bytes]:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if environ.get("HTTP_AUTHORIZATION") != self.expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])  # type: ignore[operator]
            return [b"auth required\n"]
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        body = environ["wsgi.input"].read(length) if length else b""  # type: ignore[attr-defined]
        cgi_env = {k: str(v) for k, v in environ.items() if k.startswith("HTTP_") or k in (
            "REQUEST_METHOD", "QUERY_STRING", "CONTENT_TYPE", "PATH_INFO", "CONTENT_LENGTH")}
        cgi_env.update(GIT_PROJECT_ROOT=str(self.root), GIT_HTTP_EXPORT_ALL="1", REMOTE_USER="test",
                       PATH=os.environ["PATH"])
        if "HTTP_GIT_PROTOCOL" in cgi_env:
            cgi_env["GIT_PROTOCOL"] = cgi_env["HTTP_GIT_PROTOCOL"]
        done = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = value
            elif name:
                headers.append((name, value))
        start_response(status, headers)  # type: ignore[operator]
        return [payload]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "http-root"
    root.mkdir()
    server = GitHttpServer(root, "robot", "s3cr3t-t0ken")
    yield server
    server.close()
