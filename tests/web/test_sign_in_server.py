"""Signing in to a real ``devlink serve``: the first admin's printed password, the cookie, CSRF, sign-out."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from servers import Server, start_server, stop_server

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server started on an empty database: it makes ``admin`` and prints the password once."""
    server = start_server(tmp_path_factory.mktemp("first") / "home", admin=False)
    try:
        deadline = time.monotonic() + 10
        while "first run: sign in at" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = next(line for line in server.log.read_text().splitlines() if "first run: sign in at" in line)
        assert f"{server.url}/sign-in as admin" in line
        yield server, line.rsplit("password ", 1)[1].strip()
    finally:
        stop_server(server)


@contextmanager
def _signed_in(server: Server, password: str, username: str = "admin") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/sign-in", data={"username": username, "password": password, "next": "/smart-commits"})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/smart-commits"
        yield client


def _csrf(client: httpx.Client, path: str = "/repositories") -> str:
    found = _CSRF.search(client.get(path).text)
    assert found, "the page's forms carry a CSRF token"
    return found.group(1)


def test_first_run_prints_a_password_that_signs_in_once_and_only_its_hash_is_kept(fresh: tuple[Server, str]) -> None:
    server, password = fresh
    assert password not in (server.home / "devlink.db").read_bytes().decode(errors="replace")
    assert server.log.read_text().count(password) == 1  # printed once, never logged again
    with server.anonymous() as anonymous:
        assert anonymous.get("/api/v1/repositories").status_code == 401
        page = anonymous.get("/repositories", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=%2Frepositories"
    with _signed_in(server, password) as client:
        assert client.get("/api/v1/me").json()["username"] == "admin"


def test_the_session_cookie_is_http_only_and_same_site(fresh: tuple[Server, str]) -> None:
    server, password = fresh
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/sign-in", data={"username": "admin", "password": password})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("devlink_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http://127.0.0.1: a Secure cookie would never come back


def test_a_wrong_password_says_so_without_telling_which_part(fresh: tuple[Server, str]) -> None:
    server, _ = fresh
    with server.anonymous() as client:
        for username in ("admin", "nobody"):
            answer = client.post("/sign-in", data={"username": username, "password": "not the password"},
                                 headers={"Accept": "text/html"})
            assert answer.status_code == 401 and "wrong user name or password" in answer.text


def test_writes_with_the_cookie_need_the_csrf_token(fresh: tuple[Server, str], tmp_path: Path) -> None:
    server, password = fresh
    with _signed_in(server, password) as client:
        bare = tmp_path / "r.git"
        bare.mkdir()
        forged = client.post("/repositories", data={"url": str(bare)}, headers={"Accept": "text/html"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        wrong = client.post("/repositories", data={"url": str(bare), "csrf": "0" * 64})
        assert wrong.status_code == 403 and wrong.json()["type"] == "bad_csrf"
        api = client.post("/api/v1/projects", json={"key": "CSRF", "name": "x"})
        assert (api.status_code, api.json()["type"]) == (403, "bad_csrf")
        token = _csrf(client)
        made = client.post("/api/v1/projects", json={"key": "CSRF", "name": "x"}, headers={"X-CSRF-Token": token})
        assert made.status_code == 201, made.text
        assert client.get("/api/v1/projects").status_code == 200  # reads need no token


def test_sign_out_ends_the_session_for_good(fresh: tuple[Server, str]) -> None:
    server, password = fresh
    with _signed_in(server, password) as client:
        cookie = client.cookies["devlink_session"]
        out = client.post("/sign-out", data={"csrf": _csrf(client)})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    with httpx.Client(base_url=server.url, timeout=30, cookies={"devlink_session": cookie}) as replay:
        assert replay.get("/api/v1/me").status_code == 401  # the old cookie, sent again, is nobody


def test_a_tampered_cookie_is_nobody(fresh: tuple[Server, str]) -> None:
    server, password = fresh
    with _signed_in(server, password) as client:
        token, signature = client.cookies["devlink_session"].rsplit(".", 1)
    forged = f"{token[:-1]}{'A' if token[-1] != 'A' else 'B'}.{signature}"
    with httpx.Client(base_url=server.url, timeout=30, cookies={"devlink_session": forged}) as other:
        assert other.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_sign_in_never_sends_anyone_off_site(fresh: tuple[Server, str], target: str) -> None:
    server, password = fresh
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/sign-in", data={"username": "admin", "password": password, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_the_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", {"DEVLINK_BASE_URL": "https://devlink.example.com"})
    try:
        with server.anonymous() as client:
            answer = client.post("/sign-in", data={"username": "ci-admin", "password": "ci-admin-password"})
        assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]
        assert answer.headers["set-cookie"].startswith("__Host-devlink_session=")  # no other subdomain may set it
    finally:
        stop_server(server)
