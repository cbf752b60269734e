"""The OAuth web flow of a GitHub OAuth App: ``/oauth/github/start`` → GitHub → ``/oauth/github/callback``.

``state`` is random, stored server-side with the PKCE verifier (encrypted)
and used once, within ten minutes; the callback trades the code for a token
and links the account as a token would.  The client secret and the token
never reach the browser.
"""

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse
from sqlalchemy import delete, select
from starlette.concurrency import run_in_threadpool

from devlink.errors import InvalidInput, NotFound
from devlink.hosts.base import HostError
from devlink.hosts.github import exchange_oauth_code, oauth_authorize_url
from devlink.runtime import Runtime
from devlink.store.models import Host, OAuthState, utcnow
from devlink.sync.accounts import AccountOptions, link_account
from devlink.sync.host_clients import settings_of
from devlink.web.deps import RuntimeDep

__all__ = ["router"]

router = APIRouter(prefix="/oauth/github", tags=["oauth"])
STATE_LIFETIME = timedelta(minutes=10)


def _callback_url(rt: Runtime) -> str:
    return f"{rt.settings.public_url}/oauth/github/callback"


@router.get("/start")
def start(
    rt: RuntimeDep,
    account: Annotated[str, Query(description="the user or organisation to link")],
    host: Annotated[str, Query(description="host name, e.g. github.com or ghe.example.com")] = "github.com",
    auto_link: bool = False,
    link: Annotated[str, Query(description="all, none, or names separated by commas")] = "none",
) -> RedirectResponse:
    """Send the browser to the host to grant devlink access (state + PKCE S256)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    with rt.sessions.begin() as session:
        row = session.scalars(select(Host).where(Host.name == host.lower())).first()
        if row is None or not row.oauth_client_id or not row.oauth_client_secret:
            raise InvalidInput(
                f"no OAuth App is configured for {host}",
                reason="oauth_not_configured",
                hint=f"devlink host set --url https://{host} --oauth-client-id ID --oauth-client-secret -",
            )
        session.execute(delete(OAuthState).where(OAuthState.created_at < utcnow() - STATE_LIFETIME))
        session.add(OAuthState(state=state, host_id=row.id, account_name=account, verifier=rt.vault.encrypt(verifier),
                               options=json.dumps({"auto_link": auto_link, "link": link})))
        url = oauth_authorize_url(settings_of(row), row.oauth_client_id, _callback_url(rt), state, challenge)
    return RedirectResponse(url, status_code=302)


@router.get("/callback")
async def callback(rt: RuntimeDep, code: str = "", state: str = "", error: str = "") -> RedirectResponse:
    """Trade the code for a token, link the account, and show it."""
    if error:
        raise HostError(f"the host did not grant access: {error}", reason="auth")
    with rt.sessions.begin() as session:
        pending = session.get(OAuthState, state) if state else None
        if pending is None or pending.created_at < utcnow() - STATE_LIFETIME:
            raise NotFound("unknown or expired OAuth state; start linking again", reason="bad_state")
        session.delete(pending)  # used once
        host = session.get(Host, pending.host_id)
        assert host is not None and host.oauth_client_id and host.oauth_client_secret
        settings, client_id = settings_of(host), host.oauth_client_id
        client_secret, verifier = rt.vault.decrypt(host.oauth_client_secret), rt.vault.decrypt(pending.verifier)
        name, options = pending.account_name, json.loads(pending.options)
    if not code:
        raise InvalidInput("the callback carries no code", reason="bad_code")
    token = await run_in_threadpool(
        exchange_oauth_code, settings, client_id, client_secret, code, _callback_url(rt), verifier
    )
    link = options.get("link", "none")
    chosen: str | list[str] = link if link in ("all", "none") else [n for n in link.split(",") if n]
    account_id, found = await run_in_threadpool(link_account, rt, AccountOptions(
        name=name, web_url=settings.web_url, api_url=settings.api_url, token=token,
        auto_link=bool(options.get("auto_link")), link=chosen, oauth=True,
    ))
    for repository_id in found.linked:
        rt.queue.request_sync(repository_id, full=True, trigger="manual")
    return RedirectResponse(f"/accounts/{account_id}", status_code=303)
