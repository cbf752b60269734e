"""The GitLab OAuth web flow against a real ``devlink serve`` and the stub's OAuth application: state, PKCE (S256),
the browser cookie, linking with an expiring token.

The server's public URL is its own address (``own_base_url``), so the stub sends the browser back to it; the test
plays the browser, following each redirect by hand to check where it points.  The stub is signed in as ``ada``
(``oauth_user``), so its ``/oauth/authorize`` grants at once, as GitLab does for an application already
authorised.  Every process the server starts sends non-loopback HTTP(S) through a trap that must stay empty.
"""

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select

from devlink.config import load_settings
from devlink.runtime import Runtime
from devlink.store.models import Account
from gitlab_world import GitLabWorld
from servers import EgressTrap, Server, start_server, stop_server

CLIENT_ID = "4f1c0e2b9a7d6c5e8f3a1b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a4b6c8d0e"  # GitLab's application ids are hex
CLIENT_SECRET = "gloas-" + "5ecre7" * 10  # GitLab 15.9+ prefixes application secrets with gloas-
BROWSER_COOKIE = "devlink_oauth"
GROUP = "acme"


@pytest.fixture
def trap() -> Iterator[EgressTrap]:
    running = EgressTrap()
    yield running
    running.close()


@pytest.fixture
def server(tmp_path: Path, gitlab: GitLabWorld, trap: EgressTrap) -> Iterator[Server]:
    running = start_server(tmp_path / "home", trap.env(), own_base_url=True)
    try:
        gitlab.group(GROUP)
        gitlab.project(GROUP, "api")
        gitlab.stub.add_oauth_app(CLIENT_ID, CLIENT_SECRET, redirect_uri=f"{running.url}/oauth/gitlab/callback")
        gitlab.stub.oauth_user = gitlab.user  # signed in on GitLab
        done = running.cli("host", "set", "--kind", "gitlab", "--url", gitlab.stub.web_url, "--oauth-client-id",
                           CLIENT_ID, "--oauth-client-secret", "-", input=CLIENT_SECRET + "\n")
        assert done.returncode == 0, done.stderr
        assert CLIENT_SECRET not in done.stdout + done.stderr
        yield running
    finally:
        stop_server(running)
    assert trap.seen == []


def host_name(gitlab: GitLabWorld) -> str:
    return f"127.0.0.1:{gitlab.stub.port}"


class _Form(HTMLParser):
    """The confirmation page's form: its method, action and hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("action", "").startswith("/oauth/"):
            self.method, self.action = values.get("method", ""), values["action"]
        elif tag == "input" and values.get("type") == "hidden":
            self.hidden[values["name"]] = values.get("value", "")


def confirm(client: httpx.Client, gitlab: GitLabWorld, **params: str) -> _Form:
    """``GET /oauth/gitlab/start``: only a page with a form, nothing stored, no cookie."""
    shown = client.get("/oauth/gitlab/start", params={"account": GROUP, "host": host_name(gitlab), **params})
    assert shown.status_code == 200, shown.text
    assert shown.headers["content-type"].startswith("text/html")
    assert "location" not in shown.headers and "set-cookie" not in shown.headers
    assert f"<code>{GROUP}</code>" in shown.text and host_name(gitlab) in shown.text
    assert f"form-action 'self' {gitlab.stub.web_url}" in shown.headers["content-security-policy"]
    form = _Form()
    form.feed(shown.text)
    assert (form.method, form.action) == ("post", "/oauth/gitlab/start"), shown.text
    assert form.hidden["account"] == GROUP and form.hidden["host"] == host_name(gitlab)
    return form


def start(client: httpx.Client, form: _Form) -> httpx.URL:
    """Pressing the page's button: ``POST /oauth/gitlab/start`` from devlink's own origin, as a browser sends it."""
    answer = client.post(form.action, data=form.hidden, headers={"Origin": str(client.base_url).rstrip("/")})
    assert answer.status_code == 303, answer.text
    assert client.cookies.get(BROWSER_COOKIE), answer.headers
    return httpx.URL(answer.headers["location"])


def grant(authorize: httpx.URL) -> httpx.URL:
    """GitLab, signed in and already trusting the application: it sends the browser straight back."""
    granted = httpx.get(str(authorize))
    assert granted.status_code == 302, granted.text
    return httpx.URL(granted.headers["location"])


def bearer_tokens(gitlab: GitLabWorld) -> set[str]:
    return {r.headers["authorization"].split(" ", 1)[1] for r in gitlab.stub.requests
            if r.headers.get("authorization", "").lower().startswith("bearer ")}


def stored_tokens(server: Server) -> tuple[str, str | None]:
    """The account's (access, refresh) tokens as the server stored them, decrypted with its key."""
    rt = Runtime.open(load_settings({"DEVLINK_HOME": str(server.home), "DEVLINK_BASE_URL": server.url}),
                      migrate=False)
    try:
        with rt.sessions() as session:
            [account] = session.scalars(select(Account)).all()
            assert account.credential is not None
            refresh = rt.vault.decrypt(account.refresh_token) if account.refresh_token else None
            return rt.vault.decrypt(account.credential), refresh
    finally:
        rt.close()


@pytest.mark.timeout(30)
def test_oauth_flow_links_the_group_with_state_pkce_and_an_expiring_token(server: Server, gitlab: GitLabWorld) -> None:
    stub = gitlab.stub
    callback = f"{server.url}/oauth/gitlab/callback"
    with server.client() as client:
        form = confirm(client, gitlab, link="all")
        assert form.hidden["link"] == "all"
        assert not client.cookies and stub.token_requests == {}

        authorize = start(client, form)
        assert str(authorize).startswith(f"{stub.web_url}/oauth/authorize?")
        asked = dict(authorize.params)
        assert asked["client_id"] == CLIENT_ID and asked["redirect_uri"] == callback
        assert asked["response_type"] == "code" and asked["scope"] == "api"
        assert asked["code_challenge_method"] == "S256"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
        assert len(asked["state"]) >= 20
        assert CLIENT_SECRET not in str(authorize)

        back = grant(authorize)
        assert str(back).startswith(callback + "?")
        assert back.params["state"] == asked["state"] and back.params["code"]

        linked = client.get(str(back))  # the browser brings the cookie the start set
        assert linked.status_code == 303, linked.text
        match = re.fullmatch(r"/accounts/(\d+)", linked.headers["location"])
        assert match, linked.headers
        account_id = int(match[1])
        assert BROWSER_COOKIE not in client.cookies  # cleared once used

        # devlink traded the code once, with the verifier whose S256 is the challenge: the stub checked it too
        assert stub.token_requests == {"authorization_code": 1}
        [exchange] = [r for r in stub.requests if r.path == "/oauth/token"]
        form_sent = {k: v[0] for k, v in parse_qs(exchange.body.decode()).items()}
        digest = hashlib.sha256(form_sent["code_verifier"].encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"]
        assert (form_sent["grant_type"], form_sent["code"]) == ("authorization_code", back.params["code"])
        assert (form_sent["redirect_uri"], form_sent["client_id"]) == (callback, CLIENT_ID)
        assert form_sent["code_verifier"] not in str(authorize)  # only the challenge ever left devlink

        access, refresh = stored_tokens(server)
        assert stub.token_valid(access) and refresh
        assert bearer_tokens(gitlab) == {access}  # the API only ever saw the OAuth token
        [view] = [a for a in client.get("/api/v1/accounts").json() if a["id"] == account_id]
        assert (view["name"], view["kind"], view["auth"]) == (GROUP, "group", "oauth")
        assert view["host"]["name"] == host_name(gitlab) and view["host"]["oauth"] is True
        expires = datetime.fromisoformat(view["token_expires_at"])
        now = datetime.now(UTC)
        assert now + timedelta(minutes=110) < expires <= now + timedelta(hours=2, seconds=5)  # GitLab's 7200 s

        [repository] = client.get(f"/api/v1/accounts/{account_id}/repositories").json()
        assert repository["name"] == f"{GROUP}/api" and repository["linked"]
        [hook] = stub.hooks(f"{GROUP}/api")
        assert hook["url"] == f"{server.url}/hooks/gitlab?project={stub.project(f'{GROUP}/api')['id']}"
        synced = server.wait_idle(repository["id"], 20)  # the backfill clones with oauth2:<token>
        assert synced["sync"]["state"] == "idle" and synced["sync"]["commits_indexed"] == 1, synced
        assert ("GET", f"/{GROUP}/api.git/info/refs", "oauth2") in stub.git_requests

        # the state is used once
        replay = client.get(str(back))
        assert replay.status_code == 404 and replay.json()["type"] == "bad_state"
        assert stub.token_requests == {"authorization_code": 1}
        assert len(client.get("/api/v1/accounts").json()) == 1

        answers = [linked, replay, client.get(f"/api/v1/accounts/{account_id}"), client.get("/accounts"),
                   client.get(f"/accounts/{account_id}"), client.get("/api/v1/hosts")]
        for answer in answers:
            shown = answer.text + str(answer.headers)
            assert access not in shown and refresh not in shown and CLIENT_SECRET not in shown
    log = server.log.read_text()
    assert access not in log and refresh not in log and CLIENT_SECRET not in log
    # (the access log does show the callback URL with its code: single use, spent, and bound to the PKCE verifier)
    assert "Traceback" not in log


@pytest.mark.timeout(30)
def test_a_callback_without_the_browser_cookie_is_403_and_uses_the_state_up(
        server: Server, gitlab: GitLabWorld) -> None:
    with server.client() as admin, server.client() as cookieless:
        back = grant(start(admin, confirm(admin, gitlab, link="all")))
        refused = cookieless.get(str(back))
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "other_browser" and "nothing was linked" in refused.json()["title"]
        # the refusal used the state up: the browser that started the flow cannot finish it either
        late = admin.get(str(back))
        assert late.status_code == 404 and late.json()["type"] == "bad_state"
        assert gitlab.stub.token_requests == {}  # no code traded
        assert admin.get("/api/v1/accounts").json() == [] and gitlab.stub.hooks(f"{GROUP}/api") == []


@pytest.mark.timeout(30)
def test_a_gitlab_state_on_the_github_callback_is_refused(server: Server, gitlab: GitLabWorld) -> None:
    with server.client() as client:
        back = grant(start(client, confirm(client, gitlab)))
        cookie = client.cookies.get(BROWSER_COOKIE)
        assert cookie
        # the same code and state brought to GitHub's callback, even with the cookie the GitLab flow set
        wrong = client.get("/oauth/github/callback", params=dict(back.params),
                           headers={"Cookie": f"{BROWSER_COOKIE}={cookie}"})
        assert wrong.status_code == 404, wrong.text
        assert wrong.json()["type"] == "bad_state" and "GitLab" in wrong.json()["title"]
        assert gitlab.stub.token_requests == {}
        assert client.get("/api/v1/accounts").json() == []
        unknown = client.get("/oauth/gitlab/callback", params={"code": "0" * 64, "state": "made-up"})
        assert unknown.status_code == 404 and unknown.json()["type"] == "bad_state"
        assert gitlab.stub.token_requests == {}


@pytest.mark.timeout(30)
def test_a_state_refused_on_the_wrong_callback_is_used_up(server: Server, gitlab: GitLabWorld) -> None:
    with server.client() as client:
        back = grant(start(client, confirm(client, gitlab)))
        cookie = client.cookies.get(BROWSER_COOKIE)
        wrong = client.get("/oauth/github/callback", params=dict(back.params),
                           headers={"Cookie": f"{BROWSER_COOKIE}={cookie}"})
        assert wrong.status_code == 404 and wrong.json()["type"] == "bad_state"
        late = client.get(str(back))  # the right callback, the right browser, the same state: a second use
        assert late.status_code == 404 and late.json()["type"] == "bad_state", late.headers
        assert client.get("/api/v1/accounts").json() == []


@pytest.mark.timeout(30)
def test_a_cross_site_post_start_is_refused(server: Server, gitlab: GitLabWorld) -> None:
    with server.client() as client:
        refused = client.post("/oauth/gitlab/start", data={"host": host_name(gitlab), "account": GROUP, "link": "all"},
                              headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert refused.status_code == 403 and refused.json()["type"] == "cross_site"
        assert "location" not in refused.headers and "set-cookie" not in refused.headers
        assert not [r for r in gitlab.stub.requests if r.path.startswith("/oauth/")]


@pytest.mark.timeout(30)
def test_a_code_for_another_challenge_is_refused(server: Server, gitlab: GitLabWorld) -> None:
    """PKCE binds the code to devlink's verifier: a code obtained with the attacker's challenge does not link."""
    stub = gitlab.stub
    with server.client() as client:
        asked = dict(start(client, confirm(client, gitlab)).params)
        attacker = base64.urlsafe_b64encode(hashlib.sha256(b"attacker-verifier").digest()).rstrip(b"=").decode()
        granted = httpx.get(f"{stub.web_url}/oauth/authorize", params={
            **asked, "code_challenge": attacker, "code_challenge_method": "S256"})
        back = httpx.URL(granted.headers["location"])
        refused = client.get(str(back))
        assert refused.status_code == 422 and refused.json()["type"] == "auth", refused.text
        assert stub.token_requests == {"authorization_code": 1}  # tried once, refused by the stub's PKCE check
        assert client.get("/api/v1/accounts").json() == []
