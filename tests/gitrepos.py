"""Real git repositories for tests: a working repository to commit in, git servers on loopback, and a watch
over the git processes devlink starts."""

import base64
import functools
import http.client
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import devlink.hosts.git as devlink_git


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


def fast_history(bare: Path, count: int, *, ref: str = "refs/heads/main") -> None:
    """``count`` commits (empty trees) on ``ref`` of the bare repository, written at once by ``git fast-import``."""
    stream = []
    for n in range(count):
        message = f"BULK-{n % 97 + 1} commit {n}\n".encode()
        stream.append(b"commit " + ref.encode() + b"\n")
        stream.append(f"committer Ada Lovelace <ada@example.com> {1_700_000_000 + n} +0000\n".encode())
        stream.append(f"data {len(message)}\n".encode() + message)
        stream.append(b"deleteall\n\n" if n == 0 else b"\n")
    subprocess.run(["git", "--git-dir", str(bare), "fast-import", "--quiet"], input=b"".join(stream), check=True)


class GitHttpServer:
    """Real smart-HTTP git over loopback: ``git http-backend`` behind a tiny WSGI server with Basic auth.

    Serves every repository under ``root``; requests must carry ``user:password``.  It filters objects
    (partial clones) only for repositories with ``uploadpack.allowFilter``.  ``tls`` (certificate, key)
    serves HTTPS instead.  ``authorizations`` records every Authorization header received.
    """

    def __init__(self, root: Path, user: str, password: str, *, tls: tuple[Path, Path] | None = None) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests: list[str] = []
        self.authorizations: list[str] = []

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, self._app, handler_class=Quiet)
        self.server.socket.settimeout(1.0)  # as GitHubStub: a reset before accept() must not hang close()
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{self.scheme}://{at}127.0.0.1:{self.port}/{name}"

    def _app(self, environ: dict[str, object], start_response: object) -> list[bytes]:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if environ.get("HTTP_AUTHORIZATION"):
            self.authorizations.append(str(environ["HTTP_AUTHORIZATION"]))
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


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up early (a killed git) is no test failure


class AuthProxy:
    """A forward HTTP proxy on loopback that wants ``Proxy-Authorization: Basic user:password`` (407 without).

    Forwards plain-HTTP requests (absolute URLs) to their server; ``authorized`` counts the requests it
    forwarded, ``refused`` the ones it answered 407.
    """

    def __init__(self, user: str, password: str) -> None:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.authorized = 0
        self.refused = 0
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                if self.headers.get("Proxy-Authorization") != expected:
                    proxy.refused += 1
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.authorized += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = urlsplit(self.path)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-authorization", "proxy-connection", "connection", "host")}
                upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=30)
                upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                                 body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = _forward

        self.server = _QuietServer(("127.0.0.1", 0), Forward)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DumbHttpServer:
    """Dumb-HTTP git: bare repositories under ``root`` served as plain files by ``http.server`` on loopback.

    No git runs on the server side and nothing is advertised (no filter, no protocol v2), as with a
    static web server; ``publish`` runs ``git update-server-info`` after each push, as a server's hook would.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root)))
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bare(self, name: str) -> Path:
        """A new empty bare repository ``name`` under the root."""
        path = self.root / name
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(path)], check=True)
        return path

    def publish(self, name: str) -> None:
        subprocess.run(["git", "--git-dir", str(self.root / name), "update-server-info"], check=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts connections on loopback and never answers: a git server that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


WATCH_MARK = "DEVLINK_TEST_PROCESS_WATCH"


@dataclass
class Seen:
    """One process the watch saw: its group and what it was started with."""

    pid: int
    pgid: int
    comm: str
    cmdline: bytes
    environ: bytes


@dataclass
class ProcessWatch:
    """What a ``watch_processes`` block saw of the processes devlink started (marked through the environment)."""

    mark: bytes
    peak_git: int = 0
    seen: dict[int, Seen] = field(default_factory=dict)
    runaway: bool = False

    def git(self) -> list[Seen]:
        return [s for s in self.seen.values() if s.comm.startswith("git")]

    def alive(self) -> list[int]:
        """Marked processes still running (zombies aside)."""
        return [pid for pid, _ in marked_processes(self.mark)]


def _stat(pid: str) -> tuple[str, str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
    rest = raw[raw.rindex(b")") + 2 :].split()
    return comm, rest[0].decode(), int(rest[2])


def marked_processes(mark: bytes) -> Iterator[tuple[int, tuple[str, int, bytes, bytes]]]:
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
            if mark not in environ:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        stat = _stat(name)
        if stat is None or stat[1] == "Z":
            continue
        yield int(name), (stat[0], stat[2], cmdline, environ)


@contextmanager
def watch_processes(monkeypatch: pytest.MonkeyPatch, *, kill_above: int = 64, deadline: float = 60.0,
                    interval: float = 0.002) -> Iterator[ProcessWatch]:
    """Sample every process started from this test (they inherit a marker variable) while the block runs.

    Records the peak number of git processes, and each process's group, argv and environment.  As a
    watchdog, it SIGKILLs every marked process (by pid, until none is left) once more than ``kill_above``
    git processes run at once or ``deadline`` seconds pass, and sets ``runaway``, so a fork chain never
    outlives the test.
    """
    mark = f"{WATCH_MARK}={os.urandom(8).hex()}"
    name, _, value = mark.partition("=")
    monkeypatch.setenv(name, value)
    # git inherits only an allow-list of variables: let the marker through, and nothing else.
    monkeypatch.setattr(devlink_git, "_INHERITED", devlink_git._INHERITED | {name})
    watch = ProcessWatch(mark.encode())
    stop = threading.Event()

    def kill_all() -> None:
        watch.runaway = True
        for _ in range(2000):
            pids = [pid for pid, _ in marked_processes(watch.mark)]
            if not pids:
                return
            for pid in pids:
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            git = 0
            for pid, (comm, pgid, cmdline, environ) in marked_processes(watch.mark):
                watch.seen.setdefault(pid, Seen(pid, pgid, comm, cmdline, environ))
                git += comm.startswith("git")
            watch.peak_git = max(watch.peak_git, git)
            if git > kill_above or time.monotonic() - started > deadline:
                kill_all()
                return
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()
        monkeypatch.delenv(name)
