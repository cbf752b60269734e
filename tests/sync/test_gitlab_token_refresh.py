"""An expiring GitLab OAuth token is refreshed before use, exactly once however many workers need it at once.

GitLab's OAuth tokens last two hours and its refresh tokens rotate: refreshing revokes the old access/refresh
pair at once (Doorkeeper keeps both on one row; the stub does the same), so a second refresh with the old
refresh token answers ``invalid_grant`` and would leave the account unusable.  ``client_for`` claims the
account with a conditional UPDATE before spending the refresh token; here two real worker processes on the
same DEVLINK_HOME and database ask for the client at the same moment, on SQLite and on PostgreSQL.

The tokens are real ones of the stub: an authorization code with PKCE traded at its ``/oauth/token``.
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select, update

from devlink.hosts.base import HostError
from devlink.hosts.protocol import TokenGrant
from devlink.runtime import Runtime
from devlink.store.models import Account
from devlink.sync.accounts import AccountOptions, account_views, configure_host, link_account
from devlink.sync.host_clients import REFRESH_BEFORE, REFRESH_WAIT, client_for
from gitlab_world import GitLabWorld

CLIENT_ID = "9c3e5a7b1d2f4e6a8c0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c"
CLIENT_SECRET = "gloas-" + "r0tat3" * 10
REDIRECT = "http://127.0.0.1:9/oauth/gitlab/callback"  # never followed: the test trades the code itself
GROUP = "acme"

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from sqlalchemy import text
    from devlink.config import load_settings
    from devlink.hosts.base import HostError
    from devlink.runtime import Runtime
    from devlink.sync.host_clients import client_for
    import devlink.hosts.gitlab  # loaded before the start, so both workers leave the barrier equally ready

    ready, go, account_id = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    rt = Runtime.open(load_settings(), migrate=False)
    with rt.sessions() as session:
        session.execute(text("SELECT 1"))  # connected
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    started = time.time()
    try:
        with client_for(rt, account_id) as client:
            token = client.git_credentials()[1]
            viewer = client.viewer()  # the token works
        print(json.dumps({"token": token, "viewer": viewer, "started": started, "ended": time.time()}))
    except HostError as exc:
        print(json.dumps({"error": exc.reason, "message": exc.message, "started": started}))
    rt.close()
""")


def oauth_tokens(gitlab: GitLabWorld) -> tuple[str, str]:
    """(access, refresh) from the stub's authorization-code flow with PKCE, as the web flow gets them."""
    stub = gitlab.stub
    stub.oauth_user = gitlab.user
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    granted = httpx.get(f"{stub.web_url}/oauth/authorize", params={
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "state": "s" * 32,
        "scope": "api", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert granted.status_code == 302, granted.text
    [code] = parse_qs(httpx.URL(granted.headers["location"]).query.decode())["code"]
    answer = httpx.post(f"{stub.web_url}/oauth/token", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code, "grant_type": "authorization_code",
        "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    return str(data["access_token"]), str(data["refresh_token"])


@dataclass
class Linked:
    account_id: int
    access: str
    refresh: str


@pytest.fixture
def linked(runtime: Runtime, gitlab: GitLabWorld) -> Linked:
    """The group linked with an OAuth grant on a host with the OAuth application; its token expires in 2 minutes."""
    gitlab.group(GROUP)
    gitlab.project(GROUP, "api")
    gitlab.stub.add_oauth_app(CLIENT_ID, CLIENT_SECRET, redirect_uri=REDIRECT)
    configure_host(runtime, AccountOptions(name="", kind="gitlab", web_url=gitlab.stub.web_url),
                   oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET)
    access, refresh = oauth_tokens(gitlab)
    # linked with the expiry GitLab gave (linking lists the group and its hooks with the token: no refresh yet) ...
    account_id, _ = link_account(runtime, AccountOptions(
        name=GROUP, kind="gitlab", web_url=gitlab.stub.web_url, token=access,
        grant=TokenGrant(access, refresh, expires_at=datetime.now(UTC) + timedelta(hours=2))))
    assert gitlab.stub.token_requests == {"authorization_code": 1}
    # ... then two hours pass: the token is inside the refresh window
    expire_in(runtime, account_id, timedelta(minutes=2))
    return Linked(account_id, access, refresh)


def expire_in(rt: Runtime, account_id: int, left: timedelta) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(Account).where(Account.id == account_id).values(
            token_expires_at=datetime.now(UTC) + left))


def account(rt: Runtime, account_id: int) -> Account:
    with rt.sessions() as session:
        row = session.get(Account, account_id)
        assert row is not None
        session.expunge(row)
        return row


def stored(rt: Runtime, account_id: int) -> tuple[str, str]:
    row = account(rt, account_id)
    assert row.credential and row.refresh_token
    return rt.vault.decrypt(row.credential), rt.vault.decrypt(row.refresh_token)


def refresh_requests(gitlab: GitLabWorld) -> list[dict[str, str]]:
    """The forms of the stub's ``POST /oauth/token`` calls with ``grant_type=refresh_token``."""
    forms = [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in gitlab.stub.requests
             if (r.method, r.path) == ("POST", "/oauth/token")]
    return [f for f in forms if f.get("grant_type") == "refresh_token"]


def slow_token_endpoint(gitlab: GitLabWorld, seconds: float) -> None:
    """The stub's token endpoint answers after ``seconds``: the window in which a second worker could spend the
    same refresh token stays open long enough for both workers to be inside it."""
    original: Callable[..., Any] = gitlab.stub._oauth_token

    def slow(*args: Any) -> Any:
        time.sleep(seconds)
        return original(*args)

    gitlab.stub._oauth_token = slow  # type: ignore[method-assign,assignment]


@pytest.mark.timeout(30)
def test_a_token_about_to_expire_is_refreshed_before_use(runtime: Runtime, gitlab: GitLabWorld,
                                                         linked: Linked) -> None:
    stub = gitlab.stub
    # outside the window: used as it is
    expire_in(runtime, linked.account_id, REFRESH_BEFORE + timedelta(minutes=1))
    with client_for(runtime, linked.account_id) as client:
        assert client.git_credentials()[1] == linked.access
    assert stub.token_requests["refresh_token"] == 0

    expire_in(runtime, linked.account_id, REFRESH_BEFORE - timedelta(seconds=30))
    with client_for(runtime, linked.account_id) as client:
        token = client.git_credentials()[1]
        assert client.viewer() == gitlab.user
    assert token != linked.access
    assert stub.token_requests["refresh_token"] == 1
    [form] = refresh_requests(gitlab)
    assert (form["refresh_token"], form["client_id"], form["client_secret"]) == (linked.refresh, CLIENT_ID,
                                                                                 CLIENT_SECRET)
    access, refresh = stored(runtime, linked.account_id)
    assert access == token and refresh != linked.refresh
    row = account(runtime, linked.account_id)
    assert row.token_expires_at is not None
    assert row.token_expires_at > datetime.now(UTC) + timedelta(minutes=110)  # the new token's two hours
    assert (row.refresh_holder, row.refresh_started_at) == (None, None)
    assert stub.token_valid(token) and not stub.token_valid(linked.access)  # rotated: the old pair is revoked

    # fresh now: the next client uses the new token as it is
    with client_for(runtime, linked.account_id) as client:
        assert client.git_credentials()[1] == token
    assert stub.token_requests["refresh_token"] == 1


@pytest.mark.timeout(60)
def test_two_workers_at_once_refresh_once_and_share_the_new_token(
        runtime: Runtime, gitlab: GitLabWorld, linked: Linked, database_url: str, tmp_path: Path) -> None:
    stub = gitlab.stub
    slow_token_endpoint(gitlab, 0.5)
    env = dict(os.environ, DEVLINK_HOME=str(runtime.settings.home), DEVLINK_DATABASE_URL=database_url,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in (1, 2)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(r), str(go), str(linked.account_id)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ready]
    try:
        deadline = time.monotonic() + 20
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, [w.poll() for w in workers]
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.01)
        go.touch()  # the barrier opens for both at once
        outputs = [w.communicate(timeout=25) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    results = []
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all("error" not in r for r in results), results
    assert abs(results[0]["started"] - results[1]["started"]) < 0.25  # both inside the 0.5 s refresh

    # one refresh, spent with the refresh token linking stored; both workers got its token
    assert stub.token_requests["refresh_token"] == 1, refresh_requests(gitlab)
    [form] = refresh_requests(gitlab)
    assert form["refresh_token"] == linked.refresh
    tokens = {r["token"] for r in results}
    assert len(tokens) == 1 and linked.access not in tokens
    [token] = tokens
    assert [r["viewer"] for r in results] == [gitlab.user, gitlab.user]
    assert stub.token_valid(token) and not stub.token_valid(linked.access)

    access, refresh = stored(runtime, linked.account_id)
    assert access == token and refresh != linked.refresh
    row = account(runtime, linked.account_id)
    assert (row.refresh_holder, row.refresh_started_at, row.last_error_reason) == (None, None, None)
    # the old refresh token is spent: GitLab would refuse it (devlink never tries it again)
    again = httpx.post(f"{stub.web_url}/oauth/token", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": linked.refresh,
        "grant_type": "refresh_token"})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # the stored one is the live one
    with client_for(runtime, linked.account_id) as client:
        assert client.git_credentials()[1] == token


@pytest.mark.timeout(30)
def test_a_refused_refresh_is_recorded_and_releases_the_claim(runtime: Runtime, gitlab: GitLabWorld,
                                                               linked: Linked) -> None:
    stub = gitlab.stub
    revoked = httpx.post(f"{stub.web_url}/oauth/revoke", data={
        "token": linked.refresh, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert revoked.status_code == 200
    with pytest.raises(HostError) as refused:
        client_for(runtime, linked.account_id)
    assert refused.value.reason == "auth"
    assert "invalid" in refused.value.message and linked.refresh not in refused.value.message
    assert stub.token_requests["refresh_token"] == 1

    row = account(runtime, linked.account_id)
    assert row.last_error_reason == "auth" and row.last_error_at is not None
    assert row.last_error_message and CLIENT_SECRET not in row.last_error_message
    assert (row.refresh_holder, row.refresh_started_at) == (None, None)  # the claim is released
    assert stored(runtime, linked.account_id) == (linked.access, linked.refresh)  # nothing half-written
    with runtime.sessions() as session:
        [view] = account_views(session)
    assert view["error"] and view["error"]["reason"] == "auth"

    # the next caller tries again at once, rather than waiting for a claim nobody holds
    started = time.monotonic()
    with pytest.raises(HostError) as again:
        client_for(runtime, linked.account_id)
    elapsed = time.monotonic() - started
    assert again.value.reason == "auth"
    assert elapsed < REFRESH_WAIT / 6, f"waited {elapsed:.1f} s"
    assert stub.token_requests["refresh_token"] == 2


@pytest.mark.timeout(30)
def test_a_claim_left_by_a_dead_worker_is_taken_over(runtime: Runtime, gitlab: GitLabWorld, linked: Linked,
                                                     database_url: str) -> None:
    """A worker that died holding the claim (killed mid-refresh) does not stop the others for long."""
    env = dict(os.environ, DEVLINK_HOME=str(runtime.settings.home), DEVLINK_DATABASE_URL=database_url)
    done = subprocess.run([sys.executable, "-c", "from devlink.sync.holders import this_process; "
                           "print(this_process())"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    dead = done.stdout.strip()
    with runtime.sessions.begin() as session:
        session.execute(update(Account).where(Account.id == linked.account_id).values(
            refresh_holder=dead, refresh_started_at=datetime.now(UTC)))
    started = time.monotonic()
    with client_for(runtime, linked.account_id) as client:
        token = client.git_credentials()[1]
    assert time.monotonic() - started < 5
    assert token != linked.access and gitlab.stub.token_requests["refresh_token"] == 1
    with runtime.sessions() as session:
        holder = session.scalars(select(Account.refresh_holder).where(Account.id == linked.account_id)).one()
    assert holder is None
