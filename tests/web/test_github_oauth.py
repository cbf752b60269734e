"""The OAuth web flow against a real ``devlink serve`` and the stub's OAuth App: state, PKCE (S256), linking.

The server's public URL is its own address, so the stub sends the browser back to it; the test plays the
browser, following each redirect by hand to check where it points.
"""

import base64
import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from devlink.web.security import SECURITY_HEADERS
from github_world import GitHubWorld
from servers import Server, start_server, stop_server

CLIENT_ID, CLIENT_SECRET = "Iv1.devlinktest0001", "s3cr3t-0f-the-oauth-app-0123456789abcdef"
BROWSER_COOKIE = "devlink_oauth"  # binds a flow to the browser that started it (docs/github.md)


@pytest.fixture
def server(tmp_path: Path, github: GitHubWorld) -> Iterator[Server]:
    running = start_server(tmp_path / "home", own_base_url=True)
    try:
        github.stub.add_oauth_app(CLIENT_ID, CLIENT_SECRET, callback_url=f"{running.url}/oauth/github/callback")
        done = running.cli("host", "set", "--url", github.stub.web_url, "--oauth-client-id", CLIENT_ID,
                           "--oauth-client-secret", "-", input=CLIENT_SECRET + "\n")
        assert done.returncode == 0, done.stderr
        assert "OAuth application set" in done.stdout and CLIENT_SECRET not in done.stdout + done.stderr
        yield running
    finally:
        stop_server(running)


def host_name(github: GitHubWorld) -> str:
    return f"127.0.0.1:{github.stub.port}"


def start(client: httpx.Client, github: GitHubWorld, account: str = "octo", **extra: str) -> httpx.URL:
    """``POST /oauth/github/start`` as devlink's own page sends it: its redirect to the host's authorize page."""
    answer = client.post("/oauth/github/start", data={"host": host_name(github), "account": account, **extra},
                         headers={"Origin": str(client.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 303, answer.text
    assert client.cookies.get(BROWSER_COOKIE), answer.headers
    return httpx.URL(answer.headers["location"])


def pending_states(server: Server) -> int:
    """Rows in ``oauth_states`` (the server's SQLite database, read directly)."""
    with closing(sqlite3.connect(server.home / "devlink.db")) as db:
        count: int = db.execute("SELECT count(*) FROM oauth_states").fetchone()[0]
    return count


def grant(authorize: httpx.URL) -> httpx.URL:
    """The host, signed in: it grants at once and sends the browser back (the callback URL)."""
    granted = httpx.get(str(authorize))
    assert granted.status_code == 302, granted.text
    return httpx.URL(granted.headers["location"])


def issued_tokens(github: GitHubWorld) -> set[str]:
    """OAuth tokens devlink used against the API (from the stub's request log)."""
    return {r.headers["authorization"].split(" ", 1)[1] for r in github.stub.requests
            if r.headers.get("authorization", "").startswith("token gho_")}


def test_oauth_flow_links_the_account_with_state_and_pkce(server: Server, github: GitHubWorld) -> None:
    stub = github.stub
    github.repo("octo", "api")
    stub.oauth_user = "octo"  # signed in on the host
    callback = f"{server.url}/oauth/github/callback"
    with server.client() as client:
        authorize = start(client, github, link="all")
        assert str(authorize).startswith(f"{stub.web_url}/login/oauth/authorize?")
        asked = dict(authorize.params)
        assert asked["client_id"] == CLIENT_ID and asked["redirect_uri"] == callback
        assert asked["code_challenge_method"] == "S256" and re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
        assert len(asked["state"]) >= 20 and set(asked["scope"].split()) == {"repo", "admin:repo_hook", "read:org"}
        assert CLIENT_SECRET not in str(authorize)

        assert pending_states(server) == 1

        back = grant(authorize)
        assert str(back).startswith(callback + "?") and back.params["state"] == asked["state"]

        linked = client.get(str(back))  # the client brings the cookie the start set
        assert linked.status_code == 303, linked.text
        assert BROWSER_COOKIE not in client.cookies  # cleared once used
        assert pending_states(server) == 0
        page = linked.headers["location"]
        match = re.fullmatch(r"/accounts/(\d+)", page)
        assert match, page
        account_id = int(match[1])

        # devlink traded the code on the web host with the PKCE verifier that matches the challenge
        [exchange] = [r for r in stub.requests if r.path == "/login/oauth/access_token"]
        form = {k: v[0] for k, v in parse_qs(exchange.body.decode()).items()}
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"]
        assert form["redirect_uri"] == callback and form["client_id"] == CLIENT_ID
        assert form["code_verifier"] not in str(authorize)  # only the challenge ever left devlink

        [token] = issued_tokens(github)
        accounts = client.get("/api/v1/accounts")
        [view] = [a for a in accounts.json() if a["id"] == account_id]
        assert (view["name"], view["auth"], view["host"]["name"]) == ("octo", "oauth", host_name(github))
        shown = client.get(page)
        assert shown.status_code == 200 and "octo/api" in shown.text
        repositories = client.get(f"/api/v1/accounts/{account_id}/repositories").json()
        [repository] = repositories
        assert repository["linked"] and repository["name"] == "octo/api"
        synced = server.wait_idle(repository["id"])  # the backfill queued by the callback clones with the token
        assert synced["sync"]["state"] == "idle", synced
        [hook] = stub.hooks("octo", "api")
        assert hook["config"]["url"] == f"{server.url}/hooks/github"

        # the state is used once; an unknown one is refused the same way
        replay = client.get(str(back))
        assert replay.status_code == 404 and replay.json()["type"] == "bad_state"
        unknown = client.get("/oauth/github/callback", params={"code": "0" * 20, "state": "made-up"})
        assert unknown.status_code == 404 and unknown.json()["type"] == "bad_state"
        assert len(client.get("/api/v1/accounts").json()) == 1

        for answer in (linked, accounts, shown, replay, unknown, client.get(f"/api/v1/accounts/{account_id}")):
            assert token not in answer.text and token not in str(answer.headers)
            assert CLIENT_SECRET not in answer.text
    assert token not in server.log.read_text() and CLIENT_SECRET not in server.log.read_text()


class _Form(HTMLParser):
    """The confirmation page's form: its method, action and hidden inputs, and the page's links."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.hidden: dict[str, str] = {}
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("action", "").startswith("/oauth/"):
            self.method, self.action = values.get("method", ""), values["action"]
        elif tag == "input" and values.get("type") == "hidden":
            self.hidden[values["name"]] = values.get("value", "")
        elif tag == "a":
            self.links.append(values.get("href", ""))


CROSS_SITE_NAVIGATION = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                         "Referer": "https://evil.example/landing"}


def test_a_link_from_another_site_only_shows_a_confirmation(server: Server, github: GitHubWorld) -> None:
    """Login CSRF: another site's page navigates the admin to the start URL; devlink only asks, storing nothing."""
    github.repo("octo", "api")
    github.repo("octo", "web")
    github.stub.oauth_user = "octo"  # the admin is signed in on the host: GitHub would grant at once
    evil = "<script>alert(1)</script>"
    with server.client() as client:
        hostile = client.get("/oauth/github/start", headers=CROSS_SITE_NAVIGATION,
                             params={"host": host_name(github), "account": f"octo{evil}", "link": f"api,{evil}"})
        assert hostile.status_code == 200, hostile.text
        assert evil not in hostile.text and hostile.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4

        shown = client.get("/oauth/github/start", headers=CROSS_SITE_NAVIGATION,
                           params={"host": host_name(github), "account": "octo", "link": "api"})
        assert shown.status_code == 200, shown.text
        assert shown.headers["content-type"].startswith("text/html")
        assert "location" not in shown.headers and "set-cookie" not in shown.headers
        assert pending_states(server) == 0 and not client.cookies
        assert "<code>octo</code>" in shown.text and host_name(github) in shown.text
        assert "<code>api</code>" in shown.text and "<dd>off</dd>" in shown.text
        form = _Form()
        form.feed(shown.text)
        assert (form.method, form.action) == ("post", "/oauth/github/start")
        hidden = {k: v for k, v in form.hidden.items() if k != "csrf"}
        assert hidden == {"account": "octo", "host": host_name(github), "link": "api", "auto_link": "false"}
        assert "/accounts" in form.links  # Cancel
        # browsers check form-action on the redirects after a submission: this page and /accounts allow the host
        policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {github.stub.web_url}")
        assert shown.headers["content-security-policy"] == policy
        assert client.get("/accounts").headers["content-security-policy"] == policy
        assert [r for r in github.stub.requests if r.path.startswith("/login/oauth")] == []

        # the admin presses the button on devlink's own page: the flow starts with those very fields
        authorize = start(client, github, **{k: v for k, v in hidden.items() if k not in ("host", "account")})
        assert pending_states(server) == 1
        linked = client.get(str(grant(authorize)))
        assert linked.status_code == 303, linked.text
        [view] = client.get("/api/v1/accounts").json()
        assert view["name"] == "octo" and view["auto_link"] is False
        repositories = client.get(f"/api/v1/accounts/{view['id']}/repositories").json()
        assert {r["name"]: r["linked"] for r in repositories} == {"octo/api": True, "octo/web": False}


def test_a_cross_site_post_start_is_refused(server: Server, github: GitHubWorld) -> None:
    github.stub.oauth_user = "octo"
    with server.client() as client:
        refused = client.post("/oauth/github/start", data={"host": host_name(github), "account": "octo",
                                                           "link": "all", "auto_link": "true"},
                              headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert refused.status_code == 403 and refused.json()["type"] == "cross_site"
        assert "location" not in refused.headers and "set-cookie" not in refused.headers
    assert pending_states(server) == 0


def test_a_callback_in_another_browser_is_refused(server: Server, github: GitHubWorld) -> None:
    """The state is bound to the browser that started the flow: a code and state fed to another browser link nothing."""
    github.repo("octo", "api")
    github.stub.oauth_user = "octo"
    with server.client() as admin, server.client() as attacker, server.client() as cookieless:
        start(admin, github, link="all")  # the admin's own flow: the admin's browser holds a cookie
        for browser in (cookieless, admin):  # no cookie at all; another browser's cookie
            back = grant(start(attacker, github, account="octo", link="all", auto_link="true"))
            refused = browser.get(str(back))
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            body = refused.json()
            assert body["type"] == "other_browser" and "nothing was linked" in body["title"]
            assert "Accounts page" in body["hint"]
            assert attacker.get(str(back)).status_code == 404  # the state was used up by the refusal
        assert [r for r in github.stub.requests if r.path == "/login/oauth/access_token"] == []  # no code traded
        assert issued_tokens(github) == set()
        assert admin.get("/api/v1/accounts").json() == [] and github.stub.hooks("octo", "api") == []


def test_the_browser_cookie(server: Server, github: GitHubWorld, tmp_path: Path) -> None:
    """Short-lived, HttpOnly, SameSite=Lax, only under /oauth/github; Secure when DEVLINK_BASE_URL is https."""
    with server.client() as client:
        answer = client.post("/oauth/github/start", data={"host": host_name(github), "account": "octo"})
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes
        assert "samesite=lax" in cookie.lower() and "Path=/oauth/github;" in cookie + ";" and "Max-Age=600" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        assert len(value) >= 40
        with closing(sqlite3.connect(server.home / "devlink.db")) as db:
            [(options,)] = db.execute("SELECT options FROM oauth_states").fetchall()
        assert value not in options and hashlib.sha256(value.encode()).hexdigest() in options  # only its hash

    behind_tls = start_server(tmp_path / "tls-home", {"DEVLINK_BASE_URL": "https://devlink.example"}, worker=False)
    try:
        done = behind_tls.cli("host", "set", "--url", github.stub.web_url, "--oauth-client-id", CLIENT_ID,
                              "--oauth-client-secret", "-", input=CLIENT_SECRET + "\n")
        assert done.returncode == 0, done.stderr
        with behind_tls.client() as client:
            answer = client.post("/oauth/github/start", data={"host": host_name(github), "account": "octo"})
        assert answer.status_code == 303
        assert "secure" in {a.strip().lower() for a in answer.headers["set-cookie"].split(";")}
    finally:
        stop_server(behind_tls)


def test_a_code_obtained_for_another_challenge_is_refused(server: Server, github: GitHubWorld) -> None:
    """PKCE binds the code to devlink's verifier: a code injected with devlink's state does not link."""
    stub = github.stub
    stub.oauth_user = "octo"
    with server.client() as client:
        asked = dict(start(client, github).params)
        attacker = base64.urlsafe_b64encode(hashlib.sha256(b"attacker-verifier").digest()).rstrip(b"=").decode()
        granted = httpx.get(f"{stub.web_url}/login/oauth/authorize", params={
            "client_id": CLIENT_ID, "redirect_uri": asked["redirect_uri"], "state": asked["state"],
            "code_challenge": attacker, "code_challenge_method": "S256", "scope": asked["scope"]})
        back = httpx.URL(granted.headers["location"])
        refused = client.get(str(back))
        assert refused.status_code == 422 and refused.json()["type"] == "auth"
        assert "refused the OAuth code" in refused.json()["title"]
        assert client.get("/api/v1/accounts").json() == []
        assert issued_tokens(github) == set()


def test_denied_or_unconfigured_flows_fail_clearly(server: Server, github: GitHubWorld) -> None:
    with server.client() as client:
        state = dict(start(client, github).params)["state"]
        denied = client.get("/oauth/github/callback", params={"error": "access_denied", "state": state})
        assert denied.status_code == 422 and denied.json()["type"] == "auth"
        assert "access_denied" in denied.json()["title"]
        for other in (client.get("/oauth/github/start", params={"host": "ghe.example.com", "account": "octo"}),
                      client.post("/oauth/github/start", data={"host": "ghe.example.com", "account": "octo"})):
            assert other.status_code == 422 and other.json()["type"] == "oauth_not_configured"
            assert "devlink host set" in other.json()["hint"]
        assert pending_states(server) == 0  # the denied flow's state was used up
        assert client.get("/api/v1/accounts").json() == []
