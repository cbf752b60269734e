"""The OAuth web flow against a real ``devlink serve`` and the stub's OAuth App: state, PKCE (S256), linking.

The server's public URL is its own address, so the stub sends the browser back to it; the test plays the
browser, following each redirect by hand to check where it points.
"""

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from github_world import GitHubWorld
from servers import Server, start_server, stop_server

CLIENT_ID, CLIENT_SECRET = "Iv1.devlinktest0001", "s3cr3t-0f-the-oauth-app-0123456789abcdef"


@pytest.fixture
def server(tmp_path: Path, github: GitHubWorld) -> Iterator[Server]:
    running = start_server(tmp_path / "home", own_base_url=True)
    try:
        github.stub.add_oauth_app(CLIENT_ID, CLIENT_SECRET, callback_url=f"{running.url}/oauth/github/callback")
        done = running.cli("host", "set", "--url", github.stub.web_url, "--oauth-client-id", CLIENT_ID,
                           "--oauth-client-secret", "-", input=CLIENT_SECRET + "\n")
        assert done.returncode == 0, done.stderr
        assert "OAuth App set" in done.stdout and CLIENT_SECRET not in done.stdout + done.stderr
        yield running
    finally:
        stop_server(running)


def host_name(github: GitHubWorld) -> str:
    return f"127.0.0.1:{github.stub.port}"


def start(client: httpx.Client, github: GitHubWorld, account: str = "octo", **extra: str) -> httpx.URL:
    """``/oauth/github/start``: its redirect to the host's authorize page."""
    answer = client.get("/oauth/github/start", params={"host": host_name(github), "account": account, **extra})
    assert answer.status_code == 302, answer.text
    return httpx.URL(answer.headers["location"])


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

        granted = httpx.get(str(authorize))  # the host: signed in, it grants and sends the browser back
        assert granted.status_code == 302
        back = httpx.URL(granted.headers["location"])
        assert str(back).startswith(callback + "?") and back.params["state"] == asked["state"]

        linked = client.get(str(back))
        assert linked.status_code == 303, linked.text
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
        other = client.get("/oauth/github/start", params={"host": "ghe.example.com", "account": "octo"})
        assert other.status_code == 422 and other.json()["type"] == "oauth_not_configured"
        assert "devlink host set" in other.json()["hint"]
        assert client.get("/api/v1/accounts").json() == []
