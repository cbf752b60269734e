"""Real git repositories for tests: a working repository to commit in, and a smart-HTTP server."""

import os
import subprocess
from pathlib import Path


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
