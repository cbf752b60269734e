"""A real ``devlink serve`` process on 127.0.0.1 with its own data directory, and a way to drive it."""

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: the admin every test server has unless started with ``admin=False`` (then ``serve`` makes its first one)
ADMIN = "ci-admin"
ADMIN_PASSWORD = "ci-admin-password"


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    process: "subprocess.Popen[bytes]"
    log: Path
    token: str | None = None  # an API token of ADMIN

    def client(self) -> httpx.Client:
        """A client that acts as the admin (with its API token)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def auth(self) -> dict[str, str]:
        """The admin's Authorization header, for a request made without ``client()``."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the devlink CLI against the same data directory as the server."""
        return subprocess.run([sys.executable, "-m", "devlink", *args], env=self.env, capture_output=True,
                              text=True, input=input, timeout=120)

    def wait_idle(self, repository_id: int, timeout: float = 30) -> dict[str, Any]:
        """Poll the API until the repository's sync is neither queued nor running."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                view: dict[str, Any] = client.get(f"/api/v1/repositories/{repository_id}").json()
                if view["sync"]["state"] in ("idle", "failed") and not view["sync"]["pending"]:
                    return view
                if time.monotonic() > deadline:
                    raise AssertionError(f"sync did not finish: {view}\n{self.log.read_text()[-3000:]}")
                time.sleep(0.1)


def make_admin(env: dict[str, str]) -> str:
    """Make ADMIN (once per data directory) in-process and return a new API token of theirs."""
    from devlink.config import load_settings
    from devlink.runtime import Runtime
    from devlink.store.tracker import TrackerUser
    from devlink.sync.people import add_person, create_token

    rt = Runtime.open(load_settings(env))
    try:
        with rt.sessions() as session:
            exists = session.query(TrackerUser).filter_by(username=ADMIN).first() is not None
        if not exists:
            add_person(rt, ADMIN, role="admin", password=ADMIN_PASSWORD, emails=["ci-admin@devlink.test"])
        return create_token(rt, ADMIN, f"tests-{time.monotonic_ns()}").secret
    finally:
        rt.close()


def start_server(
    home: Path, extra_env: dict[str, str] | None = None, *, worker: bool = True, own_base_url: bool = False,
    admin: bool = True,
) -> Server:
    """``own_base_url``: DEVLINK_BASE_URL is the server's own address (OAuth callbacks come back to it).

    ``admin``: make ADMIN and an API token for ``client()`` first; without, the server starts on an empty
    database and prints its first admin's password.
    """
    port = free_port()
    env = dict(os.environ, DEVLINK_HOME=str(home), **(extra_env or {}))
    if own_base_url:
        env["DEVLINK_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = home.parent / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    # the API links local paths only under DEVLINK_LOCAL_REPOSITORY_ROOTS: let it take this run's tmp paths
    env.setdefault("DEVLINK_LOCAL_REPOSITORY_ROOTS", str(_run_directory(home)))
    token = make_admin(env) if admin else None
    process = subprocess.Popen(
        [sys.executable, "-m", "devlink", "serve", "--port", str(port), *([] if worker else ["--no-worker"])],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/sign-in", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"devlink serve did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return Server(url, home, env, process, log, token)


def _run_directory(home: Path) -> Path:
    """pytest's directory of this run (``…/pytest-N``), where every test's tmp_path is; else home's parent."""
    for parent in home.resolve().parents:
        if parent.name.startswith("pytest-") and parent.name[7:].isdigit():
            return parent
    return home.parent


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()




def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EgressTrap:
    """An HTTP proxy on loopback that refuses everything and remembers who asked: any entry means a leak."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    first = connection.recv(4096).split(b"\r\n", 1)[0]
                    connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    first = b"?"
                self.seen.append(first.decode(errors="replace"))

    def env(self) -> dict[str, str]:
        proxies = {name: self.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
        proxies |= {name.lower(): value for name, value in proxies.items()}
        return proxies | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self) -> None:
        self._sock.close()


def signed_in(browser: Any, server: Server, *, user: str = ADMIN, password: str = ADMIN_PASSWORD,
              **page_options: Any) -> Any:
    """A new Chromium page signed in through the sign-in form (as the admin unless told otherwise)."""
    page = browser.new_page(**page_options)
    page.goto(f"{server.url}/sign-in")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url(f"{server.url}/repositories")
    return page
