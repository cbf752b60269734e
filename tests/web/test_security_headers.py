"""What every request passes and every response carries: trusted hosts, cross-site writes, security headers.

Against a real ``devlink serve`` on 127.0.0.1; settings variants run the real app in process (ASGI, no socket).
"""

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.web import auth
from devlink.web.app import create_app
from gitrepos import GitRepo
from servers import Server

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _linked(server: Server, tmp_path: Path, name: str) -> int:
    repo = GitRepo(tmp_path / f"{name}-work")
    bare = tmp_path / f"{name}.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    repo.commit("SEC-1 a commit")
    repo.git("push", "-q", "origin", "main")
    with server.client() as client:
        created = client.post("/api/v1/repositories", json={"url": str(bare), "name": name})
        assert created.status_code == 201, created.text
        repository_id: int = created.json()["id"]
    server.wait_idle(repository_id)
    return repository_id


def _ask(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """One GET to the real app in process (no socket): ASGI as uvicorn speaks it."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def _assert_secured(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    policy = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'",
                      "form-action 'self'"):
        assert directive in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_every_kind_of_response_carries_the_security_headers(server: Server) -> None:
    with server.client() as client:
        answers = {
            "page": client.get("/repositories"),
            "api": client.get("/api/v1/repositories"),
            "static": client.get("/static/style.css"),
            "docs": client.get("/docs"),
            "docs asset": client.get("/docs/assets/swagger-ui.css"),
            "openapi": client.get("/openapi.json"),
            "not found": client.get("/api/v1/nothing-here"),
            "static not found": client.get("/static/nothing.css"),
            "invalid": client.get("/api/v1/repositories/abc"),
            "hook refusal": client.post("/hooks/git"),
            "redirect": client.get("/"),
            "bad host": client.get("/repositories", headers={"Host": "evil.example"}),
            "cross site": client.post("/repositories/1/sync", headers={"Origin": "http://evil.example"}),
        }
    assert {name: r.status_code for name, r in answers.items()} == {
        "page": 200, "api": 200, "static": 200, "docs": 200, "docs asset": 200, "openapi": 200, "not found": 404,
        "static not found": 404, "invalid": 422, "hook refusal": 401, "redirect": 302, "bad host": 400,
        "cross site": 403,
    }
    for response in answers.values():
        _assert_secured(response)


@pytest.fixture
def app_runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(tmp_path / "home")}))
    yield rt
    rt.close()


def test_an_unexpected_error_is_a_problem_with_the_security_headers(
    app_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's 500 is rendered outside every middleware: it carries the headers itself."""
    app = create_app(app_runtime)
    monkeypatch.setitem(auth.RULES, ("GET", "/broken"), auth.Rule.OPEN)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    answer = _ask(app, "/broken")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "internal" and "a bug" not in answer.text
    _assert_secured(answer)


# -- trusted hosts ----------------------------------------------------------------------------------------------


def test_a_rebound_dns_name_cannot_remove_a_repository(server: Server, tmp_path: Path) -> None:
    """evil.example re-pointed at 127.0.0.1: its page's requests are same-origin for the browser, but not for us."""
    repository_id = _linked(server, tmp_path, "rebound")
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    with server.client() as client:
        for method, path in (("POST", f"/repositories/{repository_id}/remove"),
                             ("DELETE", f"/api/v1/repositories/{repository_id}"),
                             ("GET", f"/api/v1/repositories/{repository_id}"),
                             ("POST", "/hooks/git")):
            refused = client.request(method, path, headers=evil)
            assert refused.status_code == 400, (method, path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "bad_host"
            assert "DEVLINK_ALLOWED_HOSTS" in refused.json()["hint"]
        assert client.get(f"/api/v1/repositories/{repository_id}").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}",
                                  "10.1.2.3:8000", "[2001:db8::1]", socket.gethostname(), socket.getfqdn()])
def test_ip_literals_localhost_and_the_machine_name_are_devlink(server: Server, host: str) -> None:
    port = server.url.rsplit(":", 1)[1]
    with server.client() as client:
        assert client.get("/api/v1/repositories", headers={"Host": host.format(port=port)}).status_code == 200


@pytest.mark.parametrize(
    ("env", "host", "status"),
    [
        ({}, "devlink.example.com", 400),
        ({"DEVLINK_BASE_URL": "https://devlink.example.com:8443/"}, "devlink.example.com:8443", 200),
        ({"DEVLINK_BASE_URL": "https://devlink.example.com"}, "other.example.com", 400),
        ({"DEVLINK_ALLOWED_HOSTS": "devlink.internal, Devlink.Example.com."}, "devlink.example.com", 200),
        ({"DEVLINK_ALLOWED_HOSTS": "devlink.internal"}, "devlink.internal:80", 200),
        ({"DEVLINK_ALLOWED_HOSTS": "devlink.internal"}, "evil.devlink.internal", 400),
        ({"DEVLINK_ALLOWED_HOSTS": "*"}, "anything.example", 200),
    ],
    ids=["default", "base-url", "base-url-only", "allowed", "allowed-port", "not-a-subdomain", "star"],
)
def test_the_names_devlink_answers_to_follow_the_settings(
    tmp_path: Path, env: dict[str, str], host: str, status: int
) -> None:
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(tmp_path / "home"), **env}))
    try:
        assert _ask(create_app(rt), "/sign-in", {"Host": host}).status_code == status
    finally:
        rt.close()


# -- cross-site writes ------------------------------------------------------------------------------------------


def test_cross_site_writes_are_refused_on_the_api_too(server: Server, tmp_path: Path) -> None:
    repository_id = _linked(server, tmp_path, "guarded-api")
    own = server.url
    other_port = "http://127.0.0.1:1"
    forged = [
        {"Origin": "http://evil.example"},
        {"Origin": other_port},  # another origin on the same machine
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Referer": "http://evil.example/page.html"},
        {"Sec-Fetch-Site": "cross-site"},  # fetch(..., {mode: "no-cors"}): no body, no preflight
        {"Sec-Fetch-Site": "same-site", "Origin": "http://sibling.example"},
        {"Sec-Fetch-Site": "same-site"},
    ]
    with server.client() as client:
        for headers in forged:
            for method, path in (("POST", f"/api/v1/repositories/{repository_id}/sync"),
                                 ("DELETE", f"/api/v1/repositories/{repository_id}"),
                                 ("PATCH", f"/api/v1/repositories/{repository_id}"),
                                 ("POST", f"/repositories/{repository_id}/remove")):
                refused = client.request(method, path, headers=headers, json={"smart_commits": False})
                assert refused.status_code == 403, (headers, method, path, refused.text)
                assert refused.json()["type"] == "cross_site"
        assert client.get(f"/api/v1/repositories/{repository_id}").json()["smart_commits"] is True

        # devlink's own pages, and tools that send no Origin (curl), pass
        assert client.post(f"/api/v1/repositories/{repository_id}/sync",
                           headers={"Origin": own, "Sec-Fetch-Site": "same-origin"}).status_code == 202
        assert client.post(f"/api/v1/repositories/{repository_id}/sync",
                           headers={"Referer": f"{own}/repositories"}).status_code == 202
        assert client.post(f"/api/v1/repositories/{repository_id}/sync").status_code == 202
        foreign_read = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert client.get(f"/api/v1/repositories/{repository_id}", headers=foreign_read).status_code == 200
        # webhooks come from servers: the cross-site check does not apply under /hooks
        hook = client.post("/hooks/git", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert (hook.status_code, hook.json()["type"]) == (401, "bad_token")
        server.wait_idle(repository_id)
        assert client.delete(f"/api/v1/repositories/{repository_id}", headers={"Origin": own}).status_code == 204


def test_a_refused_form_never_echoes_the_password_it_was_given(server: Server) -> None:
    """The repositories form keeps what was typed, but a URL's password is not put back into the page."""
    with server.client() as client:
        page = client.post("/repositories", data={"url": "https://robot:hunter2@127.0.0.1:9/x.git", "name": "x"})
    assert page.status_code >= 400
    assert "hunter2" not in page.text
    assert 'value="https://127.0.0.1:9/x.git"' in page.text


def test_api_and_form_bodies_are_bounded(server: Server) -> None:
    """A review posted 20 MB of JSON to the API, which read and parsed it all."""
    big = b'{"url": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    with server.client() as client:
        declared = client.post("/api/v1/repositories", content=big, headers={"Content-Type": "application/json"})

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]

        streamed = client.post("/api/v1/repositories", content=chunks(), headers={"Content-Type": "application/json"})
        form = client.post("/repositories", data={"url": "y" * (2 * 1024 * 1024)})
        small = client.post("/api/v1/repositories", json={"url": "relative/path"})
    for answer in (declared, streamed, form):
        assert (answer.status_code, answer.json()["type"]) == (413, "too_large")
    assert small.status_code == 422  # an ordinary body still reaches the route
